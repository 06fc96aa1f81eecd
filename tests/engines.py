"""The storage engines the tests run on: SQLite always, PostgreSQL too when WIDGET_TEST_POSTGRES_URL
names a server (e.g. postgresql://postgres@127.0.0.1:5432/test). Each PostgreSQL test gets a fresh
database of its own, created from that URL and dropped afterwards."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

POSTGRES_URL = os.environ.get("WIDGET_TEST_POSTGRES_URL", "")
ENGINES = ["sqlite", "postgres"] if POSTGRES_URL else ["sqlite"]


def _with_database(url: str, name: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/" + name))


async def _admin(sql: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(POSTGRES_URL)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def fresh_postgres() -> Iterator[str]:
    """The URL of a new, empty database on the test server; dropped on the way out."""
    name = "widget_test_" + secrets.token_hex(6)
    asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(POSTGRES_URL, name)
    finally:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextmanager
def restore_postgres(dump: os.PathLike[str]) -> Iterator[str]:
    """A fresh database holding what `widget-server backup` wrote to `dump` (pg_restore)."""
    import subprocess

    with fresh_postgres() as url:
        subprocess.run(["pg_restore", "--no-owner", f"--dbname={url}", os.fspath(dump)], check=True)
        yield url
