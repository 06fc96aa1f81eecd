"""Abuse resistance: framing, headers, proxies, tokens, cross-site posts, attribution, bots,
rate limits, IP privacy, body limits and cookies. One test (or a few) per rule of SECURITY.md."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from itsdangerous import URLSafeSerializer
from starlette.testclient import TestClient

from tests.conftest import PARTNER_ORIGIN, FakeClock, fields_of, form_token_of, make_partner, make_pledge, rows, stats
from tests.server_harness import WidgetServer
from widget_server.core.origins import normalise_origin
from widget_server.errors import ConfigError, Invalid
from widget_server.logs import JSONFormatter
from widget_server.messages import (
    CROSS_SITE,
    FORM_BAD,
    FORM_EXPIRED,
    OTHER_PLEDGE,
    PARTNER_BUSY,
    REVOKED,
    SLOW_DOWN,
    TAMPERED,
    TOO_LARGE,
    TOO_QUICK,
    WRONG_SITE,
)
from widget_server.security.ratelimit import ClientKeys, parse_rate
from widget_server.security.tokens import FormClaim, Tokens
from widget_server.services import admin
from widget_server.settings import Settings
from widget_server.storage.sqlite import queries as queries_module
from widget_server.web.app import create_app
from widget_server.web.edge.headers import csp

ROOT = Path(__file__).resolve().parents[1]
SLUG = "data-firewall"
PROXY = "10.0.0.7"
SECRET = "test-secret-key"  # make_settings' key


# ---------------------------------------------------------------- helpers


def form_for(client: TestClient, token: str = "", parent: str = "", **query: str) -> str:
    """Render the sign form as the loader would and return its form token."""
    params = dict(query)
    if token:
        params["token"] = token
    if parent:
        params["parent"] = parent
    page = client.get(f"/embed/{SLUG}", params=params)
    assert page.status_code == 200, page.text
    return form_token_of(page.text)


def post(
    client: TestClient, form_token: str, *, json: bool = False, headers: dict[str, str] | None = None, **fields: str
) -> httpx.Response:
    data = {"name": "Ana Teacher", "email": "ana@example.org", "form_token": form_token, **fields}
    sent = {"Accept": "application/json"} if json else {}
    sent.update(headers or {})
    return client.post(f"/embed/{SLUG}/sign", data=data, headers=sent)




def frame_ancestors(response: httpx.Response) -> str:
    policy = response.headers["content-security-policy"]
    return policy.split("frame-ancestors", 1)[1].strip()


def unescaped(html: str) -> str:
    return html.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")


@pytest.fixture
def client_at(make_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    """client_at(settings, host, **TestClient options): a client connecting from `host`."""
    return lambda settings, host, **options: make_client(settings, host=host, client_options=options)


@pytest.fixture
def partnered(settings: Settings, make_client: Callable[..., TestClient]) -> tuple[TestClient, str]:
    """A pledge, one partner on PARTNER_ORIGIN, and a client; returns (client, partner token)."""
    make_pledge(settings)
    return make_client(settings), make_partner(settings).token


# ---------------------------------------------------------------- framing


def test_embed_pages_may_be_framed_by_exactly_the_partners_origins(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    creds = make_partner(settings, origins=("https://a.example", "https://b.example:8443"))
    client = make_client(settings)
    expected = "https://a.example https://b.example:8443"
    page = client.get(f"/embed/{SLUG}", params={"token": creds.token, "parent": "https://b.example:8443"})
    assert frame_ancestors(page) == expected
    assert "x-frame-options" not in page.headers
    counter = client.get(f"/embed/{SLUG}/counter", params={"token": creds.token})
    assert frame_ancestors(counter) == expected
    clock.advance(5)
    thanks = post(client, form_token_of(page.text))
    assert thanks.status_code == 200
    assert frame_ancestors(thanks) == expected
    invalid = post(client, form_token_of(page.text), email="nope")
    assert invalid.status_code == 400
    assert frame_ancestors(invalid) == expected


def test_no_response_grants_framing_to_everyone(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    form = form_for(client, creds.token)
    clock.advance(5)
    answers = [
        client.get(f"/embed/{SLUG}", params={"token": creds.token}),
        client.get(f"/embed/{SLUG}"),
        client.get(f"/pledge/{SLUG}"),
        client.get(f"/embed/{SLUG}/counter"),
        client.get(f"/pledge/{SLUG}/privacy"),
        client.get("/widget.js"),
        client.get("/static/frame.js"),
        client.get(f"/api/pledges/{SLUG}/count"),
        client.get("/healthz"),
        client.get("/nothing-here"),
        client.get(f"/embed/{SLUG}", params={"token": "forged"}),
        post(client, form),
        post(client, "forged"),
    ]
    for answer in answers:
        ancestors = frame_ancestors(answer)
        assert "*" not in ancestors, answer.url
        assert ancestors in ("'none'", PARTNER_ORIGIN), answer.url


def test_a_wildcard_in_the_direct_frame_setting_grants_no_framing(make_settings) -> None:  # type: ignore[no-untyped-def]
    """Refused at start-up with a sentence; and csp() itself would drop it anyway."""
    from widget_server.errors import ConfigError
    from widget_server.web.app import create_app
    from widget_server.web.edge.headers import csp

    for wildcard in ("*", "https://*"):
        settings = make_settings(direct_frame_origins=(wildcard, "https://campaign.example"))
        with pytest.raises(ConfigError, match="WIDGET_DIRECT_FRAME_ORIGINS"):
            create_app(settings)
    assert csp(("*", "https://*", "https://campaign.example")).endswith("frame-ancestors https://campaign.example")


def test_pages_other_than_the_widget_are_never_frameable(settings, make_client) -> None:  # type: ignore[no-untyped-def]
    """There are no staff pages yet; every page that is not the widget gets the staff-page rule."""
    make_pledge(settings)
    client = make_client(settings)
    for path in (f"/pledge/{SLUG}/privacy", "/nothing-here", f"/embed/{SLUG}?token=forged", "/healthz", "/widget.js"):
        answer = client.get(path)
        assert frame_ancestors(answer) == "'none'", path
        assert answer.headers["x-frame-options"] == "DENY", path


def test_an_embedding_origin_the_token_does_not_allow_is_refused(partnered) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    by_parent = client.get(f"/embed/{SLUG}", params={"token": token, "parent": "https://lookalike.example"})
    by_referer = client.get(
        f"/embed/{SLUG}",
        params={"token": token},
        headers={"Referer": "https://lookalike.example/page", "Sec-Fetch-Dest": "iframe"},
    )
    counter = client.get(f"/embed/{SLUG}/counter", params={"token": token, "parent": "https://lookalike.example"})
    for refused in (by_parent, by_referer, counter):
        assert refused.status_code == 403
        assert unescaped(WRONG_SITE) in unescaped(refused.text)
        assert frame_ancestors(refused) == "'none'"
        assert "lookalike" not in refused.headers["content-security-policy"]
    allowed = client.get(
        f"/embed/{SLUG}", params={"token": token}, headers={"Referer": PARTNER_ORIGIN + "/campaign"}
    )
    assert allowed.status_code == 200


def test_a_top_level_visit_never_grants_framing_to_its_referrer(partnered) -> None:  # type: ignore[no-untyped-def]
    """A shared link opened as a page may come from anywhere, but framing stays the partner's."""
    client, token = partnered
    page = client.get(
        f"/pledge/{SLUG}",
        params={"token": token},
        headers={"Referer": "https://social.example/post", "Sec-Fetch-Dest": "document"},
    )
    assert page.status_code == 200
    assert frame_ancestors(page) == PARTNER_ORIGIN
    assert "data-parent-origin" not in page.text


@pytest.mark.parametrize(
    "origin",
    [
        "https://*",
        "https://*.example.org",
        "*",
        "https://good.example evil.example",
        "https://good.example;script-src *",
        "https://good.example,https://evil.example",
        "https://'self'",
        "https://good_example.org",
        "https://good..example",
        "javascript://good.example",
        "https://good.example/path",
        "https://user@good.example",
    ],
)
def test_partner_origins_that_would_widen_the_frame_policy_are_refused(origin: str) -> None:
    """A wildcard would let any site frame the form; a space or ';' would add sources or directives."""
    with pytest.raises(Invalid):
        normalise_origin(origin)


def test_origins_are_stored_as_browsers_send_them() -> None:
    assert normalise_origin("https://Bücher.Example:443/") == "https://xn--bcher-kva.example"
    assert normalise_origin("http://localhost:8001") == "http://localhost:8001"
    assert normalise_origin("http://[0:0::1]:8080") == "http://[::1]:8080"


def test_the_frame_policy_drops_anything_that_is_not_an_exact_origin() -> None:
    """Defence in depth for partner rows written before origins were checked this strictly."""
    policy = csp(["https://*", "https://ok.example", "https://x.example;script-src *", "https://a b"])
    assert policy.endswith("; frame-ancestors https://ok.example")
    assert csp(["*"]).endswith("frame-ancestors 'none'")


def test_frame_messages_name_the_exact_parent_origin(partnered) -> None:  # type: ignore[no-untyped-def]
    """postMessage goes only to the origin the server verified, and is received only from it."""
    client, token = partnered
    framed = client.get(f"/embed/{SLUG}", params={"token": token, "parent": PARTNER_ORIGIN})
    assert f'data-parent-origin="{PARTNER_ORIGIN}"' in framed.text
    unframed = client.get(f"/embed/{SLUG}", params={"token": token})
    assert "data-parent-origin" not in unframed.text
    frame_js = (ROOT / "static" / "frame.js").read_text()
    assert "postMessage(message, parentOrigin)" in frame_js
    assert '"*"' not in frame_js and "'*'" not in frame_js
    if 'addEventListener("message"' in frame_js:
        assert "event.origin !== parentOrigin" in frame_js
    widget_js = (ROOT / "static" / "widget.js").read_text()
    assert "event.origin !== server" in widget_js
    assert '"*"' not in widget_js and "'*'" not in widget_js


# ---------------------------------------------------------------- headers


def assert_security_headers(answer: httpx.Response, label: str) -> None:
    headers = answer.headers
    policy = headers.get("content-security-policy", "")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if " " in part.strip())
    assert directives.get("script-src") == "'self'", label
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, label
    assert directives.get("default-src") == "'none'", label
    assert "frame-ancestors" in directives, label
    assert headers.get("x-content-type-options") == "nosniff", label
    assert headers.get("referrer-policy") == "no-referrer", label
    assert "camera=()" in headers.get("permissions-policy", ""), label
    assert "strict-transport-security" not in headers, label  # plain http here
    # Once each: the hot answers carry theirs ready-made (headers.Secured), everything else gets
    # them from the middleware, and neither may add them on top of the other.
    names = [name for name, _ in headers.multi_items()]
    for name in ("content-security-policy", "x-content-type-options", "referrer-policy", "permissions-policy",
                 "cross-origin-opener-policy"):
        assert names.count(name) == 1, (label, name)
    assert names.count("x-frame-options") <= 1, label
    if "frame-ancestors 'none'" in policy:
        assert headers.get("x-frame-options") == "DENY", label


def test_security_headers_on_every_response(make_settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(rate_limit="4/minute")
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    form = form_for(client, creds.token)
    clock.advance(5)
    answers: dict[str, httpx.Response] = {
        "embed 200": client.get(f"/embed/{SLUG}", params={"token": creds.token}),
        "counter 200": client.get(f"/embed/{SLUG}/counter", params={"token": creds.token}),
        "privacy 200": client.get(f"/pledge/{SLUG}/privacy"),
        "widget.js 200": client.get("/widget.js"),
        "css 200": client.get("/static/widget.css"),
        "count 200": client.get(f"/api/pledges/{SLUG}/count"),
        "healthz 200": client.get("/healthz"),
        "embed 403": client.get(f"/embed/{SLUG}", params={"token": "forged"}),
        "embed 404": client.get("/embed/nope"),
        "router 404": client.get("/nothing-here"),
        "router 405": client.delete(f"/embed/{SLUG}"),
        # In this order: each post below uses up one of the client's four.
        "sign 200": post(client, form),
        "sign 400": post(client, form, email="nope"),
        "sign 415": client.post(f"/embed/{SLUG}/sign", content=b"{}", headers={"Content-Type": "application/json"}),
        "sign 413": client.post(
            f"/embed/{SLUG}/sign", content=b"x" * 20_000, headers={"Content-Type": "application/x-www-form-urlencoded"}
        ),
        "sign 429": post(client, form),
        "sign 403": post(client, form, headers={"Sec-Fetch-Site": "cross-site"}),
    }
    etag = answers["widget.js 200"].headers["etag"]
    answers["widget.js 304"] = client.get("/widget.js", headers={"If-None-Match": etag})
    answers["widget.js gzip 200"] = client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
    count_etag = client.get(f"/api/pledges/{SLUG}/count").headers["etag"]  # the count moved since
    answers["count 304"] = client.get(f"/api/pledges/{SLUG}/count", headers={"If-None-Match": count_etag})
    answers["count with token 200"] = client.get(f"/api/pledges/{SLUG}/count", params={"token": creds.token})
    for label, answer in answers.items():
        assert str(answer.status_code) == label.rsplit(" ", 1)[1], (label, answer.status_code)
        assert_security_headers(answer, label)


def test_an_unexpected_error_still_carries_the_security_headers(settings, client_at, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A bug must not be the one answer without nosniff and framing rules, nor leak its details."""
    make_pledge(settings)
    client = client_at(settings, "198.51.100.1", raise_server_exceptions=False)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(queries_module, "pledge_by_slug", broken)
    page = client.get("/embed/some-pledge")
    api = client.get("/api/pledges/some-pledge/count")
    for answer in (page, api):
        assert answer.status_code == 500
        assert_security_headers(answer, "500")
        assert frame_ancestors(answer) == "'none'"
        assert "internal detail" not in answer.text
    assert "something went wrong on our side" in page.text
    assert api.json()["error"]["status"] == 500


def test_hsts_over_https_and_behind_a_trusted_proxy_only(make_settings, client_at) -> None:  # type: ignore[no-untyped-def]
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


# ---------------------------------------------------------------- proxies


def test_forwarded_for_is_ignored_unless_it_comes_from_a_configured_proxy(make_settings, client_at, clock) -> None:  # type: ignore[no-untyped-def]
    """Without a proxy list, a client cannot dodge its limit by inventing X-Forwarded-For."""
    settings = make_settings(rate_limit="2/minute")
    make_pledge(settings)
    client = client_at(settings, "198.51.100.9")
    form = form_for(client)
    clock.advance(5)
    answers = [
        post(client, form, email=f"s{i}@example.org", headers={"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert len(rows(settings)) == 2


def test_forwarded_for_from_a_trusted_proxy_names_the_client(make_settings, client_at, clock) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(rate_limit="1/minute", trusted_proxies=("10.0.0.0/8",))
    make_pledge(settings)
    client = client_at(settings, PROXY)
    form = form_for(client)
    clock.advance(5)
    first = post(client, form, email="a@example.org", headers={"X-Forwarded-For": "203.0.113.1"})
    other = post(client, form, email="b@example.org", headers={"X-Forwarded-For": "203.0.113.2"})
    again = post(client, form, email="c@example.org", headers={"X-Forwarded-For": "203.0.113.1"})
    # The client wrote the left part itself; the hop our proxy added (nearest untrusted) counts.
    forged = post(
        client, form, email="d@example.org", headers={"X-Forwarded-For": "192.0.2.77, 203.0.113.1, 10.1.2.3"}
    )
    assert [a.status_code for a in (first, other, again, forged)] == [200, 200, 429, 429]


def test_ipv6_clients_are_limited_per_64_network(make_settings, client_at, clock) -> None:  # type: ignore[no-untyped-def]
    """One home connection gets a whole /64 and could take a new address for every post."""
    settings = make_settings(rate_limit="1/minute", trusted_proxies=(PROXY,))
    make_pledge(settings)
    client = client_at(settings, PROXY)
    form = form_for(client)
    clock.advance(5)

    def from_(address: str, email: str) -> int:
        return post(client, form, email=email, headers={"X-Forwarded-For": address}).status_code

    assert from_("2001:db8:1:2::1", "a@example.org") == 200
    assert from_("2001:db8:1:2:ffff:1234:5678:9abc", "b@example.org") == 429
    assert from_("2001:db8:1:3::1", "c@example.org") == 200
    assert from_("::ffff:198.51.100.4", "d@example.org") == 200
    assert from_("198.51.100.4", "e@example.org") == 429


# ---------------------------------------------------------------- tokens


def _signature_bytes(token: str) -> bytes:
    signature = token.rsplit(".", 1)[1]
    return base64.urlsafe_b64decode(signature + "=" * (-len(signature) % 4))


def test_tokens_are_signed_with_hmac_sha256(partnered) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)
    assert len(_signature_bytes(token)) == hashlib.sha256().digest_size
    assert len(_signature_bytes(form)) == hashlib.sha256().digest_size
    sha256 = URLSafeSerializer(SECRET, salt="partner-token", signer_kwargs={"digest_method": hashlib.sha256})
    assert sha256.loads(token)["o"] == [PARTNER_ORIGIN]


def test_a_sha1_signed_partner_token_is_refused(partnered) -> None:  # type: ignore[no-untyped-def]
    """itsdangerous signs with SHA-1 unless told otherwise; a SHA-1 token is not ours."""
    client, token = partnered
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


def test_a_sha1_signed_form_token_is_refused(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)
    payload = URLSafeSerializer(SECRET, salt="form-token", signer_kwargs={"digest_method": hashlib.sha256}).loads(form)
    sha1_form = URLSafeSerializer(SECRET, salt="form-token").dumps(payload)
    clock.advance(5)
    answer = post(client, sha1_form)
    assert answer.status_code == 400
    assert unescaped(FORM_BAD) in unescaped(answer.text)
    assert rows(settings) == []


def test_key_rotation_accepts_fallback_keys_and_signs_with_the_newest(make_settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    old = make_settings(secret_key="old-key")
    make_pledge(old)
    creds = make_partner(old)
    old_client = make_client(old)
    open_form = form_for(old_client, creds.token)  # a supporter opened the form before the switch

    rotated = make_settings(secret_key="new-key", secret_key_fallbacks=("old-key",))
    client = make_client(rotated)
    clock.advance(5)
    assert post(client, open_form, email="open@example.org").status_code == 200
    page = client.get(f"/embed/{SLUG}", params={"token": creds.token})
    assert page.status_code == 200
    new_form = form_token_of(page.text)
    # New forms are signed with the new key only.
    assert Tokens(["new-key"]).read_form_token(new_form).partner_id == creds.partner.id
    with pytest.raises(Invalid):
        Tokens(["old-key"]).read_form_token(new_form)
    fresh_partner_token = admin.credentials(rotated, _pledge(rotated), creds.partner).token
    assert Tokens(["new-key"]).read_partner_token(fresh_partner_token).partner_id == creds.partner.id

    # Once the fallback is dropped, anything signed with the old key is refused with a sentence.
    done = make_settings(secret_key="new-key")
    after = make_client(done)
    refused = after.get(f"/embed/{SLUG}", params={"token": creds.token})
    assert refused.status_code == 403
    assert unescaped(TAMPERED) in unescaped(refused.text)
    assert post(after, open_form, email="late@example.org").status_code == 400
    clock.advance(5)
    assert post(after, new_form, email="new@example.org").status_code == 200
    assert [r["email"] for r in rows(done)] == ["open@example.org", "new@example.org"]


def _pledge(settings: Settings) -> Any:
    async def go() -> Any:
        async with admin.open_db(settings) as conn:
            return await admin.find_pledge(conn, SLUG)

    return asyncio.run(go())


def test_the_generated_secret_key_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    settings = Settings.from_env(environ={}, data_dir=tmp_path / "fresh")
    key = settings.resolved_secret_key()
    assert len(key) >= 40
    assert (tmp_path / "fresh" / "secret.key").stat().st_mode & 0o777 == 0o600
    assert settings.resolved_secret_key() == key  # read back, not replaced, on the next start


def test_fallback_keys_come_from_the_environment() -> None:
    settings = Settings.from_env(
        environ={"WIDGET_SECRET_KEY": "new-key", "WIDGET_SECRET_KEY_FALLBACKS": "older-key, old-key"}
    )
    assert settings.signing_keys() == ["older-key", "old-key", "new-key"]
    token = Tokens(["old-key"]).form_token(FormClaim(1, None, "", 0.0, {}))
    assert Tokens(settings.signing_keys()).read_form_token(token).pledge_id == 1


# ---------------------------------------------------------------- cross-site posts


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_cross_site_posts_are_refused(settings, partnered, clock, site: str) -> None:  # type: ignore[no-untyped-def]
    """No other page can make its visitors' browsers sign, even with a genuine form token."""
    client, token = partnered
    form = form_for(client, token)
    clock.advance(5)
    for as_json in (False, True):
        answer = post(client, form, json=as_json, headers={"Sec-Fetch-Site": site, "Origin": "http://testserver"})
        assert answer.status_code == 403
        assert unescaped(CROSS_SITE) in unescaped(answer.text)
    assert rows(settings) == []


@pytest.mark.parametrize("site", ["same-origin", "none"])
def test_same_origin_posts_are_accepted(settings, partnered, clock, site: str) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)
    clock.advance(5)
    assert post(client, form, headers={"Sec-Fetch-Site": site}).status_code == 200
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
def test_origin_is_checked_when_sec_fetch_site_is_missing(settings, partnered, clock, origin: str, status: int) -> None:  # type: ignore[no-untyped-def]
    """Browsers without Fetch Metadata still send Origin on a POST."""
    client, token = partnered
    form = form_for(client, token)
    clock.advance(5)
    answer = post(client, form, headers={"Origin": origin})
    assert answer.status_code == status
    assert len(rows(settings)) == (1 if status == 200 else 0)


def test_origin_of_the_public_url_is_accepted_behind_a_proxy(make_settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(public_url="https://pledge.campaign.example")
    make_pledge(settings)
    client = make_client(settings)
    form = form_for(client)
    clock.advance(5)
    assert post(client, form, headers={"Origin": "https://pledge.campaign.example"}).status_code == 200


# ---------------------------------------------------------------- attribution


def test_posted_fields_cannot_change_attribution(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    """The form token is the only source of attribution; nothing else posted is believed."""
    make_pledge(settings)
    riverside = make_partner(settings)
    rival = make_partner(settings, name="Rival", origins=("https://rival.example",))
    client = make_client(settings)
    form = form_for(client, riverside.token, parent=PARTNER_ORIGIN, source="newsletter")
    clock.advance(5)
    answer = post(
        client,
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


def test_a_direct_form_cannot_be_attributed_by_posting_a_partner_token(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client)
    clock.advance(5)
    assert post(client, form, token=token, partner="1").status_code == 200
    assert rows(settings)[0]["partner_id"] is None
    assert stats(settings)["direct"] == 1


def _tampered(form: str, **changes: Any) -> str:
    """The same signature over a different payload: what a forger would try."""
    payload, signature = form.rsplit(".", 1)
    data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    data.update(changes)
    forged = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return forged + "." + signature


def test_forged_form_tokens_are_refused_and_store_nothing(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    riverside = make_partner(settings)
    rival = make_partner(settings, name="Rival", origins=("https://rival.example",))
    make_pledge(settings, slug="other-pledge", title="Another pledge")
    client = make_client(settings)
    form = form_for(client, riverside.token)
    other_page = client.get("/embed/other-pledge")
    other_form = form_token_of(other_page.text)
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
        answer = post(client, bad)
        assert answer.status_code == 400, label
        assert unescaped(message) in unescaped(answer.text), label
        as_json = post(client, bad, json=True)
        assert as_json.json() == {"error": {"status": 400, "message": message}}, label
    assert rows(settings) == []
    assert stats(settings)["total"] == 0


def test_the_form_token_names_partner_embedding_origin_and_time(partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token, parent=PARTNER_ORIGIN, utm_medium="email")
    claim = Tokens([SECRET]).read_form_token(form)
    assert claim.partner_id == Tokens([SECRET]).read_partner_token(token).partner_id
    assert claim.origin == PARTNER_ORIGIN
    assert claim.rendered_at == pytest.approx(clock.now, abs=0.01)
    assert claim.attribution == {"utm_medium": "email"}


# ---------------------------------------------------------------- expiry and fill time


def test_an_expired_form_is_re_rendered_with_input_kept_and_nothing_stored(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)
    clock.advance(settings.form_token_hours * 3600 + 1)
    answer = post(client, form, occupation="Nurse", organisation="Hill Clinic")
    assert answer.status_code == 200
    assert unescaped(FORM_EXPIRED) in unescaped(answer.text)
    kept = fields_of(answer.text)
    assert (kept["name"]["value"], kept["email"]["value"]) == ("Ana Teacher", "ana@example.org")
    assert (kept["occupation"]["value"], kept["organisation"]["value"]) == ("Nurse", "Hill Clinic")
    assert rows(settings) == []
    # The re-rendered form carries a fresh token: pressing Sign again (after a moment) works.
    clock.advance(5)
    assert post(client, str(kept["form_token"]["value"])).status_code == 200
    assert rows(settings)[0]["partner_id"] is not None


def test_the_form_lifetime_is_configurable(make_settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(form_token_hours=0.5)
    make_pledge(settings)
    client = make_client(settings)
    fresh = form_for(client)
    clock.advance(29 * 60)
    assert post(client, fresh, email="in-time@example.org", json=True).json()["status"] == "signed"
    clock.advance(2 * 60)
    late = post(client, fresh, email="late@example.org", json=True)
    assert late.json()["status"] == "invalid"
    assert late.json()["message"] == FORM_EXPIRED
    assert [r["email"] for r in rows(settings)] == ["in-time@example.org"]


def test_a_form_sent_too_soon_is_re_rendered_with_a_message_and_input_kept(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    """Never a silent drop: a fast human is asked to press Sign again, and loses nothing."""
    client, token = partnered
    form = form_for(client, token)
    clock.advance(settings.min_fill_seconds - 0.5)
    answer = post(client, form, occupation="Teacher", opt_in_updates="yes")
    assert answer.status_code == 200
    assert unescaped(TOO_QUICK) in unescaped(answer.text)
    kept = fields_of(answer.text)
    assert kept["name"]["value"] == "Ana Teacher"
    assert kept["occupation"]["value"] == "Teacher"
    assert "checked" in kept["opt_in_updates"]
    assert rows(settings) == []
    # The fresh token is timed from this answer: pressing again at once is still too soon.
    again = str(kept["form_token"]["value"])
    assert TOO_QUICK in unescaped(post(client, again).text)
    clock.advance(settings.min_fill_seconds)
    assert "You have signed" in post(client, again).text
    assert len(rows(settings)) == 1


def test_a_form_sent_too_soon_as_json_gets_the_message_and_a_fresh_token(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)
    clock.advance(1)
    answer = post(client, form, json=True)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["message"], body["errors"]) == ("invalid", TOO_QUICK, {})
    assert body["form_token"] != form
    assert rows(settings) == []
    clock.advance(3)
    assert post(client, body["form_token"], json=True).json()["status"] == "signed"


# ---------------------------------------------------------------- honeypot


def test_honeypot_stores_nothing_and_answers_like_a_person(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)
    clock.advance(5)
    person = post(client, form, email="person@example.org", name="Sam")
    person_again = post(client, form, email="person@example.org", name="Sam")
    bot = post(client, form, email="bot@example.org", name="Sam", website="https://spam.example")
    assert person.status_code == bot.status_code == 200
    assert bot.text == person_again.text  # same page, same count: the bot learns nothing
    person_json = post(client, form, json=True, email="person@example.org")
    bot_json = post(client, form, json=True, email="bot2@example.org", website="x")
    assert bot_json.json() == person_json.json() == {"status": "signed", "total": 1}
    assert [r["email"] for r in rows(settings)] == ["person@example.org"]


# ---------------------------------------------------------------- rate limits


def test_client_rate_limit_answers_429_with_retry_after_and_recovers(make_settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(rate_limit="3/minute")
    make_pledge(settings)
    client = make_client(settings)
    form = form_for(client)
    clock.advance(5)
    for i in range(3):
        assert post(client, form, email=f"ok{i}@example.org").status_code == 200
    refused = post(client, form, email="fourth@example.org")
    assert refused.status_code == 429
    assert unescaped(SLOW_DOWN) in unescaped(refused.text)
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    as_json = post(client, form, json=True, email="fourth@example.org")
    assert as_json.status_code == 429
    assert as_json.json() == {"error": {"status": 429, "message": SLOW_DOWN}}
    assert len(rows(settings)) == 3
    clock.advance(int(as_json.headers["retry-after"]))
    assert post(client, form, email="fourth@example.org").status_code == 200
    assert len(rows(settings)) == 4


def test_a_refusal_after_the_form_is_read_is_shown_inside_the_partners_frame(make_settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    """Without JavaScript the answer replaces the frame's page: framing it 'none' would show a
    blocked frame instead of the sentence."""
    settings = make_settings(rate_limit="1/minute")
    make_pledge(settings)
    client = make_client(settings)
    token = make_partner(settings).token
    form = form_for(client, token)
    clock.advance(5)
    assert post(client, form, email="a@example.org").status_code == 200
    limited = post(client, form, email="b@example.org")
    assert limited.status_code == 429
    assert frame_ancestors(limited) == PARTNER_ORIGIN
    assert "x-frame-options" not in limited.headers
    # A post whose form cannot even be read is refused without granting any framing.
    unreadable = post(client, "forged", email="c@example.org")
    assert unreadable.status_code == 429
    assert frame_ancestors(unreadable) == "'none'"


def test_a_revoked_partners_open_form_explains_itself_inside_the_partners_frame(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)

    async def revoke() -> None:
        async with admin.open_db(settings) as conn:
            await admin.revoke_partner(conn, SLUG, "Riverside")

    asyncio.run(revoke())
    clock.advance(5)
    answer = post(client, form)
    assert answer.status_code == 403
    assert unescaped(REVOKED) in unescaped(answer.text)
    assert frame_ancestors(answer) == PARTNER_ORIGIN
    assert rows(settings) == []


def test_partner_rate_limit_covers_all_its_clients(make_settings, client_at, clock) -> None:  # type: ignore[no-untyped-def]
    """Many clients (a botnet, or a newsletter surge) share one partner's limit."""
    settings = make_settings(partner_rate_limit="3/minute", trusted_proxies=(PROXY,))
    make_pledge(settings)
    riverside = make_partner(settings).token
    other = make_partner(settings, name="Other", origins=("https://other.example",)).token
    client = client_at(settings, PROXY)
    form, other_form, direct_form = form_for(client, riverside), form_for(client, other), form_for(client)
    clock.advance(5)

    def from_client(i: int, token: str, email: str) -> httpx.Response:
        return post(client, token, email=email, headers={"X-Forwarded-For": f"203.0.113.{i}"})

    answers = [from_client(i, form, f"r{i}@example.org") for i in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    busy = answers[3]
    assert unescaped(PARTNER_BUSY) in unescaped(busy.text)
    assert 1 <= int(busy.headers["retry-after"]) <= 60
    assert frame_ancestors(busy) == PARTNER_ORIGIN
    # Another partner and direct signatures have their own budgets.
    assert from_client(50, other_form, "o@example.org").status_code == 200
    assert from_client(51, direct_form, "d@example.org").status_code == 200
    assert {p["name"]: p["count"] for p in stats(settings)["partners"]} == {"Riverside": 3, "Other": 1}


def test_shipped_default_stops_one_client_posting_120_signatures_in_a_minute(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    assert settings.rate_limit == Settings().rate_limit  # the shipped default, not a test override
    make_pledge(settings)
    client = make_client(settings)
    form = form_for(client)
    clock.advance(5)
    statuses = []
    for i in range(120):
        statuses.append(post(client, form, json=True, email=f"bot{i}@example.org").status_code)
        clock.advance(0.5)  # 120 evenly over one minute
    accepted = statuses.count(200)
    assert accepted + statuses.count(429) == 120
    assert accepted <= 61, accepted  # at most the burst plus one minute's refill
    assert len(rows(settings)) == accepted
    assert stats(settings)["total"] == accepted


def test_rate_limit_off_lets_a_load_test_through(make_settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(rate_limit="off", partner_rate_limit="off")
    make_pledge(settings)
    token = make_partner(settings).token
    client = make_client(settings)
    form = form_for(client, token)
    clock.advance(5)
    statuses = {post(client, form, json=True, email=f"load{i}@example.org").status_code for i in range(150)}
    assert statuses == {200}
    assert stats(settings)["partners"][0]["count"] == 150


@pytest.mark.parametrize("text", ["lots", "30", "0/minute", "30/fortnight", ""])
def test_a_bad_rate_limit_setting_is_refused_at_start(make_settings, text: str) -> None:
    with pytest.raises(ConfigError, match="looks like '30/minute' or 'off'"):
        create_app(make_settings(rate_limit=text or " "))
    assert parse_rate("OFF") is None
    assert parse_rate("30/minute") == (30, 60.0)


# ---------------------------------------------------------------- IP privacy


def test_client_keys_are_keyed_hashes_that_rotate_daily(clock: FakeClock) -> None:
    """A plain hash of an IPv4 address can be reversed by hashing all 2**32 of them."""
    ip = "198.51.100.23"
    keys = ClientKeys(clock)
    key = keys.key(ip)
    assert keys.key(ip) == key
    assert ip not in key
    assert key not in (hashlib.sha256(ip.encode()).hexdigest(), hashlib.sha256(ip.encode()).hexdigest()[:32])
    assert ClientKeys(clock).key(ip) != key  # the secret is random per process
    clock.advance(86400 + 1)
    assert keys.key(ip) != key


def _all_bytes(folder: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file())


def test_no_raw_ip_or_email_in_the_database_or_the_logs(make_settings, client_at, clock, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO)  # the level `widget-server serve` logs at
    settings = make_settings(rate_limit="3/minute", trusted_proxies=(PROXY,))
    make_pledge(settings)
    token = make_partner(settings).token
    direct = client_at(settings, "198.51.100.23")
    proxied = client_at(settings, PROXY)
    email = "private.person@example.org"
    form = form_for(direct, token, parent=PARTNER_ORIGIN)
    clock.advance(5)
    assert post(direct, form, email=email).status_code == 200
    assert post(direct, form, email="second.person@example.org").status_code == 200
    assert post(direct, form, email="not-an-email").status_code == 400
    assert post(direct, form, email="third.person@example.org").status_code == 429
    via = {"X-Forwarded-For": "203.0.113.61"}
    assert post(proxied, form, email="fourth.person@example.org", headers=via).status_code == 200
    assert post(proxied, form, email="fifth.person@example", headers=via).status_code == 400
    big = {**via, "Content-Type": "application/x-www-form-urlencoded"}
    assert proxied.post(f"/embed/{SLUG}/sign", content=b"x" * 20_000, headers=big).status_code == 413

    stored = _all_bytes(settings.database.parent)
    assert email.encode() in stored  # the signature itself is there (sanity check of the grep)
    for ip in ("198.51.100.23", "203.0.113.61", PROXY):
        assert ip.encode() not in stored, ip
        assert socket.inet_aton(ip) not in stored, ip
    formatter = JSONFormatter()
    # The test's own HTTP client logs its requests (with their query strings); the server's
    # loggers are what is checked.
    server_records = [r for r in caplog.records if not r.name.startswith("httpx")]
    logged = "\n".join(formatter.format(record) for record in server_records)
    assert "request" in logged  # the access log did write lines
    for secret in ("198.51.100.23", "203.0.113.61", PROXY, "testclient", email, "person@", token, form):
        assert secret not in logged, secret


@pytest.mark.slow
def test_the_real_server_keeps_client_ips_and_emails_out_of_its_logs(tmp_path: Path) -> None:
    """Under uvicorn the address comes from the socket, and uvicorn's own access log would print it."""
    settings = Settings.from_env(environ={}, data_dir=tmp_path / "data", secret_key=SECRET)
    make_pledge(settings)
    token = make_partner(settings).token
    server = WidgetServer.start(
        tmp_path / "data",
        WIDGET_SECRET_KEY=SECRET,
        WIDGET_TRUSTED_PROXIES="127.0.0.1",
        # A subprocess has no fake clock; the fill-time rule is tested in-process above.
        WIDGET_MIN_FILL_SECONDS="0",
    )
    try:
        with httpx.Client(base_url=server.url, timeout=10) as http:
            via = {"X-Forwarded-For": "198.51.100.99"}
            page = http.get(f"/embed/{SLUG}", params={"token": token, "parent": PARTNER_ORIGIN}, headers=via)
            data = {"name": "Real Net", "email": "real.net@example.org", "form_token": form_token_of(page.text)}
            signed = http.post(f"/embed/{SLUG}/sign", data=data, headers={**via, "Accept": "application/json"})
            assert signed.json() == {"status": "signed", "total": 1}
            assert http.get("/nothing", headers=via).status_code == 404
    finally:
        server.stop()
    assert server.process.returncode == 0
    logged = "".join(server.log)
    assert '"path": "/embed/data-firewall/sign"' in logged  # the access log is on
    for secret in ("198.51.100.99", "real.net@example.org", token):
        assert secret not in logged, secret
    assert '"client"' not in logged
    stored = _all_bytes(tmp_path / "data")
    assert b"real.net@example.org" in stored
    for ip in ("198.51.100.99", "127.0.0.1"):
        assert ip.encode() not in stored, ip


# ---------------------------------------------------------------- bodies and cookies


def test_bodies_over_the_limit_get_413_before_being_read(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)
    clock.advance(5)
    big = post(client, form, organisation="x" * (settings.max_body_bytes + 1))
    assert big.status_code == 413
    assert unescaped(TOO_LARGE) in unescaped(big.text)
    as_json = post(client, form, json=True, organisation="x" * 20_000)
    assert as_json.json() == {"error": {"status": 413, "message": TOO_LARGE}}
    assert rows(settings) == []

    # Straight to the ASGI app: a declared length over the limit is refused without one read.
    reads = 0
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"name=x" * 4000, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": f"/embed/{SLUG}/sign",
        "raw_path": f"/embed/{SLUG}/sign".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"testserver"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", b"24000"),
        ],
        "client": ("198.51.100.5", 1234),
        "server": ("testserver", 80),
    }

    async def call() -> None:
        await client.app(scope, receive, send)

    client.portal.call(call)
    assert reads == 0
    assert sent[0]["status"] == 413


def test_a_streamed_body_over_the_limit_gets_413(settings, partnered) -> None:  # type: ignore[no-untyped-def]
    """No Content-Length (chunked): counted as it arrives, refused once past the limit."""
    client, _ = partnered

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"organisation=" + b"x" * 1000 + b"&"

    answer = client.post(
        f"/embed/{SLUG}/sign", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 413
    assert rows(settings) == []


def test_a_body_with_no_length_is_still_metered_beyond_http_1(settings, partnered) -> None:  # type: ignore[no-untyped-def]
    """HTTP/1 requests without Content-Length or Transfer-Encoding have no body, so they pass
    unwrapped; under another protocol version (HTTP/2 behind some ASGI servers) a body needs no
    announcement, and must still be cut off at the limit."""
    client, _ = partnered
    sent: list[dict[str, Any]] = []
    chunks = 40

    async def receive() -> dict[str, Any]:
        nonlocal chunks
        chunks -= 1
        return {"type": "http.request", "body": b"organisation=" + b"x" * 1000 + b"&", "more_body": chunks > 0}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "2", "method": "POST", "scheme": "https",
        "path": f"/embed/{SLUG}/sign", "raw_path": f"/embed/{SLUG}/sign".encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver"), (b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("198.51.100.5", 1234), "server": ("testserver", 443),
    }

    async def call() -> None:
        await client.app(scope, receive, send)

    client.portal.call(call)
    assert sent[0]["status"] == 413
    assert rows(settings) == []


def test_a_form_with_more_fields_than_ours_is_refused(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    form = form_for(client, token)
    clock.advance(5)
    extra = {f"extra{i}": "x" for i in range(20)}
    answer = post(client, form, json=True, **extra)
    assert answer.status_code == 400
    assert "more fields than the pledge form" in answer.json()["error"]["message"]
    assert rows(settings) == []
    assert post(client, form, json=True, **dict(list(extra.items())[:10])).status_code == 200  # 15 fields in all


def test_the_body_limit_is_configurable(make_settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    settings = make_settings(max_body_bytes=1024)
    make_pledge(settings)
    client = make_client(settings)
    form = form_for(client)
    clock.advance(5)
    assert post(client, form, occupation="x" * 1500).status_code == 413
    assert post(client, form, occupation="x" * 50).status_code == 200


def test_no_cookie_from_embed_sign_or_count(partnered, clock) -> None:  # type: ignore[no-untyped-def]
    client, token = partnered
    page = client.get(f"/embed/{SLUG}", params={"token": token})
    form = form_token_of(page.text)
    clock.advance(5)
    answers = [
        page,
        client.get(f"/embed/{SLUG}"),
        client.get(f"/embed/{SLUG}/counter", params={"token": token}),
        client.get(f"/api/pledges/{SLUG}/count", params={"token": token}),
        client.get("/widget.js"),
        post(client, form, email="one@example.org"),
        post(client, form, json=True, email="two@example.org"),
        post(client, form, email="bad"),
        post(client, form, email="bot@example.org", website="x"),
        client.get(f"/embed/{SLUG}", params={"token": "forged"}),
    ]
    for answer in answers:
        assert "set-cookie" not in answer.headers, answer.url
    assert not client.cookies


def test_answers_with_a_signers_details_are_never_cached(partnered, clock) -> None:  # type: ignore[no-untyped-def]
    """The thank-you and re-rendered form hold a name and email: no shared cache may keep them."""
    client, token = partnered
    form = form_for(client, token)
    clock.advance(5)
    for answer in (
        post(client, form, email="one@example.org"),
        post(client, form, json=True, email="two@example.org"),
        post(client, form, email="bad"),
        post(client, form, json=True, email="bad"),
        client.get(f"/embed/{SLUG}", params={"token": token}),
    ):
        assert answer.headers["cache-control"] == "no-store", answer.url


def test_a_person_signing_is_not_told_whether_an_address_already_signed(settings, partnered, clock) -> None:  # type: ignore[no-untyped-def]
    """No enumeration: the second signature with an address answers exactly like the first."""
    client, token = partnered
    form = form_for(client, token)
    clock.advance(5)
    first = post(client, form, json=True, email="ana@example.org")
    again = post(client, form, json=True, email=" ANA@example.org ")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(rows(settings)) == 1
