"""SECURITY.md, threat 6: data leaks. No raw IP address is stored or logged (clients are keyed by a
daily-rotated keyed hash), no email reaches a log, answers holding a signer's details are never
cached, the widget sets no cookie, a second signature tells nothing, and a bug leaks no detail."""

from __future__ import annotations

import hashlib
import logging
import socket
from pathlib import Path

import httpx2
import pytest

from tests.conftest import PARTNER_ORIGIN, FakeClock, Signer, form_token_of, make_partner, make_pledge, rows
from tests.security.conftest import PROXY, SECRET, SLUG, assert_security_headers, frame_ancestors
from tests.server_harness import WidgetServer
from widget_server.logs import JSONFormatter
from widget_server.security.ratelimit import ClientKeys
from widget_server.settings import Settings
from widget_server.storage.sqlite.store import SQLiteStore

# ---------------------------------------------------------------- IP addresses and emails


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


def test_no_raw_ip_or_email_in_the_database_or_the_logs(make_settings, client_at, clock, caplog) -> None:
    caplog.set_level(logging.INFO)  # the level `widget-server serve` logs at
    settings = make_settings(rate_limit="3/minute", trusted_proxies=(PROXY,))
    make_pledge(settings)
    token = make_partner(settings).token
    direct = Signer(client_at(settings, "198.51.100.23"), clock, token=token, parent=PARTNER_ORIGIN)
    proxied = Signer(client_at(settings, PROXY), clock)
    email = "private.person@example.org"
    form = direct.form()
    clock.advance(5)
    assert direct.post(form, email=email).status_code == 200
    assert direct.post(form, email="second.person@example.org").status_code == 200
    assert direct.post(form, email="not-an-email").status_code == 400
    assert direct.post(form, email="third.person@example.org").status_code == 429
    via = {"X-Forwarded-For": "203.0.113.61"}
    assert proxied.post(form, email="fourth.person@example.org", headers=via).status_code == 200
    assert proxied.post(form, email="fifth.person@example", headers=via).status_code == 400
    big = {**via, "Content-Type": "application/x-www-form-urlencoded"}
    assert proxied.client.post(f"/embed/{SLUG}/sign", content=b"x" * 20_000, headers=big).status_code == 413

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
        # Beside the data folder, which is searched below byte by byte: the log is read on its own.
        log_dir=tmp_path,
        WIDGET_SECRET_KEY=SECRET,
        WIDGET_TRUSTED_PROXIES="127.0.0.1",
        # A subprocess has no fake clock; the fill-time rule is tested in-process above.
        WIDGET_MIN_FILL_SECONDS="0",
    )
    try:
        with httpx2.Client(base_url=server.url, timeout=10) as http:
            via = {"X-Forwarded-For": "198.51.100.99"}
            signer = Signer(http, token=token, parent=PARTNER_ORIGIN)
            form = signer.form(**via)
            signed = signer.post(form, json=True, headers=via, name="Real Net", email="real.net@example.org")
            assert signed.json() == {"status": "signed", "total": 1}
            assert http.get("/nothing", headers=via).status_code == 404
    finally:
        server.stop()
    assert server.process.returncode == 0
    logged = server.log()
    assert '"path": "/embed/data-firewall/sign"' in logged  # the access log is on
    for secret in ("198.51.100.99", "real.net@example.org", token):
        assert secret not in logged, secret
    assert '"client"' not in logged
    stored = _all_bytes(tmp_path / "data")
    assert b"real.net@example.org" in stored
    for ip in ("198.51.100.99", "127.0.0.1"):
        assert ip.encode() not in stored, ip


# ---------------------------------------------------------------- caches, cookies, answers


def test_answers_with_a_signers_details_are_never_cached(signer: Signer, clock) -> None:
    """The thank-you and re-rendered form hold a name and email: no shared cache may keep them."""
    client, token = signer.client, signer.token
    form = signer.form()
    clock.advance(5)
    for answer in (
        signer.post(form, email="one@example.org"),
        signer.post(form, json=True, email="two@example.org"),
        signer.post(form, email="bad"),
        signer.post(form, json=True, email="bad"),
        client.get(f"/embed/{SLUG}", params={"token": token}),
    ):
        assert answer.headers["cache-control"] == "no-store", answer.url


def test_no_cookie_from_embed_sign_or_count(signer: Signer, clock) -> None:
    client, token = signer.client, signer.token
    page = signer.embed()
    form = form_token_of(page.text)
    clock.advance(5)
    answers = [
        page,
        client.get(f"/embed/{SLUG}"),
        client.get(f"/embed/{SLUG}/counter", params={"token": token}),
        client.get(f"/api/pledges/{SLUG}/count", params={"token": token}),
        client.get("/widget.js"),
        signer.post(form, email="one@example.org"),
        signer.post(form, json=True, email="two@example.org"),
        signer.post(form, email="bad"),
        signer.post(form, email="bot@example.org", website="x"),
        client.get(f"/embed/{SLUG}", params={"token": "forged"}),
    ]
    for answer in answers:
        assert "set-cookie" not in answer.headers, answer.url
    assert not client.cookies


def test_a_person_signing_is_not_told_whether_an_address_already_signed(settings, signer: Signer, clock) -> None:
    """No enumeration: the second signature with an address answers exactly like the first."""
    form = signer.form()
    clock.advance(5)
    first = signer.post(form, json=True, email="ana@example.org")
    again = signer.post(form, json=True, email=" ANA@example.org ")
    assert first.status_code == again.status_code == 200
    assert first.json() == again.json()
    assert len(rows(settings)) == 1


def test_an_unexpected_error_still_carries_the_security_headers(settings, client_at, monkeypatch) -> None:
    """A bug must not be the one answer without nosniff and framing rules, nor leak its details."""
    make_pledge(settings)
    client = client_at(settings, "198.51.100.1", raise_server_exceptions=False)

    async def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(SQLiteStore, "pledge_by_slug", broken)
    page = client.get("/embed/some-pledge")
    api = client.get("/api/pledges/some-pledge/count")
    for answer in (page, api):
        assert answer.status_code == 500
        assert_security_headers(answer, "500")
        assert frame_ancestors(answer) == "'none'"
        assert "internal detail" not in answer.text
    assert "something went wrong on our side" in page.text
    assert api.json()["error"]["status"] == 500
