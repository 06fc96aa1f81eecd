"""The short-lived cache over a real store: it reloads after its time, shares one load between
concurrent readers, keeps counts from commits that race a load, and stays bounded."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import FakeClock
from widget_server.core.models import NewSignature
from widget_server.errors import NotFound
from widget_server.storage.catalog import Catalog
from widget_server.storage.sqlite.store import SQLiteStore
from widget_server.storage.store import BatchResult, Store


class CountingStore(SQLiteStore):
    """The real SQLite engine, counting the reads the catalog makes and able to hold one open."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.count_reads = 0
        self.pledge_reads = 0
        self.hold: asyncio.Event | None = None

    async def counts(self, pledge_id: int) -> tuple[int, dict[int, int]]:
        self.count_reads += 1
        found = await super().counts(pledge_id)
        if self.hold is not None:
            await self.hold.wait()
        return found

    async def pledge_by_slug(self, slug: str):
        self.pledge_reads += 1
        return await super().pledge_by_slug(slug)


async def opened(tmp_path: Path) -> CountingStore:
    store = CountingStore(tmp_path / "widget.sqlite3")
    await store.open()
    await store.migrate()
    await store.insert_pledge(
        slug="p", title="T", statement_html="s", goal=None, privacy_url=None, contact=None, now="now"
    )
    return store


async def sign(store: Store, email: str) -> BatchResult:
    return await store.write_signatures(
        [NewSignature(pledge_id=1, partner_id=None, email=email, name="A", created_at="2026-11-30T10:00:00Z")]
    )


def test_rows_are_kept_for_their_time_then_read_again(tmp_path: Path) -> None:
    clock = FakeClock()

    async def go() -> list[int]:
        store = await opened(tmp_path)
        catalog = Catalog(store, cache_seconds=2.0, clock=clock)
        seen = []
        for step in (0.0, 1.9, 0.2, 0.0):
            clock.advance(step)
            await catalog.pledge("p")
            seen.append(store.pledge_reads)
        await store.close()
        return seen

    assert asyncio.run(go()) == [1, 1, 2, 2]


def test_concurrent_readers_of_an_expired_entry_share_one_load(tmp_path: Path) -> None:
    async def go() -> tuple[int, list[int]]:
        store = await opened(tmp_path)
        catalog = Catalog(store, cache_seconds=2.0, clock=FakeClock())
        store.hold = asyncio.Event()
        readers = [asyncio.ensure_future(catalog.counts(1)) for _ in range(20)]
        await asyncio.sleep(0)
        store.hold.set()
        totals = [c.total for c in await asyncio.gather(*readers)]
        await store.close()
        return store.count_reads, totals

    reads, totals = asyncio.run(go())
    assert reads == 1
    assert totals == [0] * 20


def test_counts_committed_while_a_load_is_in_flight_are_not_lost(tmp_path: Path) -> None:
    async def go() -> tuple[int, int]:
        store = await opened(tmp_path)
        catalog = Catalog(store, cache_seconds=60.0, clock=FakeClock())
        store.hold = asyncio.Event()
        reader = asyncio.ensure_future(catalog.counts(1))
        while store.count_reads == 0:  # the load has read the old count and is held
            await asyncio.sleep(0)
        catalog.counts_committed(await sign(store, "a@example.org"))  # a commit lands meanwhile
        store.hold.set()
        during = (await reader).total
        store.hold = None
        after = (await catalog.counts(1)).total  # kept, not read again
        await store.close()
        return during, after

    during, after = asyncio.run(go())
    assert (during, after) == (1, 1)


def test_the_writers_counts_replace_kept_ones_without_a_read(tmp_path: Path) -> None:
    async def go() -> tuple[list[int], int]:
        store = await opened(tmp_path)
        catalog = Catalog(store, cache_seconds=60.0, clock=FakeClock())
        totals = [(await catalog.counts(1)).total]
        for email in ("a@example.org", "b@example.org"):
            catalog.counts_committed(await sign(store, email))
            totals.append((await catalog.counts(1)).total)
        await store.close()
        return totals, store.count_reads

    assert asyncio.run(go()) == ([0, 1, 2], 1)


def test_the_number_of_kept_rows_is_bounded(tmp_path: Path) -> None:
    async def go() -> int:
        store = await opened(tmp_path)
        catalog = Catalog(store, cache_seconds=60.0, clock=FakeClock(), max_rows=50)
        for n in range(500):  # slugs nobody created, as a scanner sends them
            try:
                await catalog.pledge(f"nothing-{n}")
            except NotFound:
                pass
        await store.close()
        return len(catalog._rows._entries)  # noqa: SLF001

    assert asyncio.run(go()) == 50
