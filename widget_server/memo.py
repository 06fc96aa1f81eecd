"""The one kind of memory the server keeps for speed: a memo bounded by entries and by bytes.

Tokens, prebuilt headers, parsed query strings and rendered pages are remembered because they
are asked for again and again. Some keys come straight from requests (a query string, a token,
a partner's origins), so no memo may grow with what clients send: each is bounded by a number
of entries and by an approximate size in bytes, and forgets its oldest entries first when
either bound would be passed. An entry larger than the whole byte bound is not kept at all.

A hit is one dictionary look-up and reorders nothing (oldest first, not least recently used),
so a memo costs a hot path no more than the dictionary it stands for.
"""

from __future__ import annotations

import dataclasses
import sys
from collections import OrderedDict
from collections.abc import Callable, Hashable, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

# Roughly what CPython spends on an entry beyond its key and value: two dictionary slots and
# the order-keeping link. Counted so that many tiny entries still add up.
ENTRY_OVERHEAD = 200


def approx_size(value: object) -> int:
    """About how many bytes `value` holds, following tuples, lists, mappings and dataclasses.

    An estimate for bounding memory, not an exact count: objects shared with others are
    counted as if they were the memo's own, which errs on the side of keeping less.
    """
    if isinstance(value, str):
        return 49 + len(value)
    if isinstance(value, bytes):
        return 33 + len(value)
    if value is None or isinstance(value, int | float):
        return 28
    if isinstance(value, tuple | list | set | frozenset):
        return 56 + 8 * len(value) + sum(approx_size(item) for item in value)
    if isinstance(value, Mapping):
        return 64 + sum(approx_size(k) + approx_size(v) + 24 for k, v in value.items())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return 56 + sum(approx_size(getattr(value, f.name)) for f in dataclasses.fields(value))
    return sys.getsizeof(value)


def approx_entry_size(key: object, value: object) -> int:
    """The default measure of an entry: its key and its value, plus the memo's own overhead."""
    return ENTRY_OVERHEAD + approx_size(key) + approx_size(value)


class BoundedMemo(Generic[K, V]):
    """Values by key, at most `max_entries` of them and about `max_bytes` in all.

    `size(key, value)` estimates an entry's bytes (`approx_entry_size` by default); it is
    called once, when the entry is stored. None cannot be kept (`get` answers None for a
    missing key). Not safe across threads: each memo belongs to the event loop that uses it.
    """

    __slots__ = ("max_entries", "max_bytes", "_size", "_values", "_order", "_bytes")

    def __init__(self, max_entries: int, max_bytes: int, size: Callable[[K, V], int] = approx_entry_size) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("a memo must be able to hold something")
        self.max_entries = max_entries
        self.max_bytes = max_bytes
        self._size = size
        # Values in a plain dict for the look-up; each entry's size, in the order stored, beside.
        self._values: dict[K, V] = {}
        self._order: OrderedDict[K, int] = OrderedDict()
        self._bytes = 0

    def get(self, key: K) -> V | None:
        """The value kept for `key`, or None."""
        return self._values.get(key)

    def put(self, key: K, value: V) -> V:
        """Keep `value` under `key` (replacing what was there), forgetting the oldest as needed."""
        size = self._size(key, value)
        self.discard(key)
        if size > self.max_bytes:
            return value
        order = self._order
        while order and (len(order) >= self.max_entries or self._bytes + size > self.max_bytes):
            oldest, oldest_size = order.popitem(last=False)
            del self._values[oldest]
            self._bytes -= oldest_size
        self._values[key] = value
        order[key] = size
        self._bytes += size
        return value

    def get_or_make(self, key: K, make: Callable[[], V]) -> V:
        """The value kept for `key`, made with `make()` and kept on first use."""
        value = self._values.get(key)
        if value is None:
            value = self.put(key, make())
        return value

    def discard(self, key: K) -> None:
        """Forget `key`, if it is kept."""
        size = self._order.pop(key, None)
        if size is not None:
            del self._values[key]
            self._bytes -= size

    def clear(self) -> None:
        self._values.clear()
        self._order.clear()
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    @property
    def bytes(self) -> int:
        """The estimated size of everything kept now."""
        return self._bytes
