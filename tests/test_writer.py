"""The one writer: batches answer only after their commit, and nothing outside a write stops it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from widget_server.core.models import NewSignature
from widget_server.errors import Unavailable
from widget_server.storage.sqlite import db, queries
from widget_server.storage.writer import SignatureWriter


def signature(email: str) -> NewSignature:
    return NewSignature(pledge_id=1, partner_id=None, email=email, name="Ana", created_at="2026-11-24T12:00:00Z")


def new_database(tmp_path: Path) -> Path:
    path = tmp_path / "widget.sqlite3"
    db.migrate(path)
    conn = db.connect_sync(path)
    conn.execute("INSERT INTO pledges (slug, title, statement_html, created_at) VALUES ('p', 'T', 's', 'now')")
    conn.close()
    return path


def test_concurrent_signatures_share_commits_and_duplicates_count_once(tmp_path: Path) -> None:
    path = new_database(tmp_path)

    async def go() -> list[tuple[bool, int]]:
        writer = SignatureWriter(path)
        writer.start()
        emails = [f"s{i}@example.org" for i in range(50)] + ["s0@example.org"]
        results = await asyncio.gather(*(writer.submit(signature(e)) for e in emails))
        await writer.close()
        return [(r.created, r.total) for r in results]

    results = asyncio.run(go())
    assert sum(created for created, _ in results) == 50
    assert results[-1][0] is False  # the duplicate is answered, not counted
    assert max(total for _, total in results) == 50

    async def check() -> list[str]:
        conn = await db.connect(path)
        try:
            return await queries.integrity(conn)
        finally:
            await conn.close()

    assert asyncio.run(check()) == []


def test_a_failing_cache_update_does_not_stop_the_writer(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = new_database(tmp_path)

    def broken(result: queries.BatchResult) -> None:
        raise RuntimeError("cache broke")

    async def go() -> list[bool]:
        writer = SignatureWriter(path, on_commit=broken)
        writer.start()
        first = await writer.submit(signature("a@example.org"))
        second = await writer.submit(signature("b@example.org"))  # the writer is still alive
        await writer.close()
        with pytest.raises(Unavailable):
            await writer.submit(signature("c@example.org"))
        return [first.created, second.created]

    assert asyncio.run(go()) == [True, True]
    assert "could not pass the new counts on" in caplog.text
