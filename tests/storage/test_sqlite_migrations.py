"""The schema is created and upgraded by numbered migrations, safely run again and again."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from widget_server.errors import ConfigError
from widget_server.storage.sqlite import db


def tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    finally:
        conn.close()


def user_version(path: Path) -> int:
    conn = sqlite3.connect(path)
    try:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    finally:
        conn.close()


def test_migrating_an_empty_database_creates_the_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new" / "widget.sqlite3"
    latest = db.migrations()[-1][0]
    assert db.migrate(path) == latest
    assert {"pledges", "partners", "signatures", "signature_days", "signatures_pledge_email"} <= tables(path)
    assert user_version(path) == latest
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_migrating_an_existing_database_keeps_its_data(tmp_path: Path) -> None:
    path = tmp_path / "widget.sqlite3"
    db.migrate(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO pledges (slug, title, statement_html, created_at) VALUES ('p', 'T', '<p>s</p>', 'now')")
    conn.commit()
    conn.close()
    assert db.migrate(path) == db.migrations()[-1][0]
    assert db.migrate(path) == db.migrations()[-1][0]
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT slug FROM pledges").fetchall() == [("p",)]
    conn.close()


def test_a_failing_migration_leaves_nothing_half_applied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "widget.sqlite3"
    real = db.migrations()
    broken = (real[-1][0] + 1, "CREATE TABLE half_done (a INTEGER);\nTHIS IS NOT SQL;\n")
    monkeypatch.setattr(db, "migrations", lambda: [*real, broken])
    with pytest.raises(Exception, match="syntax error"):
        db.migrate(path)
    assert user_version(path) == real[-1][0]  # the good versions stay applied
    assert "half_done" not in tables(path)  # the broken one left nothing behind


def test_the_unique_index_is_the_real_guard_against_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "widget.sqlite3"
    db.migrate(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO pledges (slug, title, statement_html, created_at) VALUES ('p', 'T', 's', 'now')")
    insert = "INSERT INTO signatures (pledge_id, email, name, created_at) VALUES (1, 'a@example.org', 'A', 'now')"
    conn.execute(insert)
    with pytest.raises(sqlite3.IntegrityError):
        conn.execute(insert)
    conn.close()


def test_a_file_that_is_not_a_database_is_refused_with_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_text("this is not a database, just some notes" * 100)
    with pytest.raises(ConfigError, match="is not a usable widget database"):
        db.migrate(path)
