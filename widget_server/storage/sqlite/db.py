"""Opening the SQLite database and upgrading its schema by numbered migrations.

Durability choice: WAL with `synchronous=FULL`. Every commit is fsynced before the
writer acknowledges it, so an acknowledged signature survives a process crash *and*
a power cut; group commit (writer.py) pays that fsync once per batch, not per row.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import aiosqlite

from widget_server import messages
from widget_server.errors import ConfigError

log = logging.getLogger(__name__)

PRAGMAS = (
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    # Deleted rows are overwritten, on every connection (the writer's too: a confirmation deletes
    # the waiting row there): SQLite's own default is off on many builds.
    "PRAGMA secure_delete = ON",
    # Wait for another process's write instead of failing with "database is locked".
    "PRAGMA busy_timeout = 10000",
)


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) for every file in migrations/, in order."""
    found = []
    for entry in resources.files("widget_server.storage.sqlite.migrations").iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


def _statements(script: str) -> list[str]:
    statements, buffer = [], ""
    for line in script.splitlines(keepends=True):
        buffer += line
        if sqlite3.complete_statement(buffer):
            statements.append(buffer.strip())
            buffer = ""
    return [s for s in statements if s.strip(" ;\n")]


def migrate(path: Path) -> int:
    """Create or upgrade the schema; safe to run twice, and by two processes at once."""
    path = Path(path)
    create_private(path)
    try:
        conn = sqlite3.connect(path, isolation_level=None)
    except sqlite3.Error as exc:
        raise ConfigError(messages.CANNOT_OPEN.format(path=path, problem=exc)) from None
    try:
        for pragma in PRAGMAS:
            conn.execute(pragma)
        current = int(conn.execute("PRAGMA user_version").fetchone()[0])
        # Up to date (every command but the first): no write lock, so `stats` or `export` run
        # beside a busy server never queue behind its writer, nor it behind them.
        for version, script in (m for m in migrations() if m[0] > current):
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Re-read inside the write lock: another process may have just migrated.
                if conn.execute("PRAGMA user_version").fetchone()[0] >= version:
                    conn.execute("COMMIT")
                    continue
                for statement in _statements(script):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {version:d}")
                conn.execute("COMMIT")
                log.info("applied migration %04d", version)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return int(conn.execute("PRAGMA user_version").fetchone()[0])
    except sqlite3.DatabaseError as exc:
        raise ConfigError(messages.NOT_A_DATABASE.format(path=path, problem=exc)) from None
    finally:
        conn.close()


async def connect(path: Path) -> aiosqlite.Connection:
    """An autocommit connection (explicit transactions only) with our pragmas and Row rows."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = sqlite3.Row
    try:
        for pragma in PRAGMAS:
            await conn.execute(pragma)
    except BaseException:
        # Its thread keeps the process alive until the connection is closed.
        await conn.close()
        raise
    return conn


def connect_sync(path: Path) -> sqlite3.Connection:
    """A plain autocommit connection with our pragmas, for the writer's own thread.

    `check_same_thread=False` because it is opened on the event loop's thread and then used
    only by the writer's single worker thread, never by two threads at once.
    """
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in PRAGMAS:
        conn.execute(pragma)
    return conn


@contextlib.asynccontextmanager
async def transaction(conn: aiosqlite.Connection) -> AsyncIterator[aiosqlite.Connection]:
    """BEGIN IMMEDIATE … COMMIT, or ROLLBACK on any error: nothing half-written."""
    await conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise


def checkpoint(path: Path, wait_seconds: float) -> bool:
    """Copy the WAL into the database file and truncate it; False if a reader still needs it."""
    conn = sqlite3.connect(path, isolation_level=None, timeout=wait_seconds)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(wait_seconds * 1000):d}")
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return int(busy) == 0
    finally:
        conn.close()


def create_private(path: Path) -> None:
    """Create the database file (and its folder) readable by its owner only, if it is not there.

    Signatures are personal data: the file is 0600 in a new folder of 0700. SQLite gives the WAL
    and shared-memory files the database file's permissions.
    """
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise ConfigError(messages.CANNOT_OPEN.format(path=path, problem=exc.strerror)) from None


def backup(source: Path, dest: Path) -> None:
    """A consistent copy with SQLite's online backup API, safe while the server writes."""
    src = sqlite3.connect(source)
    try:
        src.execute("PRAGMA busy_timeout = 10000")
        create_private(dest)
        dst = sqlite3.connect(dest)
        try:
            # pages=-1 copies everything in one step, inside one read snapshot.
            src.backup(dst, pages=-1)
        finally:
            dst.close()
    finally:
        src.close()
