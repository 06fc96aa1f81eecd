"""Moving a campaign from one database to another (SQLite ↔ PostgreSQL) without losing a row."""

from __future__ import annotations

from dataclasses import dataclass

from widget_server import messages
from widget_server.errors import Invalid, Unavailable
from widget_server.storage.store import TABLES, Store


@dataclass(frozen=True)
class Moved:
    rows: dict[str, int]  # table → rows copied


async def copy_everything(source: Store, target: Store) -> Moved:
    """Copy every table (ids, token versions, attribution, review state, kept counts) into an empty
    target, then check on arrival that every table holds as many rows as the source and that the kept
    counts equal the rows. Refuses a target that holds anything.

    Run it with the server stopped (or read-only): signatures that arrive during the copy may miss it.
    """
    if not await target.is_empty():
        raise Invalid(messages.TARGET_NOT_EMPTY.format(target=target.location))
    copied: dict[str, int] = {}
    for table in TABLES:
        copied[table] = 0
        async with source.read_table(table) as chunks:
            async for rows in chunks:
                await target.write_rows(table, rows)
                copied[table] += len(rows)
    await target.finish_copy()
    arrived = {table: 0 for table in TABLES}
    for table in TABLES:
        async with target.read_table(table) as chunks:
            async for rows in chunks:
                arrived[table] += len(rows)
    problems = await target.integrity()
    if arrived != copied or problems:
        raise Unavailable(messages.MOVE_CHECK_FAILED.format(problems="; ".join(problems) or arrived))
    return Moved(copied)
