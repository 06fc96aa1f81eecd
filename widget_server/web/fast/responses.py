"""Responses whose body and header list are built by the view, skipping Starlette's header work.

`Response.__init__` turns a `headers=` dict into byte pairs on every request; the hot views
build their byte pairs once and reuse them (BENCHMARKS.md, item A, says what that saved).
"""

from __future__ import annotations

from starlette.responses import Response

RawHeaders = list[tuple[bytes, bytes]]


def raw(headers: dict[str, str]) -> RawHeaders:
    """Header byte pairs as Starlette writes them: lower-case names, latin-1."""
    return [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers.items()]


class Prebuilt(Response):
    """A response of ready bytes: `raw_headers` must already hold Content-Type and Content-Length."""

    def __init__(self, body: bytes, raw_headers: RawHeaders, status_code: int = 200) -> None:
        self.status_code = status_code
        self.background = None
        self.body = body
        self.raw_headers = raw_headers


def html(body: bytes, headers: RawHeaders, status_code: int = 200) -> Prebuilt:
    """An HTML page: `headers` (shared, never changed) plus its type and length."""
    return Prebuilt(body, _typed(headers, body, b"text/html; charset=utf-8"), status_code)


def json_bytes(body: bytes, headers: RawHeaders, status_code: int = 200) -> Prebuilt:
    """JSON already encoded, as Starlette's JSONResponse would send it."""
    return Prebuilt(body, _typed(headers, body, b"application/json"), status_code)


def _typed(headers: RawHeaders, body: bytes, content_type: bytes) -> RawHeaders:
    # A new list of the same class: a headers.Secured list stays marked (type and length
    # change nothing the security headers depend on).
    return type(headers)([*headers, (b"content-length", b"%d" % len(body)), (b"content-type", content_type)])
