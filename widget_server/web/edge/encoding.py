"""Compression at the edge: whether a client takes gzip, whether an answer is worth it, and the
answer rewritten gzipped (the bytes come from `web.fast.compressed`, which makes them cheap).

Pages and JSON of at least `MIN_BYTES` are compressed; the loader, the frame's script and its
stylesheet are stored gzipped already (`web.widget.assets`) and pass through as they are.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import Message, Scope

from widget_server.memo import BoundedMemo
from widget_server.web.edge.headers import SecuredAsIs
from widget_server.web.fast.compressed import MIN_BYTES, gzipped

_TYPES = (b"text/html", b"application/json")
_VARY = b"accept-encoding"
# Clients send a handful of distinct Accept-Encoding values; a page could send any, so the
# memo of answers is bounded like every other.
_accepts: BoundedMemo[bytes, bool] = BoundedMemo(max_entries=256, max_bytes=256 * 1024)


def gzip_accepted(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request's Accept-Encoding allows gzip (RFC 9110: by name, else by `*`; q=0 refuses)."""
    for name, value in headers:
        if name == b"accept-encoding":
            answer = _accepts.get(value)
            if answer is None:
                answer = _accepts.put(value, _allows_gzip(value))
            return answer
    return False


def gzip_wanted(scope: Scope) -> bool:
    """Whether a compressible answer to this request goes out gzipped: not to HEAD, and only to
    a client that takes gzip. The edge decides by this, and a kept page filled for an answer that
    cannot be gzipped need carry nothing for it (`web.fast.compressed`)."""
    return scope["method"] != "HEAD" and gzip_accepted(scope["headers"])


def _allows_gzip(value: bytes) -> bool:
    by_name: bool | None = None
    by_star = False
    for part in value.lower().split(b","):
        coding, _, params = part.partition(b";")
        coding = coding.strip()
        quality = 1.0
        for param in params.split(b";"):
            key, _, number = param.strip().partition(b"=")
            if key == b"q":
                try:
                    quality = float(number)
                except ValueError:
                    quality = 0.0
        if coding in (b"gzip", b"x-gzip"):
            by_name = quality > 0
        elif coding == b"*":
            by_star = quality > 0
    return by_star if by_name is None else by_name


def compressible(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether an answer with these headers is a page or JSON, not yet encoded, of MIN_BYTES or more."""
    if type(headers) is SecuredAsIs:  # a view's word that its answer goes as it is
        return False
    # Asked of every answer. A dict keeps the last of a repeated name, as reading them in order
    # would, and is built without a Python loop (tests/unit/test_edge_encoding.py).
    found = dict(headers)
    if b"content-encoding" in found:
        return False
    kind = found.get(b"content-type")
    length = found.get(b"content-length")
    return kind is not None and kind.startswith(_TYPES) and length is not None and int(length) >= MIN_BYTES


def with_gzip(start: Message, body: Message) -> tuple[Message, Message]:
    """The start and body messages of a compressible answer, gzipped (unless that is no smaller)."""
    plain = body.get("body", b"")
    packed = gzipped(plain)
    kept: list[tuple[bytes, bytes]] = []
    vary = [_VARY]
    for name, value in start["headers"]:
        if name == b"vary":
            vary = [value] if _VARY in value.lower() else [value, _VARY]
        elif name != b"content-length":
            kept.append((name, value))
    kept.append((b"vary", b", ".join(vary)))
    if len(packed) >= len(plain):
        kept.append((b"content-length", b"%d" % len(plain)))
        return {**start, "headers": kept}, body
    kept += [(b"content-encoding", b"gzip"), (b"content-length", b"%d" % len(packed))]
    return {**start, "headers": kept}, {**body, "body": packed}
