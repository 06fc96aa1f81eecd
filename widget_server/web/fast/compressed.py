"""Gzip for the answers that are worth it, at a cost paid once per distinct page, not per request.

A kept page (`pagecache`) is the same for everyone but for a few slots (the form token, the
count, a signer's name), so each piece between the slots is deflated once, when the page is
kept, and a request only joins the pieces with its slot values as stored (uncompressed) deflate
blocks and adds the gzip header and trailer. Any client inflates the result; the slot values
are a few dozen bytes, so storing them costs next to nothing in size.

Any other body worth compressing (the privacy notice, the list of organisations, an error page)
is compressed whole, once per distinct body, and remembered.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Callable, Hashable, Mapping

from widget_server.memo import BoundedMemo
from widget_server.web.fast.pagecache import Page, split_page

# Magic, deflate, no flags, no time (so equal pages give equal bytes), best compression, unknown OS.
_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
_STORED_MAX = 0xFFFF
# Below this a body gains too little to be worth a Content-Encoding.
MIN_BYTES = 1024


def _deflated(piece: bytes, last: bool) -> bytes:
    """`piece` as raw deflate blocks that end on a byte boundary, the final block if `last`.

    Each piece has its own compressor, so no back-reference reaches across a slot: the slot
    values, whose lengths differ per request, sit between pieces in the stream.
    """
    compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
    return compressor.compress(piece) + compressor.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)


def _stored(value: bytes) -> bytes:
    """`value` as stored deflate blocks (BFINAL=0, BTYPE=00), after a byte-aligned block."""
    blocks: list[bytes] = []
    for start in range(0, len(value), _STORED_MAX):
        chunk = value[start : start + _STORED_MAX]
        blocks += (b"\x00", struct.pack("<HH", len(chunk), len(chunk) ^ 0xFFFF), chunk)
    return b"".join(blocks)


def _trailer(body: bytes) -> bytes:
    return struct.pack("<II", zlib.crc32(body), len(body) & 0xFFFFFFFF)


class FilledPage(bytes):
    """A kept page with its slots filled: plain bytes that also know how to gzip themselves cheaply."""

    page: CompressiblePage
    values: tuple[bytes, ...]

    def gzipped(self) -> bytes:
        page = self.page
        # Pages opened in the same tenth of a second share a form token, and the count changes
        # only with a signature: in a surge the last answer is usually this one again.
        last = page.last
        if last is not None and last[0] == self.values:
            return last[1]
        deflated = page.deflated
        parts = [_HEADER, deflated[0]]
        for value, piece in zip(self.values, deflated[1:], strict=True):
            if value:
                parts.append(_stored(value))
            parts.append(piece)
        parts.append(_trailer(self))
        answer = b"".join(parts)
        page.last = (self.values, answer)
        return answer


class CompressiblePage:
    """A kept page (`pagecache.Page`) and its pieces deflated once."""

    __slots__ = ("page", "deflated", "last")

    def __init__(self, page: Page) -> None:
        self.page = page
        self.last: tuple[tuple[bytes, ...], bytes] | None = None
        last = len(page.pieces) - 1
        self.deflated = tuple(_deflated(piece, i == last) for i, piece in enumerate(page.pieces))

    def fill(self, values: Mapping[str, str], gzip_wanted: bool = True) -> bytes:
        """The page with its slots filled (as `Page.fill`), ready to be sent plain or gzipped.

        When the answer cannot go out gzipped (`gzip_wanted` False: the client takes no gzip),
        the plain bytes: equal, and what gzipping them would need is never asked for.
        """
        page = self.page
        if not gzip_wanted:
            return page.fill(values)
        encoded = page.values(values)
        filled = FilledPage(page.join(encoded))
        filled.page = self
        filled.values = encoded
        return filled


def _kept_size(key: Hashable, page: CompressiblePage) -> int:
    # The plain pieces twice (the page keeps them joined as its format too) and the deflated
    # ones, plus the key and the entry itself.
    return 200 + len(repr(key)) + 2 * sum(map(len, page.page.pieces)) + sum(map(len, page.deflated))


class CompressiblePageCache:
    """`pagecache.PageCache`, whose pages can also be sent gzipped without compressing per request."""

    def __init__(self, size: int = 512, max_bytes: int = 24 * 1024 * 1024) -> None:
        self._pages: BoundedMemo[Hashable, CompressiblePage] = BoundedMemo(size, max_bytes, _kept_size)

    def get(self, key: Hashable, render: Callable[[], str]) -> CompressiblePage:
        """The page kept under `key`, rendered (and its pieces deflated) on first use."""
        page = self._pages.get(key)
        if page is None:
            page = self._pages.put(key, CompressiblePage(split_page(render())))
        return page


# Whole bodies compressed once. Keyed by the body itself: an equal body is an equal answer.
_whole: BoundedMemo[bytes, bytes] = BoundedMemo(256, 4 * 1024 * 1024, lambda key, value: 200 + len(key) + len(value))


def gzipped(body: bytes) -> bytes:
    """`body` gzipped: from its kept pieces if it is a FilledPage, else compressed once and kept."""
    if type(body) is FilledPage:
        return body.gzipped()
    kept = _whole.get(body)
    if kept is None:
        compressor = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS, 9)
        deflated = compressor.compress(body) + compressor.flush()
        kept = _whole.put(bytes(body), _HEADER + deflated + _trailer(body))
    return kept
