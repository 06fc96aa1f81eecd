"""The edge's compression decisions: `compressible` reads the headers as a dict, which must say what
reading them in order said, and takes a view's word (SecuredAsIs) that its answer goes as it is; the
middleware asks whether the client takes gzip only for an answer worth compressing, which must
change no answer."""

from __future__ import annotations

import asyncio
from typing import Any

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from widget_server.web.edge import encoding
from widget_server.web.edge.encoding import _allows_gzip, compressible
from widget_server.web.edge.headers import SecuredAsIs, SecurityHeaders, secured
from widget_server.web.edge.middleware import EdgeMiddleware
from widget_server.web.fast.compressed import MIN_BYTES, gzipped
from widget_server.web.widget.assets import load_assets
from widget_server.web.widget.counter import _answer

PROPERTY = settings(max_examples=500, database=None, suppress_health_check=[HealthCheck.too_slow])

NAMES = [b"content-type", b"content-length", b"content-encoding", b"vary", b"cache-control", b"Content-Type"]
VALUES = [
    b"text/html; charset=utf-8",
    b"application/json",
    b"image/svg+xml",
    b"gzip",
    b"0",
    b"%d" % (MIN_BYTES - 1),
    b"%d" % MIN_BYTES,
    b"99999",
    b"",
]
HEADERS = st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=8)


def compressible_in_order(headers: list[tuple[bytes, bytes]]) -> bool:
    """The reading `compressible` replaced: the headers in order, the last of a name kept."""
    kind = length = None
    for name, value in headers:
        if name == b"content-type":
            kind = value
        elif name == b"content-length":
            length = value
        elif name == b"content-encoding":
            return False
    return (
        kind is not None
        and kind.startswith((b"text/html", b"application/json"))
        and length is not None
        and int(length) >= MIN_BYTES
    )


def outcome(check: Any, headers: list[tuple[bytes, bytes]]) -> object:
    try:
        return check(headers)
    except ValueError:  # a Content-Length that is not a number, read only for a page or JSON
        return ValueError


@PROPERTY
@given(HEADERS)
@example([(b"content-type", b"text/html"), (b"content-length", b"99999"), (b"content-type", b"image/png")])
@example([(b"content-type", b"application/json"), (b"content-length", b""), (b"content-encoding", b"gzip")])
@example([(b"content-type", b"application/json"), (b"content-length", b"")])
def test_compressible_reads_the_headers_as_reading_them_in_order_did(headers: list[tuple[bytes, bytes]]) -> None:
    assert outcome(compressible, headers) == outcome(compressible_in_order, headers)


ENCODINGS = st.sampled_from([None, b"gzip", b"gzip;q=0", b"br, *", b"*;q=0, deflate", b"identity", b"x-gzip;q=0.5"])


def answer_through_edge(method: str, accept_encoding: bytes | None, body: bytes, kind: bytes) -> list[Message]:
    """What the edge sends for one answer of the app's."""

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        headers = [(b"content-type", kind), (b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    headers = [] if accept_encoding is None else [(b"accept-encoding", accept_encoding)]
    scope = {"type": "http", "method": method, "path": "/", "headers": headers, "http_version": "1.1"}
    asyncio.run(EdgeMiddleware(app, access_log=False)(scope, receive, send))
    return sent


@settings(max_examples=150, database=None, deadline=None)
@given(
    st.sampled_from(["GET", "HEAD", "POST"]),
    ENCODINGS,
    st.sampled_from([b"{}", b"x" * MIN_BYTES, b"<p>" + b"a" * (2 * MIN_BYTES)]),
    st.sampled_from([b"application/json", b"text/html; charset=utf-8", b"image/png"]),
)
def test_gzip_is_what_the_client_accepts_whenever_the_answer_is_worth_it(
    method: str, accept_encoding: bytes | None, body: bytes, kind: bytes
) -> None:
    start, sent_body = answer_through_edge(method, accept_encoding, body, kind)
    headers = dict(start["headers"])
    worth_it = kind != b"image/png" and len(body) >= MIN_BYTES
    takes_gzip = method != "HEAD" and accept_encoding is not None and _allows_gzip(accept_encoding)
    packed = headers.get(b"content-encoding") == b"gzip"
    assert packed == (worth_it and takes_gzip and len(gzipped(body)) < len(body))
    assert (b"vary" in headers) == worth_it  # any answer that could have been gzipped says so
    assert sent_body["body"] == (gzipped(body) if packed else body)


def test_an_answer_never_compressed_never_asks_about_the_clients_encodings() -> None:
    encoding._accepts.clear()
    answer_through_edge("GET", b"gzip, deflate, br;q=0.5", b'{"status":"signed","total":1}', b"application/json")
    assert b"gzip, deflate, br;q=0.5" not in encoding._accepts
    answer_through_edge("GET", b"gzip, deflate, br;q=0.5", b"<p>" + b"a" * (2 * MIN_BYTES), b"text/html")
    assert b"gzip, deflate, br;q=0.5" in encoding._accepts


# The count API marks its answers small (SecuredAsIs), so the edge skips reading their headers:
# the mark must be true of every answer it can give, and change nothing else the edge does.


@PROPERTY
@given(st.integers(0, 10**15), st.one_of(st.none(), st.integers(0, 10**15)))
def test_every_count_answer_marked_small_is_one_the_edge_would_not_compress(total: int, partner: int | None) -> None:
    _, body, ok, not_modified = _answer(total, partner)
    assert type(ok) is SecuredAsIs and type(not_modified) is SecuredAsIs
    assert len(body) < MIN_BYTES
    assert not compressible(ok) and not compressible(list(ok)) and not compressible(list(not_modified))


def test_a_small_answer_gets_only_hsts_from_the_edge_and_is_never_gzipped() -> None:
    big = SecuredAsIs(secured([(b"content-type", b"application/json"), (b"content-length", b"%d" % MIN_BYTES)]))
    assert not compressible(big)  # the mark is the view's promise; the edge takes its word
    security = SecurityHeaders()
    assert security.added(big, https=False) == []
    assert [name for name, _ in security.added(big, https=True)] == [b"strict-transport-security"]


def test_a_stored_assets_gzip_and_304_are_marked_and_the_edge_would_not_compress_them() -> None:
    for asset in load_assets().files.values():
        not_modified, gzipped, _ = asset.headers
        assert not compressible(list(not_modified))
        if asset.gzipped is not None:
            assert not compressible(list(gzipped))  # it says Content-Encoding: gzip
