"""Which engine a database URL names, and opening it: the one place that knows every engine.

A path or `sqlite:///path` is SQLite (the default); `postgresql://user:password@host:port/database`
is PostgreSQL. Kept apart from the interface (store.py), so that the engines depend on the
interface and only this module depends on the engines.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path

from widget_server import messages
from widget_server.errors import ConfigError
from widget_server.storage.store import Store


def store_for(url: str | Path, *, pool_size: int = 10) -> Store:
    """The engine for `url` (a path, `sqlite:///path` or `postgresql://…`), not yet opened.

    `pool_size` is the most connections an engine with a pool keeps open.
    """
    text = str(url)
    if not text.strip():
        raise ConfigError(messages.EMPTY_DATABASE)
    if text.startswith(("postgresql://", "postgres://")):
        from widget_server.storage.postgres.store import PostgresStore

        return PostgresStore(text, pool_size=pool_size)
    if text.startswith("sqlite:///"):
        # As SQLAlchemy reads it: sqlite:///widget.db is relative, sqlite:////srv/widget.db absolute.
        text = text[len("sqlite:///") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(messages.UNKNOWN_DATABASE.format(scheme=scheme))
    from widget_server.storage.sqlite.store import SQLiteStore

    return SQLiteStore(Path(text))


@contextlib.asynccontextmanager
async def open_store(url: str | Path, *, migrate: bool = True, pool_size: int = 10) -> AsyncIterator[Store]:
    """An opened (and by default migrated) store, closed on the way out."""
    store = store_for(url, pool_size=pool_size)
    await store.open()
    try:
        if migrate:
            await store.migrate()
        yield store
    finally:
        await store.close()
