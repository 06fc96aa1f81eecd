"""Rendered pages kept in memory, so a page view costs a dictionary look-up, not a render.

A page is rendered once with named slots where its per-request parts go (the form token, the
signer's name, the count), and each request fills them in. So the sign form, the thank-you page
and the counter badge stay rendered while the count climbs through a surge, which is exactly
when they are asked for most. The caller's key holds everything else the page shows (for the
widget's pages, `web.widget.render.page_key`), so a changed row is simply a new entry; the
oldest entries are dropped past `size` pages or `max_bytes`.
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Protocol

from widget_server.memo import BoundedMemo

# Random, so no text a person types can pose as a slot; only [0-9a-z_-], which autoescape and
# the urlencode filter leave as they are.
_MARK = "slot" + secrets.token_hex(8)
_SLOTS = re.compile(f"{_MARK}-([a-z_]+)-{_MARK}")


def slot(name: str) -> str:
    """Stands in for `name` while a page is rendered for the cache."""
    return f"{_MARK}-{name}-{_MARK}"


@dataclass(frozen=True)
class Page:
    pieces: tuple[bytes, ...]  # the text between the slots
    slots: tuple[str, ...]  # the slot after each piece but the last
    # Worked out once per page: the pieces as one bytes format (a %b for each slot, any % in the
    # text doubled) and a reader of the slots' values in order, so a fill is one formatting.
    _format: bytes = field(init=False, repr=False, compare=False)
    _read: Callable[[Mapping[str, str]], tuple[str, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.pieces) != len(self.slots) + 1:
            raise ValueError("a page has one piece more than slots")
        object.__setattr__(self, "_format", b"%b".join(piece.replace(b"%", b"%%") for piece in self.pieces))
        object.__setattr__(self, "_read", _reader(self.slots))

    def values(self, values: Mapping[str, str]) -> tuple[bytes, ...]:
        """Each slot's value, encoded, in the order the slots come."""
        return tuple(map(str.encode, self._read(values)))

    def join(self, encoded: tuple[bytes, ...]) -> bytes:
        """The pieces with the slots' encoded values (`values`) between them."""
        return self._format % encoded

    def fill(self, values: Mapping[str, str], gzip_wanted: bool = True) -> bytes:
        """The page with each slot replaced by its value (already escaped for where it goes).

        `gzip_wanted` changes nothing here: a plain page carries nothing for gzip.
        """
        return self._format % tuple(map(str.encode, self._read(values)))


def _reader(slots: tuple[str, ...]) -> Callable[[Mapping[str, str]], tuple[str, ...]]:
    # itemgetter answers a tuple only for two names or more.
    if len(slots) > 1:
        return itemgetter(*slots)
    if slots:
        name = slots[0]
        return lambda values: (values[name],)
    return lambda values: ()


class KeptPage(Protocol):
    """What a page cache hands back: a page that fills its slots (`Page`, or a page that can
    also be sent compressed)."""

    def fill(self, values: Mapping[str, str], gzip_wanted: bool = True) -> bytes:
        """The page with its slots filled; `gzip_wanted` False when the answer cannot go out
        gzipped (`web.edge.encoding.gzip_wanted`), so the bytes need carry nothing for it."""
        ...


class PageCache:
    def __init__(self, size: int = 512, max_bytes: int = 16 * 1024 * 1024) -> None:
        self._pages: BoundedMemo[Hashable, Page] = BoundedMemo(size, max_bytes)

    def get(self, key: Hashable, render: Callable[[], str]) -> Page:
        """The page kept under `key`, rendering it on first use."""
        page = self._pages.get(key)
        if page is None:
            page = self._pages.put(key, split_page(render()))
        return page


def split_page(rendered: str) -> Page:
    """A rendered page cut at its slots."""
    split = _SLOTS.split(rendered)
    return Page(tuple(text.encode() for text in split[0::2]), tuple(split[1::2]))
