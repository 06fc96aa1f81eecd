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
