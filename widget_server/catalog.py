"""Pledges, partners and counts held in memory for a moment, so hot pages skip the database.

Rows are cached for `cache_seconds` (staff changes made by the CLI in another process, such
as a revocation, take effect within that time). Counts are dropped as soon as the writer
commits, so a supporter always sees their own signature counted.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiosqlite

from . import queries
from .errors import NotFound
from .models import Counts, Partner, Pledge


class _TimedCache:
    def __init__(self, ttl: float, clock: Callable[[], float]) -> None:
        self._ttl = ttl
        self._clock = clock
        self._entries: dict[Any, tuple[float, Any]] = {}
        self._generation: dict[Any, int] = {}

    async def get(self, key: Any, load: Callable[[], Awaitable[Any]]) -> Any:
        entry = self._entries.get(key)
        now = self._clock()
        if entry and now - entry[0] < self._ttl:
            return entry[1]
        generation = self._generation.get(key, 0)
        value = await load()
        # A load that raced with an invalidation may hold stale data: use it, keep it not.
        if self._generation.get(key, 0) == generation:
            self._entries[key] = (now, value)
        return value

    def invalidate(self, key: Any) -> None:
        self._entries.pop(key, None)
        self._generation[key] = self._generation.get(key, 0) + 1


class Catalog:
    def __init__(
        self,
        conn: aiosqlite.Connection,
        cache_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._rows = _TimedCache(cache_seconds, clock)
        # Counts are exact for this process's own writes (invalidated on commit) and at most
        # cache_seconds old for writes made elsewhere.
        self._counts = _TimedCache(cache_seconds, clock)

    async def pledge(self, slug: str) -> Pledge:
        pledge = await self._rows.get(("pledge", slug), lambda: queries.pledge_by_slug(self._conn, slug))
        if pledge is None:
            raise NotFound("There is no pledge at this address.")
        return pledge  # type: ignore[no-any-return]

    async def partner(self, partner_id: int) -> Partner | None:
        return await self._rows.get(  # type: ignore[no-any-return]
            ("partner", partner_id), lambda: queries.partner_by_id(self._conn, partner_id)
        )

    async def counts(self, pledge_id: int, partner_id: int | None = None) -> Counts:
        total, partners = await self._counts.get(
            pledge_id, lambda: queries.counts(self._conn, pledge_id)
        )
        if partner_id is None:
            return Counts(total)
        return Counts(total, partners.get(partner_id, 0))

    def counts_changed(self, pledge_ids: set[int]) -> None:
        for pledge_id in pledge_ids:
            self._counts.invalidate(pledge_id)

    async def ping(self) -> None:
        await queries.ping(self._conn)
