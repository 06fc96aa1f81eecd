"""The SQLite engine keeps personal data private on disk: the database, its WAL and shared-memory
files and its backups are readable by their owner only, in a folder only the owner can list."""

from __future__ import annotations

import asyncio
import stat
from pathlib import Path

from widget_server.core.models import NewSignature
from widget_server.storage.engines import open_store, store_for


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_files_and_backups_are_private(tmp_path: Path) -> None:
    database = tmp_path / "data" / "widget.sqlite3"

    async def go() -> None:
        async with open_store(database) as store:
            pledge = await store.insert_pledge(
                slug="p", title="T", statement_html="s", goal=None, privacy_url=None, contact=None, now="now"
            )
            await store.write_signatures([NewSignature(pledge.id, None, "ana@example.org", "Ana", created_at="now")])
            files = [database, database.with_name(database.name + "-wal"), database.with_name(database.name + "-shm")]
            assert [(p.name, mode(p)) for p in files] == [(p.name, 0o600) for p in files]
        await store_for(database).backup(tmp_path / "copy.sqlite3")

    asyncio.run(go())
    assert mode(database.parent) == 0o700
    assert mode(tmp_path / "copy.sqlite3") == 0o600


def test_the_outboxs_unflushed_commits_leave_the_writer_fsyncing_its_signatures(tmp_path: Path) -> None:
    """The outbox's bookkeeping commits on the signature writer's connection without a flush of its
    own (storage/sqlite/queries.py, `_unflushed`); every batch of signatures after it must still be
    fsynced before it is answered (synchronous=FULL), whether the bookkeeping worked or failed."""
    from widget_server.storage.sqlite.store import SQLiteStore

    async def go() -> list[int]:
        seen = []
        async with open_store(tmp_path / "w.sqlite3") as store:
            assert isinstance(store, SQLiteStore)
            pledge = await store.insert_pledge(
                slug="p", title="T", statement_html="s", goal=None, privacy_url=None, contact=None, now="now"
            )
            await store.write_signatures([NewSignature(pledge.id, None, "a@example.org", "A", created_at="now")])
            writer = store._write_conn
            assert writer is not None
            await store.claim_outbox("2026-11-30T10:00:00Z", "2026-11-30T10:01:00Z", 10)
            seen.append(writer.execute("PRAGMA synchronous").fetchone()[0])
            await store.outbox_sent([1, 2])
            seen.append(writer.execute("PRAGMA synchronous").fetchone()[0])
            try:
                await store.outbox_failed(1, "x", "not a time")  # an id with no row: nothing changes
            finally:
                seen.append(writer.execute("PRAGMA synchronous").fetchone()[0])
            writer.execute("DROP TABLE outbox")  # the bookkeeping now fails inside its transaction
            try:
                await store.outbox_sent([1])
            except Exception:
                pass
            seen.append(writer.execute("PRAGMA synchronous").fetchone()[0])
        return seen

    assert asyncio.run(go()) == [2, 2, 2, 2]  # FULL, every time


def test_every_connection_overwrites_what_it_deletes(tmp_path: Path) -> None:
    """Erasure promises that erased details are not left readable in the files; rows are deleted on
    the reading connection (erasure) and on the writer's (a confirmation deletes the waiting row),
    and SQLite's own default for secure_delete is off on many builds."""
    from widget_server.storage.sqlite.store import SQLiteStore

    async def go() -> tuple[int, int]:
        async with open_store(tmp_path / "d.sqlite3") as store:
            assert isinstance(store, SQLiteStore)
            await store.write_signatures([])
            writer = store._write_conn
            assert writer is not None
            async with store.conn.execute("PRAGMA secure_delete") as cursor:
                row = await cursor.fetchone()
            assert row is not None
            return row[0], writer.execute("PRAGMA secure_delete").fetchone()[0]

    assert asyncio.run(go()) == (1, 1)
