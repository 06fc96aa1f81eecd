"""The one bounded memo: it never holds more entries or more bytes than it was given, whatever
keys it is fed, and forgets the oldest first."""

from __future__ import annotations

import pytest

from widget_server.memo import ENTRY_OVERHEAD, BoundedMemo, approx_entry_size, approx_size


def by_length(key: str, value: str) -> int:
    return len(key) + len(value)


def test_it_never_holds_more_entries_than_its_bound_and_forgets_the_oldest_first() -> None:
    memo: BoundedMemo[int, str] = BoundedMemo(3, 10**6)
    for key in range(10):
        memo.put(key, str(key))
        assert len(memo) <= 3
    assert [key for key in range(10) if key in memo] == [7, 8, 9]
    assert memo.get(6) is None and memo.get(9) == "9"


def test_it_never_holds_more_bytes_than_its_bound_whatever_the_keys() -> None:
    # Keys a client chooses (a query string, a token) must not grow memory without limit.
    memo: BoundedMemo[str, str] = BoundedMemo(10**6, 1000, by_length)
    keys = [f"key-{n}-" + "x" * (n % 97) for n in range(500)]
    for n, key in enumerate(keys):
        memo.put(key, "v" * 50)
        assert memo.bytes <= 1000
        # The running total is exactly what is kept now, not what was ever put.
        assert memo.bytes == sum(by_length(k, "v" * 50) for k in keys[: n + 1] if k in memo)
    assert 0 < len(memo) < 20


def test_an_entry_larger_than_the_whole_bound_is_not_kept_and_evicts_nothing() -> None:
    memo: BoundedMemo[str, str] = BoundedMemo(10, 100, by_length)
    memo.put("small", "value")
    assert memo.put("huge", "x" * 1000) == "x" * 1000  # still handed back to the caller
    assert "huge" not in memo and memo.get("small") == "value"
    assert memo.bytes == len("small") + len("value")


def test_replacing_a_key_counts_only_its_new_value() -> None:
    memo: BoundedMemo[str, str] = BoundedMemo(10, 1000, by_length)
    memo.put("k", "a" * 100)
    memo.put("k", "b" * 10)
    assert len(memo) == 1 and memo.get("k") == "b" * 10
    assert memo.bytes == 11


def test_a_hit_does_not_refresh_an_entry() -> None:
    """Oldest first, not least recently used: a hit is a bare look-up."""
    memo: BoundedMemo[str, int] = BoundedMemo(2, 10**6)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1
    memo.put("c", 3)
    assert "a" not in memo and "b" in memo and "c" in memo


def test_get_or_make_makes_once() -> None:
    memo: BoundedMemo[str, list[int]] = BoundedMemo(4, 10**6)
    made: list[str] = []

    def make() -> list[int]:
        made.append("made")
        return [1]

    first = memo.get_or_make("k", make)
    assert memo.get_or_make("k", make) is first
    assert made == ["made"]


def test_discard_and_clear_give_the_bytes_back() -> None:
    memo: BoundedMemo[str, str] = BoundedMemo(10, 1000, by_length)
    memo.put("a", "1234")
    memo.put("b", "12")
    memo.discard("a")
    memo.discard("not there")
    assert memo.bytes == 3 and len(memo) == 1
    memo.clear()
    assert memo.bytes == 0 and len(memo) == 0 and memo.get("b") is None


def test_a_memo_that_could_hold_nothing_is_refused() -> None:
    with pytest.raises(ValueError):
        BoundedMemo(0, 100)
    with pytest.raises(ValueError):
        BoundedMemo(10, 0)


def test_the_default_size_grows_with_what_is_kept() -> None:
    small = approx_entry_size("k", ("a", b"b", 1))
    assert small > ENTRY_OVERHEAD
    assert approx_entry_size("k" * 1000, ("a", b"b", 1)) >= small + 999
    assert approx_entry_size("k", ("a" * 1000, b"b", 1)) >= small + 999
    assert approx_entry_size("k", ("a", b"b" * 1000, 1)) >= small + 999
    assert approx_size({"x" * 500: "y" * 500}) > 1000
    assert approx_size([("a", "b")] * 10) > approx_size([("a", "b")])
