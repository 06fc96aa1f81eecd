"""SECURITY.md, threat 7: token and key theft. The secret key rotates through fallback keys (new
tokens signed with the newest only), a generated key file is its owner's alone, and HSTS is sent
over HTTPS, directly or through a trusted proxy, and never because a stranger says so."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Signer, make_partner, make_pledge, rows
from tests.security.conftest import PROXY, SLUG, unescaped
from widget_server.errors import Invalid
from widget_server.messages import TAMPERED
from widget_server.security.tokens import FormClaim, Tokens
from widget_server.services import partners, pledges
from widget_server.settings import Settings
from widget_server.storage.engines import open_store

# The rotation's keys: 32 bytes or more, as every signing key must be (settings.MIN_KEY_BYTES).
OLD_KEY, NEW_KEY, OLDER_KEY = (name.ljust(32, ".") for name in ("old-key", "new-key", "older-key"))


def test_key_rotation_accepts_fallback_keys_and_signs_with_the_newest(make_settings, make_client, clock) -> None:
    old = make_settings(secret_key=OLD_KEY)
    make_pledge(old)
    creds = make_partner(old)
    old_client = make_client(old)
    open_form = Signer(old_client, clock, token=creds.token).form()  # a supporter opened the form before the switch

    rotated = make_settings(secret_key=NEW_KEY, secret_key_fallbacks=(OLD_KEY,))
    client = make_client(rotated)
    signer = Signer(client, clock, token=creds.token)
    clock.advance(5)
    assert signer.post(open_form, email="open@example.org").status_code == 200
    new_form = signer.form()
    # New forms are signed with the new key only.
    assert Tokens([NEW_KEY]).read_form_token(new_form).partner_id == creds.partner.id
    with pytest.raises(Invalid):
        Tokens([OLD_KEY]).read_form_token(new_form)
    fresh_partner_token = partners.credentials(rotated, _pledge(rotated), creds.partner).token
    assert Tokens([NEW_KEY]).read_partner_token(fresh_partner_token).partner_id == creds.partner.id

    # Once the fallback is dropped, anything signed with the old key is refused with a sentence.
    done = make_settings(secret_key=NEW_KEY)
    after = make_client(done)
    refused = after.get(f"/embed/{SLUG}", params={"token": creds.token})
    assert refused.status_code == 403
    assert unescaped(TAMPERED) in unescaped(refused.text)
    assert Signer(after, clock).post(open_form, email="late@example.org").status_code == 400
    clock.advance(5)
    assert Signer(after, clock).post(new_form, email="new@example.org").status_code == 200
    assert [r["email"] for r in rows(done)] == ["open@example.org", "new@example.org"]


def _pledge(settings: Settings) -> Any:
    async def go() -> Any:
        async with open_store(settings.database) as store:
            return await pledges.find_pledge(store, SLUG)

    return asyncio.run(go())


def test_the_generated_secret_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = Settings.from_env(environ={}, data_dir=tmp_path / "fresh")
    key = settings.resolved_secret_key()
    assert len(key) >= 40
    assert (tmp_path / "fresh" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert settings.resolved_secret_key() == key  # read back, not replaced, on the next start


def test_fallback_keys_come_from_the_environment() -> None:
    settings = Settings.from_env(
        environ={"WIDGET_SECRET_KEY": NEW_KEY, "WIDGET_SECRET_KEY_FALLBACKS": f"{OLDER_KEY}, {OLD_KEY}"}
    )
    assert settings.signing_keys() == [OLDER_KEY, OLD_KEY, NEW_KEY]
    token = Tokens([OLD_KEY]).form_token(FormClaim(1, None, "", 0.0, {}))
    assert Tokens(settings.signing_keys()).read_form_token(token).pledge_id == 1


def test_hsts_over_https_and_behind_a_trusted_proxy_only(make_settings, client_at) -> None:
    settings = make_settings(trusted_proxies=(PROXY,))
    make_pledge(settings)
    direct_https = client_at(settings, "198.51.100.1", base_url="https://testserver")
    assert direct_https.get("/healthz").headers["strict-transport-security"] == "max-age=31536000"
    # The hot answers build their security headers once, for any scheme: HSTS is still added.
    for path in ("/widget.js", f"/api/pledges/{SLUG}/count", f"/embed/{SLUG}"):
        hot = direct_https.get(path)
        assert hot.status_code == 200, path
        assert hot.headers.get_list("strict-transport-security") == ["max-age=31536000"], path
        assert hot.headers["x-content-type-options"] == "nosniff", path

    via_proxy = client_at(settings, PROXY)
    said_https = via_proxy.get("/healthz", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.5"})
    assert said_https.headers["strict-transport-security"] == "max-age=31536000"
    assert "strict-transport-security" not in via_proxy.get("/healthz").headers

    stranger = client_at(settings, "198.51.100.2")
    claimed = stranger.get("/healthz", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in claimed.headers
