"""SECURITY.md, threat 1: forged attribution. Signatures are credited only to the partner named in
the signed form token (HMAC-SHA256, its own salt), never to anything else posted, and no other
site can make its visitors' browsers sign."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import zlib
from dataclasses import replace
from typing import Any

import pytest
from itsdangerous import URLSafeSerializer

from tests.conftest import PARTNER_ORIGIN, Signer, make_partner, make_pledge, rows, stats
from tests.security.conftest import SECRET, SLUG, frame_ancestors, unescaped
from widget_server.messages import CROSS_SITE, FORM_BAD, OTHER_PLEDGE, REVOKED, TAMPERED
from widget_server.security.tokens import Tokens
from widget_server.services import partners
from widget_server.storage.engines import open_store


def _signature_bytes(token: str) -> bytes:
    signature = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))


def _tampered(form: str, **changes: Any) -> str:
    """The same signature over a different payload: what a forger would try."""
    payload, signature = form.rsplit(".", 1)
    # A payload starting with "." is zlib-compressed (itsdangerous's own spelling).
    raw = base64.urlsafe_b64decode(payload.lstrip(".") + "=" * (-len(payload.lstrip(".")) % 4))
    data = json.loads(zlib.decompress(raw) if payload.startswith(".") else raw)
    data.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return forged + "." + signature


# ---------------------------------------------------------------- tokens


def test_tokens_are_signed_with_hmac_sha256(signer: Signer) -> None:
    token = signer.token
    form = signer.form()
    assert len(_signature_bytes(token)) == hashlib.sha256().digest_size
    assert len(_signature_bytes(form)) == hashlib.sha256().digest_size
    sha256 = URLSafeSerializer(SECRET, salt="partner-token", signer_kwargs={"digest_method": hashlib.sha256})
    assert sha256.loads(token)["o"] == [PARTNER_ORIGIN]


def test_a_sha1_signed_partner_token_is_refused(signer: Signer) -> None:
    """itsdangerous signs with SHA-1 unless told otherwise; a SHA-1 token is not ours."""
    client, token = signer.client, signer.token
    payload = URLSafeSerializer(SECRET, salt="partner-token", signer_kwargs={"digest_method": hashlib.sha256}).loads(
        token
    )
    sha1_token = URLSafeSerializer(SECRET, salt="partner-token").dumps(payload)
    assert len(_signature_bytes(sha1_token)) == hashlib.sha1().digest_size
    page = client.get(f"/embed/{SLUG}", params={"token": sha1_token})
    assert page.status_code == 403
    assert unescaped(TAMPERED) in unescaped(page.text)
    count = client.get(f"/api/pledges/{SLUG}/count", params={"token": sha1_token})
    assert count.status_code == 403


def test_a_sha1_signed_form_token_is_refused(settings, signer: Signer, clock) -> None:
    form = signer.form()
    payload = URLSafeSerializer(SECRET, salt="form-token", signer_kwargs={"digest_method": hashlib.sha256}).loads(form)
    sha1_form = URLSafeSerializer(SECRET, salt="form-token").dumps(payload)
    clock.advance(5)
    answer = signer.post(sha1_form)
    assert answer.status_code == 400
    assert unescaped(FORM_BAD) in unescaped(answer.text)
    assert rows(settings) == []


# ---------------------------------------------------------------- the form token is the only attribution


def test_posted_fields_cannot_change_attribution(settings, make_client, clock) -> None:
    """The form token is the only source of attribution; nothing else posted is believed."""
    make_pledge(settings)
    riverside = make_partner(settings)
    rival = make_partner(settings, name="Rival", origins=("https://rival.example",))
    client = make_client(settings)
    signer = Signer(client, clock, token=riverside.token, parent=PARTNER_ORIGIN, query={"source": "newsletter"})
    form = signer.form()
    clock.advance(5)
    answer = signer.post(
        form,
        partner=str(rival.partner.id),
        partner_id=str(rival.partner.id),
        token=rival.token,
        origin="https://rival.example",
        parent="https://rival.example",
        source="stuffed",
        utm_source="stuffed",
    )
    assert answer.status_code == 200
    [row] = rows(settings)
    assert row["partner_id"] == riverside.partner.id
    assert row["origin"] == PARTNER_ORIGIN
    assert (row["source"], row["utm_source"]) == ("newsletter", "")
    counts = {p["name"]: p["count"] for p in stats(settings)["partners"]}
    assert counts == {"Riverside": 1, "Rival": 0}


def test_a_direct_form_cannot_be_attributed_by_posting_a_partner_token(settings, signer: Signer, clock) -> None:
    form = replace(signer, token="").form()
    clock.advance(5)
    assert signer.post(form, token=signer.token, partner="1").status_code == 200
    assert rows(settings)[0]["partner_id"] is None
    assert stats(settings)["direct"] == 1


def test_forged_form_tokens_are_refused_and_store_nothing(settings, make_client, clock) -> None:
    make_pledge(settings)
    riverside = make_partner(settings)
    rival = make_partner(settings, name="Rival", origins=("https://rival.example",))
    make_pledge(settings, slug="other-pledge", title="Another pledge")
    client = make_client(settings)
    signer = Signer(client, clock, token=riverside.token)
    form = signer.form()
    other_form = Signer(client, clock, slug="other-pledge").form()
    clock.advance(5)
    cases = {
        "other partner": (_tampered(form, p=rival.partner.id), FORM_BAD),
        "older render": (_tampered(form, t=0), FORM_BAD),
        "missing": ("", FORM_BAD),
        "garbage": ("not-a-token", FORM_BAD),
        "partner token as form token": (rival.token, FORM_BAD),
        "other pledge": (other_form, OTHER_PLEDGE),
    }
    for label, (bad, message) in cases.items():
        answer = signer.post(bad)
        assert answer.status_code == 400, label
        assert unescaped(message) in unescaped(answer.text), label
        as_json = signer.post(bad, json=True)
        assert as_json.json() == {"error": {"status": 400, "message": message}}, label
    assert rows(settings) == []
    assert stats(settings)["total"] == 0


def test_the_form_token_names_partner_embedding_origin_and_time(signer: Signer, clock) -> None:
    token = signer.token
    form = replace(signer, parent=PARTNER_ORIGIN, query={"utm_medium": "email"}).form()
    claim = Tokens([SECRET]).read_form_token(form)
    assert claim.partner_id == Tokens([SECRET]).read_partner_token(token).partner_id
    assert claim.origin == PARTNER_ORIGIN
    assert claim.rendered_at == pytest.approx(clock.now, abs=0.01)
    assert claim.attribution == {"utm_medium": "email"}


def test_a_revoked_partners_open_form_explains_itself_inside_the_partners_frame(settings, signer, clock) -> None:
    form = signer.form()

    async def revoke() -> None:
        async with open_store(settings.database) as store:
            await partners.revoke_partner(store, SLUG, "Riverside")

    asyncio.run(revoke())
    clock.advance(5)
    answer = signer.post(form)
    assert answer.status_code == 403
    assert unescaped(REVOKED) in unescaped(answer.text)
    assert frame_ancestors(answer) == PARTNER_ORIGIN


# ---------------------------------------------------------------- cross-site posts


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_cross_site_posts_are_refused(settings, signer: Signer, clock, site: str) -> None:
    """No other page can make its visitors' browsers sign, even with a genuine form token."""
    form = signer.form()
    clock.advance(5)
    for as_json in (False, True):
        answer = signer.post(form, json=as_json, headers={"Sec-Fetch-Site": site, "Origin": "http://testserver"})
        assert answer.status_code == 403
        assert unescaped(CROSS_SITE) in unescaped(answer.text)
    assert rows(settings) == []


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_same_origin_posts_are_accepted(settings, signer: Signer, clock, site: str) -> None:
    form = signer.form()
    clock.advance(5)
    assert signer.post(form, headers={"Sec-Fetch-Site": site}).status_code == 200
    assert len(rows(settings)) == 1


@pytest.mark.parametrize(
    ("origin", "status"),
    [
        ("https://evil.example", 403),
        ("null", 403),
        (PARTNER_ORIGIN, 403),  # the partner's page itself never posts: the frame (our origin) does
        ("http://testserver", 200),
    ],
)
def test_origin_is_checked_when_sec_fetch_site_is_missing(settings, signer, clock, origin: str, status: int) -> None:
    """Browsers without Fetch Metadata still send Origin on a POST."""
    form = signer.form()
    clock.advance(5)
    answer = signer.post(form, headers={"Origin": origin})
    assert answer.status_code == status
    assert len(rows(settings)) == (1 if status == 200 else 0)


def test_origin_of_the_public_url_is_accepted_behind_a_proxy(make_settings, make_client, clock) -> None:
    settings = make_settings(public_url="https://pledge.campaign.example")
    make_pledge(settings)
    signer = Signer(make_client(settings), clock)
    form = signer.form()
    clock.advance(5)
    assert signer.post(form, headers={"Origin": "https://pledge.campaign.example"}).status_code == 200
