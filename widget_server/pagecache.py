"""Rendered pages kept in memory, so a page view costs a dictionary look-up, not a render.

Only pages that are the same for everyone who asks are kept: the blank sign form (its one
per-request part, the form token, is left as a slot and filled in per request), the thank-you
page (the signer's name is the slot) and the counter badge. The key holds everything the page
shows, so a new count or a changed row is simply a new entry; the oldest entries are dropped past
`size`.
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Hashable

SLOT = "slot-" + secrets.token_hex(12)  # stands in for the form token while rendering


class PageCache:
    def __init__(self, size: int = 512) -> None:
        self._size = size
        self._pages: OrderedDict[Hashable, tuple[bytes, ...]] = OrderedDict()

    def get(self, key: Hashable, render: Callable[[], str]) -> tuple[bytes, ...]:
        """The page's pieces around each SLOT, rendering it on first use."""
        pieces = self._pages.get(key)
        if pieces is not None:
            self._pages.move_to_end(key)
            return pieces
        pieces = tuple(part.encode() for part in render().split(SLOT))
        self._pages[key] = pieces
        if len(self._pages) > self._size:
            self._pages.popitem(last=False)
        return pieces
