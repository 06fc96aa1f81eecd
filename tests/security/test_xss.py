"""SECURITY.md, threat 4: XSS through names, organisations and other text. Every answer carries the
Content-Security-Policy and its companions exactly once, and request bodies are bounded before
they are read. (The hostile-input table, the other half of this threat, is test_hostile_input.py.)"""

from __future__ import annotations

from collections.abc import Iterator, MutableMapping
from typing import Any

import httpx2
from starlette.testclient import TestClient

from tests.conftest import Signer, make_partner, make_pledge, rows
from tests.security.conftest import SLUG, assert_security_headers, unescaped
from widget_server.messages import TOO_LARGE


def test_security_headers_on_every_response(make_settings, make_client, clock) -> None:
    settings = make_settings(rate_limit="4/minute")
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    signer = Signer(client, clock, token=creds.token)
    form = signer.form()
    clock.advance(5)
    answers: dict[str, httpx2.Response] = {
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
        "sign 200": signer.post(form),
        "sign 400": signer.post(form, email="nope"),
        "sign 415": client.post(f"/embed/{SLUG}/sign", content=b"{}", headers={"Content-Type": "application/json"}),
        "sign 413": client.post(
            f"/embed/{SLUG}/sign", content=b"x" * 20_000, headers={"Content-Type": "application/x-www-form-urlencoded"}
        ),
        "sign 429": signer.post(form),
        "sign 403": signer.post(form, headers={"Sec-Fetch-Site": "cross-site"}),
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


# ---------------------------------------------------------------- bodies


def test_bodies_over_the_limit_get_413_before_being_read(settings, signer: Signer, clock) -> None:
    client = signer.client
    assert isinstance(client, TestClient)  # its ASGI app is called directly below
    form = signer.form()
    clock.advance(5)
    big = signer.post(form, organisation="x" * (settings.max_body_bytes + 1))
    assert big.status_code == 413
    assert unescaped(TOO_LARGE) in unescaped(big.text)
    as_json = signer.post(form, json=True, organisation="x" * 20_000)
    assert as_json.json() == {"error": {"status": 413, "message": TOO_LARGE}}
    assert rows(settings) == []

    # Straight to the ASGI app: a declared length over the limit is refused without one read.
    reads = 0
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"type": "http.request", "body": b"name=x" * 4000, "more_body": False}

    async def send(message: MutableMapping[str, Any]) -> None:
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

    assert client.portal is not None  # open: the fixture entered the client
    client.portal.call(call)
    assert reads == 0
    assert sent[0]["status"] == 413


def test_a_streamed_body_over_the_limit_gets_413(settings, signer: Signer) -> None:
    """No Content-Length (chunked): counted as it arrives, refused once past the limit."""
    client = signer.client

    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"organisation=" + b"x" * 1000 + b"&"

    answer = client.post(
        f"/embed/{SLUG}/sign", content=chunks(), headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert answer.status_code == 413
    assert rows(settings) == []


def test_a_body_with_no_length_is_still_metered_beyond_http_1(settings, signer: Signer) -> None:
    """HTTP/1 requests without Content-Length or Transfer-Encoding have no body, so they pass
    unwrapped; under another protocol version (HTTP/2 behind some ASGI servers) a body needs no
    announcement, and must still be cut off at the limit."""
    client = signer.client
    assert isinstance(client, TestClient)  # its ASGI app is called directly below
    sent: list[MutableMapping[str, Any]] = []
    chunks = 40

    async def receive() -> dict[str, Any]:
        nonlocal chunks
        chunks -= 1
        return {"type": "http.request", "body": b"organisation=" + b"x" * 1000 + b"&", "more_body": chunks > 0}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "2",
        "method": "POST",
        "scheme": "https",
        "path": f"/embed/{SLUG}/sign",
        "raw_path": f"/embed/{SLUG}/sign".encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"testserver"), (b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("198.51.100.5", 1234),
        "server": ("testserver", 443),
    }

    async def call() -> None:
        await client.app(scope, receive, send)

    assert client.portal is not None  # open: the fixture entered the client
    client.portal.call(call)
    assert sent[0]["status"] == 413
    assert rows(settings) == []


def test_a_form_with_more_fields_than_ours_is_refused(settings, signer: Signer, clock) -> None:
    form = signer.form()
    clock.advance(5)
    extra = {f"extra{i}": "x" for i in range(20)}
    answer = signer.post(form, json=True, headers=None, **extra)
    assert answer.status_code == 400
    assert "more fields than the pledge form" in answer.json()["error"]["message"]
    assert rows(settings) == []
    assert signer.post(form, json=True, headers=None, **dict(list(extra.items())[:10])).status_code == 200  # 15 in all


def test_the_body_limit_is_configurable(make_settings, make_client, clock) -> None:
    settings = make_settings(max_body_bytes=1024)
    make_pledge(settings)
    signer = Signer(make_client(settings), clock)
    form = signer.form()
    clock.advance(5)
    assert signer.post(form, occupation="x" * 1500).status_code == 413
    assert signer.post(form, occupation="x" * 50).status_code == 200
