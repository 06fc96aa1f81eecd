"""The SQLite engine folds the staff area's kept counts in from the rows after the signing commit.

The invariants: a signing commit writes none of the five tables; every read through the Store is
exact anyway (it folds first); a crash between a commit and its fold loses and doubles nothing;
a removal corrects only what was folded; an id handed out again after a removal is still folded;
and the migration that brought the fold in does not count old signatures twice.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path

import pytest

from widget_server.core.models import NewSignature
from widget_server.storage.engines import open_store
from widget_server.storage.sqlite import db, queries
from widget_server.storage.sqlite import store as sqlite_store
from widget_server.storage.store import PartnerTotals, Store

KEPT = ("signature_hours", "signature_minutes", "signature_occupations", "signature_sources", "partner_totals")


def signature(email: str, at: str = "2026-11-30T10:15:00.000Z", opt_in_updates: bool = False) -> NewSignature:
    return NewSignature(
        pledge_id=1,
        partner_id=None,
        email=email,
        name="Ana",
        occupation=" Nurse",
        opt_in_updates=opt_in_updates,
        created_at=at,
    )


def url(path: Path) -> str:
    return f"sqlite:///{path}"


async def a_pledge(store: Store) -> None:
    await store.insert_pledge(
        slug="p", title="T", statement_html="s", goal=None, privacy_url=None, contact=None, now="n"
    )


def fresh(path: Path) -> None:
    async def go() -> None:
        async with open_store(url(path)) as store:
            await a_pledge(store)

    asyncio.run(go())


def commit_only(path: Path, batch: Sequence[NewSignature]) -> None:
    """A signing commit and nothing after it, as if the process died before any fold."""
    conn = db.connect_sync(path)
    try:
        queries.insert_signatures(conn, batch)
    finally:
        conn.close()


def kept_rows(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return sum(conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] for table in KEPT)
    finally:
        conn.close()


def mark(path: Path) -> tuple[int, int]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(queries.FOLD_STATE).fetchone()
    finally:
        conn.close()


def test_a_signing_commit_leaves_the_kept_counts_to_the_fold(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    fresh(path)
    commit_only(path, [signature("a@example.org"), signature("b@example.org")])
    assert kept_rows(path) == 0
    assert mark(path) == (0, 2)
    conn = db.connect_sync(path)
    queries.fold_kept_counts(conn)
    queries.fold_kept_counts(conn)  # nothing left: counts nothing twice
    conn.close()
    assert mark(path) == (2, 2)
    assert kept_rows(path) == 5  # one row in each table: one hour, minute, occupation, source, partner


def test_reads_through_the_store_fold_first_after_a_crash(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    fresh(path)
    commit_only(path, [signature("a@example.org", opt_in_updates=True), signature("b@example.org")])

    async def go() -> tuple[list[PartnerTotals], list[str]]:
        async with open_store(url(path)) as store:
            return await store.partner_totals(1), await store.integrity()

    totals, problems = asyncio.run(go())
    assert [(t.signatures, t.opt_in_updates) for t in totals] == [(2, 1)]
    assert problems == []


def test_removals_correct_what_was_folded_and_leave_the_rest_to_the_fold(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    fresh(path)
    commit_only(path, [signature("a@example.org"), signature("b@example.org", at="2026-11-30T11:00:00.000Z")])
    conn = db.connect_sync(path)
    queries.fold_kept_counts(conn)
    conn.close()
    commit_only(path, [signature("c@example.org"), signature("d@example.org")])  # not folded yet

    async def go() -> tuple[int, list[str], list[PartnerTotals], list[tuple[str, int]]]:
        async with open_store(url(path)) as store:
            erased = await store.erase_signatures("a@example.org") + await store.erase_signatures("c@example.org")
            hours = [(h.hour, h.count) for h in await store.hour_counts(1, "2026-11-30T00")]
            return erased, await store.integrity(), await store.partner_totals(1), hours

    erased, problems, totals, hours = asyncio.run(go())
    assert erased == 2
    assert problems == []
    assert [t.signatures for t in totals] == [2]
    assert hours == [("2026-11-30T10", 1), ("2026-11-30T11", 1)]


def test_an_id_handed_out_again_after_a_removal_is_folded(tmp_path: Path) -> None:
    path = tmp_path / "w.sqlite3"
    fresh(path)

    async def go() -> tuple[list[PartnerTotals], list[str]]:
        async with open_store(url(path)) as store:
            await store.write_signatures([signature("a@example.org"), signature("b@example.org")])
            assert [t.signatures for t in await store.partner_totals(1)] == [2]  # folded: the mark is at 2
            await store.erase_signatures("b@example.org")  # the highest id goes
            await store.write_signatures([signature("c@example.org")])  # SQLite gives id 2 again
            return await store.partner_totals(1), await store.integrity()

    totals, problems = asyncio.run(go())
    assert [t.signatures for t in totals] == [2]
    assert problems == []


def test_the_store_folds_while_signatures_arrive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sqlite_store, "FOLD_SECONDS", 0.0)
    path = tmp_path / "w.sqlite3"
    fresh(path)

    async def go() -> None:
        async with open_store(url(path)) as store:
            await store.write_signatures([signature("a@example.org")])
            await store.write_signatures([signature("b@example.org")])
        # Closing waited for the fold started after the last batch.

    asyncio.run(go())
    assert mark(path) == (2, 2)
    assert kept_rows(path) == 5


def test_the_migration_counts_signatures_kept_before_it_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "w.sqlite3"
    real = db.migrations()
    version = next(v for v, sql in real if "kept_counts_folded" in sql)
    monkeypatch.setattr(db, "migrations", lambda: [m for m in real if m[0] < version])
    db.migrate(path)
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("INSERT INTO pledges (slug, title, statement_html, created_at) VALUES ('p', 'T', 's', 'n')")
    conn.executemany(
        "INSERT INTO signatures (pledge_id, email, name, created_at) VALUES (1, ?, 'Ana', '2026-11-30T10:00:00Z')",
        [("a@example.org",), ("b@example.org",)],
    )
    conn.execute("UPDATE pledges SET signature_count = 2")
    conn.execute("INSERT INTO signature_days (pledge_id, partner_id, day, count) VALUES (1, 0, '2026-11-30', 2)")
    for sql in queries.REBUILD_KEPT_COUNTS:  # as the writer kept them before the fold
        conn.execute(sql, {"p": 1})
    conn.close()
    monkeypatch.setattr(db, "migrations", lambda: real)

    async def go() -> tuple[list[PartnerTotals], list[str]]:
        async with open_store(url(path)) as store:
            return await store.partner_totals(1), await store.integrity()

    totals, problems = asyncio.run(go())
    assert [t.signatures for t in totals] == [2]
    assert problems == []
