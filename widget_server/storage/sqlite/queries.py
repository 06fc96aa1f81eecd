"""The SQLite engine's SQL: parameterised, and knowing nothing of requests.

Called only by `SQLiteStore` (store.py), which owns the connections and turns driver errors into
the project's own.
"""

from __future__ import annotations

import json
import sqlite3
from collections import Counter
from collections.abc import AsyncIterator, Sequence

import aiosqlite

from widget_server.core.models import ATTRIBUTION_PARAMS, NewSignature, Partner, Pledge
from widget_server.storage.sqlite.db import transaction
from widget_server.storage.store import BatchResult, DayCount


def _pledge(row: sqlite3.Row) -> Pledge:
    return Pledge(
        id=row["id"],
        slug=row["slug"],
        title=row["title"],
        statement_html=row["statement_html"],
        goal=row["goal"],
        privacy_url=row["privacy_url"],
        contact=row["contact"],
        signature_count=row["signature_count"],
    )


def _partner(row: sqlite3.Row) -> Partner:
    return Partner(
        id=row["id"],
        pledge_id=row["pledge_id"],
        name=row["name"],
        origins=tuple(json.loads(row["origins"])),
        token_version=row["token_version"],
        revoked=row["revoked_at"] is not None,
        signature_count=row["signature_count"],
    )


async def pledge_by_slug(conn: aiosqlite.Connection, slug: str) -> Pledge | None:
    async with conn.execute("SELECT * FROM pledges WHERE slug = ?", (slug,)) as cursor:
        row = await cursor.fetchone()
    return _pledge(row) if row else None


async def insert_pledge(
    conn: aiosqlite.Connection,
    *,
    slug: str,
    title: str,
    statement_html: str,
    goal: int | None,
    privacy_url: str | None,
    contact: str | None,
    now: str,
) -> Pledge:
    await conn.execute(
        "INSERT INTO pledges (slug, title, statement_html, goal, privacy_url, contact, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (slug, title, statement_html, goal, privacy_url, contact, now),
    )
    pledge = await pledge_by_slug(conn, slug)
    assert pledge is not None
    return pledge


async def partner_by_id(conn: aiosqlite.Connection, partner_id: int) -> Partner | None:
    async with conn.execute("SELECT * FROM partners WHERE id = ?", (partner_id,)) as cursor:
        row = await cursor.fetchone()
    return _partner(row) if row else None


async def partner_by_name(conn: aiosqlite.Connection, pledge_id: int, name: str) -> Partner | None:
    async with conn.execute("SELECT * FROM partners WHERE pledge_id = ? AND name = ?", (pledge_id, name)) as cursor:
        row = await cursor.fetchone()
    return _partner(row) if row else None


async def partners_of(conn: aiosqlite.Connection, pledge_id: int) -> list[Partner]:
    async with conn.execute(
        "SELECT * FROM partners WHERE pledge_id = ? ORDER BY signature_count DESC, name",
        (pledge_id,),
    ) as cursor:
        return [_partner(row) async for row in cursor]


async def insert_partner(
    conn: aiosqlite.Connection, *, pledge_id: int, name: str, origins: Sequence[str], now: str
) -> Partner:
    cursor = await conn.execute(
        "INSERT INTO partners (pledge_id, name, origins, created_at) VALUES (?, ?, ?, ?)",
        (pledge_id, name, json.dumps(list(origins)), now),
    )
    partner = await partner_by_id(conn, cursor.lastrowid or 0)
    assert partner is not None
    return partner


async def rotate_partner(conn: aiosqlite.Connection, partner_id: int) -> Partner:
    """A new token version (old tokens stop working); also reinstates a revoked partner."""
    await conn.execute(
        "UPDATE partners SET token_version = token_version + 1, revoked_at = NULL WHERE id = ?",
        (partner_id,),
    )
    partner = await partner_by_id(conn, partner_id)
    assert partner is not None
    return partner


async def revoke_partner(conn: aiosqlite.Connection, partner_id: int, now: str) -> None:
    await conn.execute("UPDATE partners SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?", (now, partner_id))


async def set_partner_origins(conn: aiosqlite.Connection, partner_id: int, origins: Sequence[str]) -> Partner:
    """New origins need a new token (the token carries them), so the version moves too."""
    await conn.execute(
        "UPDATE partners SET origins = ?, token_version = token_version + 1 WHERE id = ?",
        (json.dumps(list(origins)), partner_id),
    )
    partner = await partner_by_id(conn, partner_id)
    assert partner is not None
    return partner


async def counts(conn: aiosqlite.Connection, pledge_id: int) -> tuple[int, dict[int, int]]:
    """The pledge's total and every partner's count: two indexed reads, no COUNT(*)."""
    async with conn.execute("SELECT signature_count FROM pledges WHERE id = ?", (pledge_id,)) as cursor:
        row = await cursor.fetchone()
    async with conn.execute("SELECT id, signature_count FROM partners WHERE pledge_id = ?", (pledge_id,)) as cursor:
        partners = {r["id"]: r["signature_count"] async for r in cursor}
    return (row["signature_count"] if row else 0), partners


_SIGNATURE_COLUMNS = (
    "pledge_id, partner_id, email, name, occupation, organisation, opt_in_updates,"
    " opt_in_partner, origin, " + ", ".join(ATTRIBUTION_PARAMS) + ", created_at"
)
_SIGNATURE_PLACEHOLDERS = "(" + ", ".join("?" * len(_SIGNATURE_COLUMNS.split(","))) + ")"


def _signature_values(sig: NewSignature) -> tuple[object, ...]:
    return (
        sig.pledge_id,
        sig.partner_id,
        sig.email,
        sig.name,
        sig.occupation,
        sig.organisation,
        int(sig.opt_in_updates),
        int(sig.opt_in_partner),
        sig.origin,
        *(sig.attribution.get(key, "") for key in ATTRIBUTION_PARAMS),
        sig.created_at,
    )


def insert_signatures(conn: sqlite3.Connection, batch: Sequence[NewSignature]) -> BatchResult:
    """Insert a batch in one transaction; a duplicate (pledge, email) is skipped, not an error.

    Synchronous on purpose: the writer runs the whole transaction in its own thread in one
    step, so a batch costs one hop from the event loop, not one per statement. Counts move in
    the same transaction as the rows; with `synchronous=FULL` the COMMIT returns once the
    WAL is on disk.
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        inserted: list[tuple[int, str, int | None, str]] = []
        organisations: list[tuple[int, str, str]] = []
        for start in range(0, len(batch), 100):
            chunk = batch[start : start + 100]
            sql = (
                f"INSERT INTO signatures ({_SIGNATURE_COLUMNS}) VALUES "
                + ", ".join([_SIGNATURE_PLACEHOLDERS] * len(chunk))
                + " ON CONFLICT (pledge_id, email) DO NOTHING"
                " RETURNING pledge_id, email, partner_id, substr(created_at, 1, 10), organisation, created_at"
            )
            params = [value for sig in chunk for value in _signature_values(sig)]
            new_rows = conn.execute(sql, params).fetchall()
            inserted.extend(tuple(row[:4]) for row in new_rows)  # type: ignore[misc]
            organisations.extend((row[0], row[4], row[5]) for row in new_rows if row[4])

        per_pledge = Counter(pledge_id for pledge_id, _, _, _ in inserted)
        per_partner = Counter(partner_id for _, _, partner_id, _ in inserted if partner_id)
        per_day = Counter((p, partner or 0, day) for p, _, partner, day in inserted)
        totals: dict[int, int] = {}
        for pledge_id in {sig.pledge_id for sig in batch}:
            row = conn.execute(
                "UPDATE pledges SET signature_count = signature_count + ? WHERE id = ? RETURNING signature_count",
                (per_pledge.get(pledge_id, 0), pledge_id),
            ).fetchone()
            totals[pledge_id] = row[0] if row else 0
        partner_counts: dict[int, tuple[int, int]] = {}
        for partner_id, n in per_partner.items():
            row = conn.execute(
                "UPDATE partners SET signature_count = signature_count + ? WHERE id = ?"
                " RETURNING pledge_id, signature_count",
                (n, partner_id),
            ).fetchone()
            if row:
                partner_counts[partner_id] = (row[0], row[1])
        if per_day:
            conn.executemany(
                "INSERT INTO signature_days (pledge_id, partner_id, day, count) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (pledge_id, partner_id, day) DO UPDATE"
                " SET count = count + excluded.count",
                [(p, partner, day, n) for (p, partner, day), n in per_day.items()],
            )
        if organisations:
            conn.executemany(
                "INSERT INTO organisations (pledge_id, name_key, name, signatures, first_signed_at)"
                " VALUES (?, lower(?2), ?2, 1, ?3) ON CONFLICT (pledge_id, name_key) DO UPDATE"
                " SET signatures = signatures + 1",
                organisations,
            )
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return BatchResult({(p, email) for p, email, _, _ in inserted}, totals, partner_counts)


async def day_counts(conn: aiosqlite.Connection, pledge_id: int) -> list[DayCount]:
    async with conn.execute(
        "SELECT day, partner_id, count FROM signature_days WHERE pledge_id = ? ORDER BY day, partner_id",
        (pledge_id,),
    ) as cursor:
        return [DayCount(row[0], row[1] or None, row[2]) async for row in cursor]


async def export_rows(
    conn: aiosqlite.Connection, pledge_id: int, chunk: int = 1000
) -> AsyncIterator[tuple[object, ...]]:
    """Every signature of a pledge in signing order, fetched a chunk at a time."""
    sql = (
        "SELECT s.created_at, s.email, s.name, s.occupation, s.organisation,"
        " COALESCE(p.name, ''), s.origin, "
        + ", ".join(f"s.{key}" for key in ATTRIBUTION_PARAMS)
        + ", s.opt_in_updates, s.opt_in_partner"
        " FROM signatures s LEFT JOIN partners p ON p.id = s.partner_id"
        " WHERE s.pledge_id = ? ORDER BY s.id"
    )
    async with conn.execute(sql, (pledge_id,)) as cursor:
        while rows := await cursor.fetchmany(chunk):
            for row in rows:
                yield tuple(row)


# Each kept count beside the rows it stands for: (what, name, kept, from the rows).
_INTEGRITY_CHECKS = (
    "SELECT 'pledge', slug, signature_count,"
    " (SELECT COUNT(*) FROM signatures s WHERE s.pledge_id = p.id) FROM pledges p",
    "SELECT 'partner', name, signature_count,"
    " (SELECT COUNT(*) FROM signatures s WHERE s.partner_id = p.id) FROM partners p",
    "SELECT 'days of pledge', slug, signature_count,"
    " (SELECT COALESCE(SUM(d.count), 0) FROM signature_days d WHERE d.pledge_id = p.id) FROM pledges p",
    "SELECT 'organisation', name, signatures, (SELECT COUNT(*) FROM signatures s WHERE s.pledge_id = o.pledge_id"
    " AND s.organisation != '' AND lower(s.organisation) = o.name_key) FROM organisations o",
)


async def integrity(conn: aiosqlite.Connection) -> list[str]:
    """Where kept counts disagree with the rows (empty when all is well); for tests and ops."""
    problems = []
    for sql in _INTEGRITY_CHECKS:
        async with conn.execute(sql) as cursor:
            async for what, name, kept, real in cursor:
                if kept != real:
                    problems.append(f"{what} {name}: count {kept}, rows {real}")
    return problems


async def ping(conn: aiosqlite.Connection) -> None:
    async with conn.execute("SELECT 1") as cursor:
        await cursor.fetchone()


async def organisations(
    conn: aiosqlite.Connection, pledge_id: int, status: str | None = None
) -> list[dict[str, object]]:
    """Organisations named by signers of a pledge, with how many signed for each, by name."""
    sql = "SELECT name, signatures, status, first_signed_at FROM organisations WHERE pledge_id = ?"
    params: tuple[object, ...] = (pledge_id,)
    if status:
        sql += " AND status = ?"
        params += (status,)
    async with conn.execute(sql + " ORDER BY name_key", params) as cursor:
        return [dict(row) async for row in cursor]


async def approved_organisation_names(conn: aiosqlite.Connection, pledge_id: int) -> list[str]:
    async with conn.execute(
        "SELECT name FROM organisations WHERE pledge_id = ? AND status = 'approved' ORDER BY name_key",
        (pledge_id,),
    ) as cursor:
        return [row[0] async for row in cursor]


async def set_organisation_status(conn: aiosqlite.Connection, pledge_id: int, name: str, status: str, now: str) -> bool:
    """True when an organisation of that name (any case) had signed the pledge."""
    cursor = await conn.execute(
        "UPDATE organisations SET status = ?, reviewed_at = ? WHERE pledge_id = ? AND name_key = lower(?)",
        (status, now, pledge_id, name),
    )
    return cursor.rowcount > 0


_PERSON_COLUMNS = (
    "p.slug AS pledge, s.created_at, s.email, s.name, s.occupation, s.organisation,"
    " COALESCE(pa.name, '') AS partner, s.origin, "
    + ", ".join(f"s.{key}" for key in ATTRIBUTION_PARAMS)
    + ", s.opt_in_updates, s.opt_in_partner"
)


async def signatures_of(conn: aiosqlite.Connection, email: str) -> list[dict[str, object]]:
    """Every signature of one normalised email, across pledges (one index look-up per pledge)."""
    async with conn.execute(
        f"SELECT {_PERSON_COLUMNS} FROM pledges p"
        " JOIN signatures s ON s.pledge_id = p.id AND s.email = ?"
        " LEFT JOIN partners pa ON pa.id = s.partner_id ORDER BY s.id",
        (email,),
    ) as cursor:
        return [dict(row) async for row in cursor]


async def erase_signatures(conn: aiosqlite.Connection, email: str) -> int:
    """Delete one email's signatures everywhere; every kept count falls in the same transaction.

    secure_delete overwrites the freed pages and the checkpoint empties the WAL, so the erased
    details are not left readable in the database files (backups keep their own copies).
    """
    await conn.execute("PRAGMA secure_delete = ON")
    async with transaction(conn):
        async with conn.execute("SELECT id FROM pledges") as cursor:
            pledge_ids = [row[0] async for row in cursor]
        erased = []
        for pledge_id in pledge_ids:
            async with conn.execute(
                "DELETE FROM signatures WHERE pledge_id = ? AND email = ?"
                " RETURNING pledge_id, partner_id, substr(created_at, 1, 10), organisation",
                (pledge_id, email),
            ) as cursor:
                erased.extend([tuple(row) async for row in cursor])
        for pledge_id, partner_id, day, organisation in erased:
            await conn.execute("UPDATE pledges SET signature_count = signature_count - 1 WHERE id = ?", (pledge_id,))
            if partner_id:
                await conn.execute(
                    "UPDATE partners SET signature_count = signature_count - 1 WHERE id = ?", (partner_id,)
                )
            await conn.execute(
                "UPDATE signature_days SET count = count - 1 WHERE pledge_id = ? AND partner_id = ? AND day = ?",
                (pledge_id, partner_id or 0, day),
            )
            if organisation:
                await conn.execute(
                    "UPDATE organisations SET signatures = signatures - 1 WHERE pledge_id = ? AND name_key = lower(?)",
                    (pledge_id, organisation),
                )
        # A name that nobody stands behind any more is personal data too: forget it.
        await conn.execute("DELETE FROM organisations WHERE signatures <= 0")
        await conn.execute("DELETE FROM signature_days WHERE count <= 0")
    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return len(erased)
