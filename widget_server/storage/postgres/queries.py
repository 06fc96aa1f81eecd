"""The PostgreSQL engine's SQL: parameterised, and knowing nothing of requests.

Called only by `PostgresStore` (store.py), which owns the pool and turns driver errors into the
project's own. Times are `timestamptz`; they leave here as the same `2026-11-30T10:00:00Z` text the
SQLite engine stores, so everything above storage sees one format.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator, Sequence

import asyncpg

from widget_server.core.models import ATTRIBUTION_PARAMS, NewSignature, Partner, Pledge
from widget_server.storage.store import BatchResult, DayCount

Connection = asyncpg.Connection  # a pool's proxied connection behaves the same

# As SQLite's lower(), which folds ASCII letters only: both engines group the same names.
KEY = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """KEY, in Python."""
    return text.translate(_ASCII_LOWER)
ISO = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
DAY = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

_PLEDGE = "SELECT id, slug, title, statement_html, goal, privacy_url, contact, signature_count FROM pledges"
_PARTNER = "SELECT id, pledge_id, name, origins, token_version, revoked_at, signature_count FROM partners"


def _pledge(row: asyncpg.Record) -> Pledge:
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


def _partner(row: asyncpg.Record) -> Partner:
    return Partner(
        id=row["id"],
        pledge_id=row["pledge_id"],
        name=row["name"],
        origins=tuple(row["origins"]),
        token_version=row["token_version"],
        revoked=row["revoked_at"] is not None,
        signature_count=row["signature_count"],
    )


async def pledge_by_slug(conn: Connection, slug: str) -> Pledge | None:
    row = await conn.fetchrow(_PLEDGE + " WHERE slug = $1", slug)
    return _pledge(row) if row else None


async def insert_pledge(
    conn: Connection,
    *,
    slug: str,
    title: str,
    statement_html: str,
    goal: int | None,
    privacy_url: str | None,
    contact: str | None,
    now: str,
) -> Pledge:
    row = await conn.fetchrow(
        "INSERT INTO pledges (slug, title, statement_html, goal, privacy_url, contact, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7::text::timestamptz)"
        " RETURNING id, slug, title, statement_html, goal, privacy_url, contact, signature_count",
        slug,
        title,
        statement_html,
        goal,
        privacy_url,
        contact,
        now,
    )
    return _pledge(row)


async def partner_by_id(conn: Connection, partner_id: int) -> Partner | None:
    row = await conn.fetchrow(_PARTNER + " WHERE id = $1", partner_id)
    return _partner(row) if row else None


async def partner_by_name(conn: Connection, pledge_id: int, name: str) -> Partner | None:
    row = await conn.fetchrow(_PARTNER + " WHERE pledge_id = $1 AND name = $2", pledge_id, name)
    return _partner(row) if row else None


async def partners_of(conn: Connection, pledge_id: int) -> list[Partner]:
    rows = await conn.fetch(_PARTNER + " WHERE pledge_id = $1 ORDER BY signature_count DESC, name", pledge_id)
    return [_partner(row) for row in rows]


async def insert_partner(conn: Connection, *, pledge_id: int, name: str, origins: Sequence[str], now: str) -> Partner:
    row = await conn.fetchrow(
        "INSERT INTO partners (pledge_id, name, origins, created_at) VALUES ($1, $2, $3, $4::text::timestamptz)"
        " RETURNING id, pledge_id, name, origins, token_version, revoked_at, signature_count",
        pledge_id,
        name,
        list(origins),
        now,
    )
    return _partner(row)


async def rotate_partner(conn: Connection, partner_id: int) -> Partner:
    row = await conn.fetchrow(
        "UPDATE partners SET token_version = token_version + 1, revoked_at = NULL WHERE id = $1"
        " RETURNING id, pledge_id, name, origins, token_version, revoked_at, signature_count",
        partner_id,
    )
    return _partner(row)


async def revoke_partner(conn: Connection, partner_id: int, now: str) -> None:
    await conn.execute(
        "UPDATE partners SET revoked_at = COALESCE(revoked_at, $1::text::timestamptz) WHERE id = $2", now, partner_id
    )


async def set_partner_origins(conn: Connection, partner_id: int, origins: Sequence[str]) -> Partner:
    row = await conn.fetchrow(
        "UPDATE partners SET origins = $1, token_version = token_version + 1 WHERE id = $2"
        " RETURNING id, pledge_id, name, origins, token_version, revoked_at, signature_count",
        list(origins),
        partner_id,
    )
    return _partner(row)


async def counts(conn: Connection, pledge_id: int) -> tuple[int, dict[int, int]]:
    """The pledge's total and every partner's count: indexed reads of kept counts, no COUNT(*)."""
    rows = await conn.fetch(
        "SELECT 0 AS kind, id, signature_count FROM pledges WHERE id = $1"
        " UNION ALL SELECT 1, id, signature_count FROM partners WHERE pledge_id = $1",
        pledge_id,
    )
    total = next((row["signature_count"] for row in rows if row["kind"] == 0), 0)
    return total, {row["id"]: row["signature_count"] for row in rows if row["kind"] == 1}


_INSERT_SIGNATURES = (
    "INSERT INTO signatures (pledge_id, partner_id, email, name, occupation, organisation, opt_in_updates,"
    " opt_in_partner, origin, " + ", ".join(ATTRIBUTION_PARAMS) + ", created_at)"
    " SELECT p, pa, e, n, oc, og, ou, op, o, " + ", ".join(f"a{i}" for i in range(len(ATTRIBUTION_PARAMS)))
    + ", c::timestamptz FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::boolean[], $8::boolean[], $9::text[], "
    + ", ".join(f"${10 + i}::text[]" for i in range(len(ATTRIBUTION_PARAMS)))
    + f", ${10 + len(ATTRIBUTION_PARAMS)}::text[])"
    " AS s(p, pa, e, n, oc, og, ou, op, o, "
    + ", ".join(f"a{i}" for i in range(len(ATTRIBUTION_PARAMS)))
    + ", c) ON CONFLICT (pledge_id, email) DO NOTHING"
    " RETURNING pledge_id, email, partner_id, " + DAY.format("created_at") + ", organisation, created_at"
)


async def insert_signatures(conn: Connection, batch: Sequence[NewSignature]) -> BatchResult:
    """Insert a batch inside the caller's transaction; a duplicate (pledge, email) is skipped.

    Rows keep the batch's order (signing order). Counter rows are updated in id order and the pledge
    row's lock then orders the rest of a batch's work, so two processes committing at once wait for
    each other rather than deadlock; the one case left (the same addresses in two batches in crossing
    order) is a deadlock PostgreSQL breaks, and the store tries that batch again.
    """
    ordered = list(batch)
    columns: list[list[object]] = [
        [s.pledge_id for s in ordered],
        [s.partner_id for s in ordered],
        [s.email for s in ordered],
        [s.name for s in ordered],
        [s.occupation for s in ordered],
        [s.organisation for s in ordered],
        [s.opt_in_updates for s in ordered],
        [s.opt_in_partner for s in ordered],
        [s.origin for s in ordered],
        *([s.attribution.get(key, "") for s in ordered] for key in ATTRIBUTION_PARAMS),
        [s.created_at for s in ordered],
    ]
    new_rows = await conn.fetch(_INSERT_SIGNATURES, *columns)
    per_pledge = Counter(row["pledge_id"] for row in new_rows)
    per_partner = Counter(row["partner_id"] for row in new_rows if row["partner_id"])
    per_day = Counter((row["pledge_id"], row["partner_id"] or 0, row[3]) for row in new_rows)
    # One upsert per organisation key, carrying the name as first typed in this batch.
    organisations = Counter((row["pledge_id"], ascii_lower(row["organisation"])) for row in new_rows if row["organisation"])
    first: dict[tuple[int, str], tuple[str, object]] = {}
    for row in new_rows:
        if row["organisation"]:
            first.setdefault((row["pledge_id"], ascii_lower(row["organisation"])), (row["organisation"], row["created_at"]))

    totals: dict[int, int] = {}
    for pledge_id in sorted({s.pledge_id for s in batch}):
        total = await conn.fetchval(
            "UPDATE pledges SET signature_count = signature_count + $1 WHERE id = $2 RETURNING signature_count",
            per_pledge.get(pledge_id, 0),
            pledge_id,
        )
        totals[pledge_id] = total or 0
    partner_counts: dict[int, tuple[int, int]] = {}
    for partner_id in sorted(per_partner):
        row = await conn.fetchrow(
            "UPDATE partners SET signature_count = signature_count + $1 WHERE id = $2"
            " RETURNING pledge_id, signature_count",
            per_partner[partner_id],
            partner_id,
        )
        if row:
            partner_counts[partner_id] = (row[0], row[1])
    if per_day:
        await conn.executemany(
            "INSERT INTO signature_days (pledge_id, partner_id, day, count) VALUES ($1, $2, $3::text::date, $4)"
            " ON CONFLICT (pledge_id, partner_id, day) DO UPDATE SET count = signature_days.count + excluded.count",
            [(p, partner, day, n) for (p, partner, day), n in sorted(per_day.items())],
        )
    if organisations:
        await conn.executemany(
            "INSERT INTO organisations (pledge_id, name_key, name, signatures, first_signed_at)"
            " VALUES ($1, $2, $3, $4, $5)"
            " ON CONFLICT (pledge_id, name_key) DO UPDATE SET signatures = organisations.signatures + excluded.signatures",
            [(p, key, *first[(p, key)][:1], n, first[(p, key)][1]) for (p, key), n in sorted(organisations.items())],
        )
    return BatchResult({(row["pledge_id"], row["email"]) for row in new_rows}, totals, partner_counts)


async def day_counts(conn: Connection, pledge_id: int) -> list[DayCount]:
    rows = await conn.fetch(
        "SELECT to_char(day, 'YYYY-MM-DD') AS day, partner_id, count FROM signature_days"
        " WHERE pledge_id = $1 ORDER BY day, partner_id",
        pledge_id,
    )
    return [DayCount(row["day"], row["partner_id"] or None, row["count"]) for row in rows]


EXPORT_SQL = (
    "SELECT " + ISO.format("s.created_at") + ", s.email, s.name, s.occupation, s.organisation,"
    " COALESCE(p.name, ''), s.origin, "
    + ", ".join(f"s.{key}" for key in ATTRIBUTION_PARAMS)
    + ", s.opt_in_updates::int, s.opt_in_partner::int"
    " FROM signatures s LEFT JOIN partners p ON p.id = s.partner_id"
    " WHERE s.pledge_id = $1 ORDER BY s.id"
)


async def export_rows(conn: Connection, pledge_id: int, chunk: int = 1000) -> AsyncIterator[tuple[object, ...]]:
    """Every signature of a pledge in signing order, through a server-side cursor a chunk at a time.

    The caller holds `conn` in a transaction (a cursor lives in one).
    """
    cursor = await conn.cursor(EXPORT_SQL, pledge_id)
    while rows := await cursor.fetch(chunk):
        for row in rows:
            yield tuple(row)


_INTEGRITY_CHECKS = (
    "SELECT 'pledge', slug, signature_count,"
    " (SELECT COUNT(*) FROM signatures s WHERE s.pledge_id = p.id) FROM pledges p",
    "SELECT 'partner', name, signature_count,"
    " (SELECT COUNT(*) FROM signatures s WHERE s.partner_id = p.id) FROM partners p",
    "SELECT 'days of pledge', slug, signature_count,"
    " (SELECT COALESCE(SUM(d.count), 0) FROM signature_days d WHERE d.pledge_id = p.id) FROM pledges p",
    "SELECT 'organisation', name, signatures, (SELECT COUNT(*) FROM signatures s WHERE s.pledge_id = o.pledge_id"
    f" AND s.organisation != '' AND {KEY.format('s.organisation')} = o.name_key) FROM organisations o",
)


async def integrity(conn: Connection) -> list[str]:
    problems = []
    for sql in _INTEGRITY_CHECKS:
        for what, name, kept, real in await conn.fetch(sql):
            if kept != real:
                problems.append(f"{what} {name}: count {kept}, rows {real}")
    return problems


async def organisations(conn: Connection, pledge_id: int, status: str | None = None) -> list[dict[str, object]]:
    sql = (
        "SELECT name, signatures, status, " + ISO.format("first_signed_at") + " AS first_signed_at"
        " FROM organisations WHERE pledge_id = $1"
    )
    params: list[object] = [pledge_id]
    if status:
        sql += " AND status = $2"
        params.append(status)
    return [dict(row) for row in await conn.fetch(sql + " ORDER BY name_key", *params)]


async def approved_organisation_names(conn: Connection, pledge_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT name FROM organisations WHERE pledge_id = $1 AND status = 'approved' ORDER BY name_key", pledge_id
    )
    return [row[0] for row in rows]


async def set_organisation_status(conn: Connection, pledge_id: int, name: str, status: str, now: str) -> bool:
    result = await conn.execute(
        "UPDATE organisations SET status = $1, reviewed_at = $2::text::timestamptz"
        f" WHERE pledge_id = $3 AND name_key = {KEY.format('$4::text')}",
        status,
        now,
        pledge_id,
        name,
    )
    return bool(result.split()[-1] != "0")


_PERSON_COLUMNS = (
    "p.slug AS pledge, " + ISO.format("s.created_at") + " AS created_at, s.email, s.name, s.occupation,"
    " s.organisation, COALESCE(pa.name, '') AS partner, s.origin, "
    + ", ".join(f"s.{key}" for key in ATTRIBUTION_PARAMS)
    + ", s.opt_in_updates::int AS opt_in_updates, s.opt_in_partner::int AS opt_in_partner"
)


async def signatures_of(conn: Connection, email: str) -> list[dict[str, object]]:
    rows = await conn.fetch(
        f"SELECT {_PERSON_COLUMNS} FROM signatures s JOIN pledges p ON p.id = s.pledge_id"
        " LEFT JOIN partners pa ON pa.id = s.partner_id WHERE s.email = $1 ORDER BY s.id",
        email,
    )
    return [dict(row) for row in rows]


async def erase_signatures(conn: Connection, email: str) -> int:
    """Delete one email's signatures everywhere, inside the caller's transaction, counts corrected."""
    erased = await conn.fetch(
        "DELETE FROM signatures WHERE email = $1 RETURNING pledge_id, partner_id, "
        + DAY.format("created_at")
        + " AS day, organisation",
        email,
    )
    for row in sorted(erased, key=lambda r: (r["pledge_id"], r["partner_id"] or 0)):
        await conn.execute("UPDATE pledges SET signature_count = signature_count - 1 WHERE id = $1", row["pledge_id"])
        if row["partner_id"]:
            await conn.execute(
                "UPDATE partners SET signature_count = signature_count - 1 WHERE id = $1", row["partner_id"]
            )
        await conn.execute(
            "UPDATE signature_days SET count = count - 1 WHERE pledge_id = $1 AND partner_id = $2 AND day = $3::text::date",
            row["pledge_id"],
            row["partner_id"] or 0,
            row["day"],
        )
        if row["organisation"]:
            await conn.execute(
                "UPDATE organisations SET signatures = signatures - 1"
                f" WHERE pledge_id = $1 AND name_key = {KEY.format('$2::text')}",
                row["pledge_id"],
                row["organisation"],
            )
    # A name that nobody stands behind any more is personal data too: forget it.
    await conn.execute("DELETE FROM organisations WHERE signatures <= 0")
    await conn.execute("DELETE FROM signature_days WHERE count <= 0")
    return len(erased)
