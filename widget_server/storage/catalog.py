"""Pledges, partners and counts held in memory for a moment, so hot pages skip the database.

Rows are cached for `cache_seconds` (staff changes made by the CLI in another process, such
as a revocation, take effect within that time). Counts are replaced by the ones the writer read
back in the transaction that changed them, so a supporter always sees their own signature
counted, and a surge of signatures does not turn every page view into a database read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from widget_server import messages
from widget_server.core.models import Counts, Partner, Pledge
from widget_server.errors import NotFound
from widget_server.storage.store import BatchResult, Store


class _TimedCache:
    """Values kept for `ttl` seconds; concurrent misses on one key share a single load."""

    def __init__(self, ttl: float, clock: Callable[[], float], max_entries: int = 10_000) -> None:
        self._ttl = ttl
        self._clock = clock
        self._max_entries = max_entries
        # Oldest load first (a reload re-inserts), so the front is what to drop first.
        self._entries: dict[Any, tuple[float, Any]] = {}
        # Under load many requests miss at the same moment (the entry just expired); without
        # this each of them would read the database for the same row.
        self._loading: dict[Any, asyncio.Future[Any]] = {}
        # Changes made while a load was in flight, applied to what it read: in a surge some
        # commit lands during nearly every load, and dropping those loads would leave the
        # counts uncached, read again on every page view, for as long as the surge lasts.
        self._changes: dict[Any, list[Callable[[Any], Any]]] = {}

    async def get(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        entry = self._entries.get(key)
        now = self._clock()
        if entry and now - entry[0] < self._ttl:
            return entry[1]
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, load, now))
            self._loading[key] = pending
        # Shielded: one waiter giving up (a client that went away) must not cancel the others' load.
        return await asyncio.shield(pending)

    async def _load(self, key: Any, load: Callable[[], Awaitable[Any]], now: float) -> Any:
        try:
            value = await load()
        except BaseException:
            self._changes.pop(key, None)
            raise
        finally:
            self._loading.pop(key, None)
        for change in self._changes.pop(key, ()):
            value = change(value)
        self._entries.pop(key, None)
        self._entries[key] = (now, value)
        # Keys come from requests (a slug nobody created is kept as "no such pledge" too), so the
        # number kept is bounded: the oldest loads go first.
        while len(self._entries) > self._max_entries:
            del self._entries[next(iter(self._entries))]
        return value

    def update(self, key: Any, change: Callable[[Any], Any]) -> None:
        """Change a kept value in place (its age stays), and the value of a load in flight.

        `change` must give the same result applied to any older value, as setting absolute
        figures does, since the load may or may not have read this change already.
        """
        entry = self._entries.get(key)
        if entry is not None:
            self._entries[key] = (entry[0], change(entry[1]))
        if key in self._loading:
            self._changes.setdefault(key, []).append(change)


class Catalog:
    def __init__(
        self,
        store: Store,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
        max_rows: int = 10_000,
    ) -> None:
        self._store = store
        self._rows = _TimedCache(cache_seconds, clock, max_rows)
        # Counts are exact for this process's own writes (updated on commit) and at most
        # cache_seconds old for writes made elsewhere.
        self._counts = _TimedCache(cache_seconds, clock)

    async def pledge(self, slug: str) -> Pledge:
        pledge = await self._rows.get(("pledge", slug), lambda: self._store.pledge_by_slug(slug))
        if pledge is None:
            raise NotFound(messages.NO_PLEDGE_HERE)
        return pledge  # type: ignore[no-any-return]

    async def partner(self, partner_id: int) -> Partner | None:
        return await self._rows.get(  # type: ignore[no-any-return]
            ("partner", partner_id), lambda: self._store.partner_by_id(partner_id)
        )

    async def counts(self, pledge_id: int, partner_id: int | None = None) -> Counts:
        total, partners = await self._counts.get(pledge_id, lambda: self._store.counts(pledge_id))
        if partner_id is None:
            return Counts(total)
        return Counts(total, partners.get(partner_id, 0))

    async def approved_organisations(self, pledge_id: int) -> list[str]:
        """The public list; an approval made with the CLI shows within cache_seconds."""
        return await self._rows.get(  # type: ignore[no-any-return]
            ("organisations", pledge_id), lambda: self._store.approved_organisation_names(pledge_id)
        )

    def counts_committed(self, result: BatchResult) -> None:
        """The writer committed: take the new counts it read back, instead of reading them again."""
        partners_of: dict[int, dict[int, int]] = {}
        for partner_id, (pledge_id, count) in result.partner_counts.items():
            partners_of.setdefault(pledge_id, {})[partner_id] = count
        for pledge_id, total in result.totals.items():
            self._counts.update(pledge_id, _with_counts(total, partners_of.get(pledge_id, {})))

    async def ping(self) -> None:
        await self._store.ping()


def _with_counts(
    total: int, changed: dict[int, int]
) -> Callable[[tuple[int, dict[int, int]]], tuple[int, dict[int, int]]]:
    """A kept (total, partner counts) entry with the writer's new figures put in."""

    def change(kept: tuple[int, dict[int, int]]) -> tuple[int, dict[int, int]]:
        return total, {**kept[1], **changed}

    return change
