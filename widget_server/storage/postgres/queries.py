"""The PostgreSQL engine's SQL: parameterised, and knowing nothing of requests.

Called only by `PostgresStore` (store.py), which owns the pool and turns driver errors into the
project's own. Times are `timestamptz`; they leave here as the same `2026-11-30T10:00:00Z` text the
SQLite engine stores, so everything above storage sees one format. Text is compared and ordered
as bytes (COLLATE "C") wherever an order or a range reaches the caller, as SQLite does, so both
engines answer alike whatever collation the database was created with.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import AsyncIterator, Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeAlias

import asyncpg

from widget_server.core.models import ATTRIBUTION_PARAMS, NewSignature, Partner, Pledge
from widget_server.storage.store import (
    BURST_KINDS,
    DIRECT,
    TABLES,
    AuditEntry,
    BatchResult,
    Burst,
    ConfirmResult,
    DayCount,
    HourCount,
    MinuteCount,
    OccupationCount,
    OutboxMessage,
    PartnerTotals,
    PendingSignature,
    SignatureMatch,
    SourceCount,
    StaffUser,
    occupation_key,
    partner_from_row,
    pledge_from_row,
)

Connection: TypeAlias = asyncpg.Connection  # a pool's proxied connection behaves the same

# As SQLite's lower(), which folds ASCII letters only: both engines group the same names.
KEY = "translate({}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(text: str) -> str:
    """KEY, in Python."""
    return text.translate(_ASCII_LOWER)


ISO = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')"""
DAY = "to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"
# The staff area's text keys, cut from created_at in UTC exactly as SQLite's substr() cuts the
# stored text: '2026-11-30T10' and '2026-11-30T10:07'.
HOUR = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24')"""
MINUTE = """to_char({} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI')"""
# The occupation key (store.occupation_key) in SQL.
OCCUPATION = KEY.format("trim({})")

_PLEDGE_COLUMNS = (
    "id, slug, title, statement_html, goal, privacy_url, contact, signature_count, closed_at, optional_fields,"
    " confirm_email"
)
_PARTNER_COLUMNS = "id, pledge_id, name, origins, token_version, revoked_at, signature_count, webhook_url"
_PLEDGE = f"SELECT {_PLEDGE_COLUMNS} FROM pledges"
_PARTNER = f"SELECT {_PARTNER_COLUMNS} FROM partners"


def _pledge(row: asyncpg.Record) -> Pledge:
    return pledge_from_row(row)


def _partner(row: asyncpg.Record) -> Partner:
    return partner_from_row(row, row["origins"])


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
    confirm_email: bool = False,
) -> Pledge:
    row = await conn.fetchrow(
        "INSERT INTO pledges (slug, title, statement_html, goal, privacy_url, contact, created_at, confirm_email)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7::text::timestamptz, $8) RETURNING {_PLEDGE_COLUMNS}",
        slug,
        title,
        statement_html,
        goal,
        privacy_url,
        contact,
        now,
        confirm_email,
    )
    return _pledge(row)


async def partner_by_id(conn: Connection, partner_id: int) -> Partner | None:
    row = await conn.fetchrow(_PARTNER + " WHERE id = $1", partner_id)
    return _partner(row) if row else None


async def partner_by_name(conn: Connection, pledge_id: int, name: str) -> Partner | None:
    row = await conn.fetchrow(_PARTNER + " WHERE pledge_id = $1 AND name = $2", pledge_id, name)
    return _partner(row) if row else None


async def partners_of(conn: Connection, pledge_id: int) -> list[Partner]:
    rows = await conn.fetch(
        _PARTNER + ' WHERE pledge_id = $1 ORDER BY signature_count DESC, name COLLATE "C"', pledge_id
    )
    return [_partner(row) for row in rows]


async def insert_partner(conn: Connection, *, pledge_id: int, name: str, origins: Sequence[str], now: str) -> Partner:
    row = await conn.fetchrow(
        "INSERT INTO partners (pledge_id, name, origins, created_at) VALUES ($1, $2, $3, $4::text::timestamptz)"
        f" RETURNING {_PARTNER_COLUMNS}",
        pledge_id,
        name,
        list(origins),
        now,
    )
    return _partner(row)


async def rotate_partner(conn: Connection, partner_id: int) -> Partner:
    row = await conn.fetchrow(
        "UPDATE partners SET token_version = token_version + 1, revoked_at = NULL WHERE id = $1"
        f" RETURNING {_PARTNER_COLUMNS}",
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
        f" RETURNING {_PARTNER_COLUMNS}",
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


# What a signature contributes to the staff area's kept counts, as INSERT … RETURNING and
# DELETE … RETURNING give it back: (pledge_id, partner_id, created_at as ISO text, occupation,
# opt_in_updates, opt_in_partner, *ATTRIBUTION_PARAMS).
_COUNTED_COLUMNS = (
    "pledge_id, partner_id, "
    + ISO.format("created_at")
    + " AS at, occupation, opt_in_updates, opt_in_partner, "
    + ", ".join(ATTRIBUTION_PARAMS)
)
_COUNTED = ("pledge_id", "partner_id", "at", "occupation", "opt_in_updates", "opt_in_partner", *ATTRIBUTION_PARAMS)

_SIGNATURE_COLUMNS = (
    "pledge_id, partner_id, email, name, occupation, organisation, opt_in_updates, opt_in_partner, origin, "
    + ", ".join(ATTRIBUTION_PARAMS)
    + ", created_at, client_mark"
)
# A signature's columns read back (a pending one, or a counted one for its webhook), in
# _SIGNATURE_COLUMNS order with created_at as ISO text.
_SIGNATURE_SELECT = _SIGNATURE_COLUMNS.replace("created_at", ISO.format("created_at") + " AS created_at")
# A batch as one row per signature from one array per column (_signature_arrays), in signing order.
_UNNEST_SIGNATURES = (
    " SELECT p, pa, e, n, oc, og, ou, op, o, "
    + ", ".join(f"a{i}" for i in range(len(ATTRIBUTION_PARAMS)))
    + ", c::timestamptz, m FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],"
    " $7::boolean[], $8::boolean[], $9::text[], "
    + ", ".join(f"${10 + i}::text[]" for i in range(len(ATTRIBUTION_PARAMS)))
    + f", ${10 + len(ATTRIBUTION_PARAMS)}::text[], ${11 + len(ATTRIBUTION_PARAMS)}::text[])"
    " AS s(p, pa, e, n, oc, og, ou, op, o, " + ", ".join(f"a{i}" for i in range(len(ATTRIBUTION_PARAMS))) + ", c, m)"
)
_INSERT_SIGNATURES = (
    f"INSERT INTO signatures ({_SIGNATURE_COLUMNS})" + _UNNEST_SIGNATURES + " ON CONFLICT (pledge_id, email) DO NOTHING"
    " RETURNING id, email, " + DAY.format("created_at") + " AS day, organisation, created_at, " + _COUNTED_COLUMNS
)
# A new pending signature, or one more send for one already waiting (while under the cap, the
# last parameter), or nothing for an address already counted.
_INSERT_PENDING = (
    f"INSERT INTO pending_signatures ({_SIGNATURE_COLUMNS})"
    + _UNNEST_SIGNATURES
    + " WHERE NOT EXISTS (SELECT 1 FROM signatures x WHERE x.pledge_id = s.p AND x.email = s.e)"
    " ON CONFLICT (pledge_id, email) DO UPDATE SET sends = pending_signatures.sends + 1"
    f" WHERE pending_signatures.sends < ${12 + len(ATTRIBUTION_PARAMS)}"
    " RETURNING id, pledge_id, email, sends, partner_id"
)
_ASKED = (
    "INSERT INTO confirmation_counts (pledge_id, partner_id, asked)"
    " SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[])"
    " ON CONFLICT (pledge_id, partner_id) DO UPDATE SET asked = confirmation_counts.asked + excluded.asked"
)
_CONFIRMED = (
    "INSERT INTO confirmation_counts (pledge_id, partner_id, confirmed) VALUES ($1, $2, 1)"
    " ON CONFLICT (pledge_id, partner_id) DO UPDATE SET confirmed = confirmation_counts.confirmed + 1"
)
# Messages for the outbox, one per (ref_id, partner_id, time as ISO text), of one kind ($1).
_QUEUE = (
    "INSERT INTO outbox (kind, ref_id, partner_id, created_at, next_attempt_at)"
    " SELECT $1, r, pa, c::timestamptz, c::timestamptz"
    " FROM unnest($2::bigint[], $3::bigint[], $4::text[]) AS t(r, pa, c)"
)


def _signature_arrays(batch: Sequence[NewSignature]) -> list[list[Any]]:
    """The batch as one array per column, in _UNNEST_SIGNATURES' parameter order."""
    return [
        [s.pledge_id for s in batch],
        [s.partner_id for s in batch],
        [s.email for s in batch],
        [s.name for s in batch],
        [s.occupation for s in batch],
        [s.organisation for s in batch],
        [s.opt_in_updates for s in batch],
        [s.opt_in_partner for s in batch],
        [s.origin for s in batch],
        *([s.attribution.get(key, "") for s in batch] for key in ATTRIBUTION_PARAMS),
        [s.created_at for s in batch],
        [s.client_mark for s in batch],
    ]


def _signature(row: asyncpg.Record, pending: bool = False) -> NewSignature:
    """A signature read with _SIGNATURE_SELECT."""
    return NewSignature(
        pledge_id=row["pledge_id"],
        partner_id=row["partner_id"],
        email=row["email"],
        name=row["name"],
        occupation=row["occupation"],
        organisation=row["organisation"],
        opt_in_updates=row["opt_in_updates"],
        opt_in_partner=row["opt_in_partner"],
        origin=row["origin"],
        attribution={key: row[key] for key in ATTRIBUTION_PARAMS if row[key]},
        created_at=row["created_at"],
        client_mark=row["client_mark"],
        pending=pending,
    )


async def _queue(conn: Connection, kind: str, messages: Sequence[tuple[int, int | None, str]]) -> None:
    if messages:
        await conn.execute(_QUEUE, kind, *(list(column) for column in zip(*messages, strict=True)))


async def insert_signatures(conn: Connection, batch: Sequence[NewSignature], confirm_sends: int = 3) -> BatchResult:
    """Insert a batch inside the caller's transaction; a duplicate (pledge, email) is skipped.
    Pending signatures (NewSignature.pending) go to pending_signatures instead (insert_pending)."""
    pledge_ids = {s.pledge_id for s in batch}
    if not any(s.pending for s in batch):
        return await insert_counted(conn, batch, pledge_ids)
    result = await insert_counted(conn, [s for s in batch if not s.pending], pledge_ids)
    pending, queued = await insert_pending(conn, [s for s in batch if s.pending], confirm_sends)
    return dataclasses.replace(result, pending=pending, queued=result.queued + queued)


async def insert_counted(
    conn: Connection, batch: Sequence[NewSignature], pledge_ids: Iterable[int], now: str | None = None
) -> BatchResult:
    """Insert signatures that count, inside the caller's transaction, with every kept count and
    the webhooks of those who consented to their partner's contact: the one way a signature is
    counted, whether it comes from a batch or from a confirmation. `pledge_ids`: the pledges
    whose totals the result reports; `now`: when the webhooks are queued (None: as each
    signature was signed, which is now for a batch).

    Rows keep the batch's order (signing order). Counter rows are updated in id order and the pledge
    row's lock then orders the rest of a batch's work, so two processes committing at once wait for
    each other rather than deadlock; the one case left (the same addresses in two batches in crossing
    order) is a deadlock PostgreSQL breaks, and the store tries that batch again. Every kept count
    after the pledge rows (days, organisations, then the staff area's) is written in key order,
    and `remove_signatures` takes the same tables in the same order.
    """
    new_rows = await conn.fetch(_INSERT_SIGNATURES, *_signature_arrays(batch)) if batch else []
    per_pledge = Counter(row["pledge_id"] for row in new_rows)
    per_partner = Counter(row["partner_id"] for row in new_rows if row["partner_id"])
    per_day = Counter((row["pledge_id"], row["partner_id"] or 0, row["day"]) for row in new_rows)
    # One upsert per organisation key, carrying the name as first typed in this batch.
    organisations = Counter(
        (row["pledge_id"], ascii_lower(row["organisation"])) for row in new_rows if row["organisation"]
    )
    first: dict[tuple[int, str], tuple[str, object]] = {}
    for row in new_rows:
        if row["organisation"]:
            first.setdefault(
                (row["pledge_id"], ascii_lower(row["organisation"])), (row["organisation"], row["created_at"])
            )

    totals: dict[int, int] = {}
    for pledge_id in sorted(pledge_ids):
        total = await conn.fetchval(
            "UPDATE pledges SET signature_count = signature_count + $1 WHERE id = $2 RETURNING signature_count",
            per_pledge.get(pledge_id, 0),
            pledge_id,
        )
        totals[pledge_id] = total or 0
    partner_counts: dict[int, tuple[int, int]] = {}
    hooked: set[int] = set()
    for partner_id in sorted(per_partner):
        row = await conn.fetchrow(
            "UPDATE partners SET signature_count = signature_count + $1 WHERE id = $2"
            " RETURNING pledge_id, signature_count, webhook_url IS NOT NULL",
            per_partner[partner_id],
            partner_id,
        )
        if row:
            partner_counts[partner_id] = (row[0], row[1])
            if row[2]:
                hooked.add(partner_id)
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
            " ON CONFLICT (pledge_id, name_key) DO UPDATE"
            " SET signatures = organisations.signatures + excluded.signatures",
            [(p, key, *first[(p, key)][:1], n, first[(p, key)][1]) for (p, key), n in sorted(organisations.items())],
        )
    await _add_kept_counts(conn, [tuple(row[name] for name in _COUNTED) for row in new_rows])
    # Known from the partner rows just updated: a batch without a webhook to queue adds no statement.
    webhooks = [
        (row["id"], row["partner_id"], now or row["at"])
        for row in new_rows
        if row["opt_in_partner"] and row["partner_id"] in hooked
    ]
    await _queue(conn, "webhook", webhooks)
    return BatchResult(
        {(row["pledge_id"], row["email"]) for row in new_rows}, totals, partner_counts, queued=len(webhooks)
    )


async def insert_pending(
    conn: Connection, batch: Sequence[NewSignature], confirm_sends: int
) -> tuple[set[tuple[int, str]], int]:
    """Store pending signatures inside the caller's transaction: a new one with sends = 1, one
    already waiting with sends + 1 while under `confirm_sends`, one already counted not at all;
    each new one and each re-send queues a "confirm" message. Returns the new (pledge_id, email)
    pairs and how many messages were queued."""
    first: dict[tuple[int, str], NewSignature] = {}
    for sig in batch:  # the same address twice in a batch is signed once (and one upsert per row)
        first.setdefault((sig.pledge_id, sig.email), sig)
    signatures = list(first.values())  # in signing order, as insert_counted keeps it
    stored = await conn.fetch(_INSERT_PENDING, *_signature_arrays(signatures), confirm_sends)
    new = {(row["pledge_id"], row["email"]) for row in stored if row["sends"] == 1}
    asked = Counter((row["pledge_id"], row["partner_id"] or DIRECT) for row in stored if row["sends"] == 1)
    if asked:
        keys = list(asked)
        await conn.execute(_ASKED, [k[0] for k in keys], [k[1] for k in keys], [asked[k] for k in keys])
    confirms = [(row["id"], None, first[(row["pledge_id"], row["email"])].created_at) for row in stored]
    await _queue(conn, "confirm", confirms)
    return new, len(confirms)


async def confirm_pending(conn: Connection, pending_id: int, now: str) -> ConfirmResult:
    """Count a pending signature inside the caller's transaction, through insert_counted as a batch
    does, and remember that its id was confirmed; "already" when it was, or when the address had
    signed. The row lock of the DELETE makes a second, simultaneous confirmation wait, then find
    nothing to move and the first one's mark."""
    # The pledge's row first, as a batch locks it before its pending rows: the other order could
    # deadlock with a batch re-sending this signature's email.
    await conn.execute(
        "SELECT 1 FROM pledges WHERE id = (SELECT pledge_id FROM pending_signatures WHERE id = $1) FOR UPDATE",
        pending_id,
    )
    row = await conn.fetchrow(f"DELETE FROM pending_signatures WHERE id = $1 RETURNING {_SIGNATURE_SELECT}", pending_id)
    if row is None:
        pledge_id = await conn.fetchval("SELECT pledge_id FROM confirmed_pending WHERE id = $1", pending_id)
        return ConfirmResult("already", pledge_id) if pledge_id is not None else ConfirmResult("unknown", None)
    # Its confirmation emails have nothing left to confirm.
    await conn.execute("DELETE FROM outbox WHERE ref_id = $1 AND kind IN ('confirm', 'remind')", pending_id)
    signature = _signature(row)
    batch = await insert_counted(conn, [signature], {signature.pledge_id}, now)
    signature_id = await conn.fetchval(
        "SELECT id FROM signatures WHERE pledge_id = $1 AND email = $2", signature.pledge_id, signature.email
    )
    await conn.execute(
        "INSERT INTO confirmed_pending (id, pledge_id, signature_id, confirmed_at)"
        " VALUES ($1, $2, $3, $4::text::timestamptz)",
        pending_id,
        signature.pledge_id,
        signature_id,
        now,
    )
    if batch.inserted:
        await conn.execute(_CONFIRMED, signature.pledge_id, signature.partner_id or DIRECT)
        return ConfirmResult("confirmed", signature.pledge_id, batch)
    return ConfirmResult("already", signature.pledge_id)


# The staff area's kept counts ---------------------------------------------------------------

_TAGS = ", ".join(ATTRIBUTION_PARAMS)
# One statement moves every staff-area kept count up for a batch: one round trip however many
# rows, which keeps short the time each batch holds its pledge row's lock. Each array is already
# one row per key (_kept_rows), as ON CONFLICT needs.
_KEPT_UPSERT = (
    "WITH hours AS (INSERT INTO signature_hours (pledge_id, hour, partner_id, count)"
    " SELECT * FROM unnest($1::bigint[], $2::text[], $3::bigint[], $4::bigint[])"
    " ON CONFLICT (pledge_id, hour, partner_id) DO UPDATE SET count = signature_hours.count + excluded.count),"
    " minutes AS (INSERT INTO signature_minutes (pledge_id, minute, count)"
    " SELECT * FROM unnest($5::bigint[], $6::text[], $7::bigint[])"
    " ON CONFLICT (pledge_id, minute) DO UPDATE SET count = signature_minutes.count + excluded.count),"
    " occupations AS (INSERT INTO signature_occupations (pledge_id, partner_id, occupation, count)"
    " SELECT * FROM unnest($8::bigint[], $9::bigint[], $10::text[], $11::bigint[])"
    " ON CONFLICT (pledge_id, partner_id, occupation) DO UPDATE"
    " SET count = signature_occupations.count + excluded.count),"
    f" sources AS (INSERT INTO signature_sources (pledge_id, partner_id, {_TAGS}, count)"
    " SELECT * FROM unnest($12::bigint[], $13::bigint[], $14::text[], $15::text[], $16::text[], $17::text[],"
    " $18::text[], $19::text[], $20::bigint[])"
    f" ON CONFLICT (pledge_id, partner_id, {_TAGS}) DO UPDATE SET count = signature_sources.count + excluded.count),"
    " totals AS (INSERT INTO partner_totals"
    " (pledge_id, partner_id, signatures, opt_in_updates, opt_in_partner, first_at, last_at)"
    " SELECT p, pa, n, u, o, f::timestamptz, l::timestamptz FROM unnest($21::bigint[], $22::bigint[],"
    " $23::bigint[], $24::bigint[], $25::bigint[], $26::text[], $27::text[]) AS t(p, pa, n, u, o, f, l)"
    " ON CONFLICT (pledge_id, partner_id) DO UPDATE SET"
    " signatures = partner_totals.signatures + excluded.signatures,"
    " opt_in_updates = partner_totals.opt_in_updates + excluded.opt_in_updates,"
    " opt_in_partner = partner_totals.opt_in_partner + excluded.opt_in_partner,"
    " first_at = LEAST(partner_totals.first_at, excluded.first_at),"
    " last_at = GREATEST(partner_totals.last_at, excluded.last_at))"
    " SELECT 1"
)
_DECREMENTS = (
    "UPDATE signature_hours SET count = count + $1 WHERE pledge_id = $2 AND hour = $3 AND partner_id = $4",
    "UPDATE signature_minutes SET count = count + $1 WHERE pledge_id = $2 AND minute = $3",
    "UPDATE signature_occupations SET count = count + $1 WHERE pledge_id = $2 AND partner_id = $3 AND occupation = $4",
    "UPDATE signature_sources SET count = count + $1 WHERE pledge_id = $2 AND partner_id = $3 AND "
    + " AND ".join(f"{key} = ${4 + i}" for i, key in enumerate(ATTRIBUTION_PARAMS)),
)
_TOTALS_DECREMENT = (
    "UPDATE partner_totals SET signatures = signatures + $1, opt_in_updates = opt_in_updates + $2,"
    " opt_in_partner = opt_in_partner + $3 WHERE pledge_id = $4 AND partner_id = $5"
)
# After a removal: (a partner's, the direct signatures') first and last signature, from the rows,
# along the (partner_id, created_at) or (pledge_id, created_at) index.
_REFRESH_FIRST_LAST = (
    "UPDATE partner_totals SET"
    " first_at = (SELECT min(created_at) FROM signatures WHERE partner_id = $2),"
    " last_at = (SELECT max(created_at) FROM signatures WHERE partner_id = $2)"
    " WHERE pledge_id = $1 AND partner_id = $2",
    "UPDATE partner_totals SET"
    " first_at = (SELECT min(created_at) FROM signatures WHERE pledge_id = $1 AND partner_id IS NULL),"
    " last_at = (SELECT max(created_at) FROM signatures WHERE pledge_id = $1 AND partner_id IS NULL)"
    " WHERE pledge_id = $1 AND partner_id = $2",
)


def _kept_rows(rows: Sequence[Sequence[Any]]) -> list[list[tuple[Any, ...]]]:
    """The staff area's kept counts for `rows` (in _COUNTED order), one row per key in key order:
    hours (pledge, hour, partner, n), minutes (pledge, minute, n), occupations (pledge, partner,
    key, n), sources (pledge, partner, *tags, n), totals (pledge, partner, signatures, opt-ins
    to updates, to the partner, first, last)."""
    hours: Counter[tuple[Any, ...]] = Counter()
    minutes: Counter[tuple[Any, ...]] = Counter()
    occupations: Counter[tuple[Any, ...]] = Counter()
    sources: Counter[tuple[Any, ...]] = Counter()
    totals: dict[tuple[Any, ...], list[Any]] = {}
    for pledge_id, partner_id, at, occupation, updates, partner_opt_in, *tags in rows:
        partner = partner_id or DIRECT
        hours[(pledge_id, at[:13], partner)] += 1
        minutes[(pledge_id, at[:16])] += 1
        occupations[(pledge_id, partner, occupation_key(occupation))] += 1
        sources[(pledge_id, partner, *tags)] += 1
        kept = totals.setdefault((pledge_id, partner), [0, 0, 0, at, at])
        kept[0] += 1
        kept[1] += 1 if updates else 0
        kept[2] += 1 if partner_opt_in else 0
        kept[3], kept[4] = min(kept[3], at), max(kept[4], at)
    return [
        *([(*key, n) for key, n in sorted(counter.items())] for counter in (hours, minutes, occupations, sources)),
        [(*key, *kept) for key, kept in sorted(totals.items())],
    ]


async def _add_kept_counts(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    if rows:
        # Each table's rows as one array per column, in _KEPT_UPSERT's parameter order.
        await conn.execute(
            _KEPT_UPSERT, *(list(column) for table in _kept_rows(rows) for column in zip(*table, strict=True))
        )


async def _remove_kept_counts(conn: Connection, rows: Sequence[Sequence[Any]]) -> None:
    if not rows:
        return
    hours, minutes, occupations, sources, totals = _kept_rows(rows)
    for sql, kept in zip(_DECREMENTS, (hours, minutes, occupations, sources), strict=True):
        await conn.executemany(sql, [(-row[-1], *row[:-1]) for row in kept])
    await conn.executemany(
        _TOTALS_DECREMENT, [(-n, -u, -o, pledge, partner) for pledge, partner, n, u, o, _, _ in totals]
    )


async def day_counts(conn: Connection, pledge_id: int) -> list[DayCount]:
    rows = await conn.fetch(
        "SELECT to_char(day, 'YYYY-MM-DD') AS day, partner_id, count FROM signature_days"
        " WHERE pledge_id = $1 ORDER BY day, partner_id",
        pledge_id,
    )
    return [DayCount(row["day"], row["partner_id"] or None, row["count"]) for row in rows]


_EXPORT_SELECT = (
    "SELECT " + ISO.format("s.created_at") + ", s.email, s.name, s.occupation, s.organisation,"
    " COALESCE(p.name, ''), s.origin, "
    + ", ".join(f"s.{key}" for key in ATTRIBUTION_PARAMS)
    + ", s.opt_in_updates::int, s.opt_in_partner::int"
    " FROM signatures s LEFT JOIN partners p ON p.id = s.partner_id WHERE s.pledge_id = $1"
)
EXPORT_SQL = _EXPORT_SELECT + " ORDER BY s.id"


async def export_rows(conn: Connection, pledge_id: int, chunk: int = 1000) -> AsyncIterator[tuple[object, ...]]:
    """Every signature of a pledge in signing order, through a server-side cursor a chunk at a time.

    The caller holds `conn` in a transaction (a cursor lives in one).
    """
    cursor = await conn.cursor(EXPORT_SQL, pledge_id)
    while rows := await cursor.fetch(chunk):
        for row in rows:
            yield tuple(row)


async def export_partner_rows(
    conn: Connection, pledge_id: int, partner_id: int, opted_in_only: bool, chunk: int = 1000
) -> AsyncIterator[tuple[object, ...]]:
    """One partner's signatures (DIRECT: direct ones) in signing order, as export_rows, inside the
    caller's transaction."""
    sql = _EXPORT_SELECT
    params: list[object] = [pledge_id]
    if partner_id == DIRECT:
        sql += " AND s.partner_id IS NULL"
    else:
        sql += " AND s.partner_id = $2"
        params.append(partner_id)
    if opted_in_only:
        sql += " AND s.opt_in_partner"
    cursor = await conn.cursor(sql + " ORDER BY s.id", *params)
    while rows := await cursor.fetch(chunk):
        for row in rows:
            yield tuple(row)


def _kept_beside_rows(what: str, name: str, kept: str, keys: str, real: str) -> str:
    """One check of a kept-count table against the rows grouped the same way (one GROUP BY over
    the signatures, joined on the key): every key whose kept count differs from its rows', a kept
    row without rows and rows without a kept row included."""
    return (
        f"SELECT '{what}', {name}, k.count, r.count FROM {kept} k FULL JOIN ({real}) r USING ({keys})"
        " WHERE k.count IS DISTINCT FROM r.count"
    )


def _of_pledge(what: str, table: str, column: str = "count") -> str:
    return (
        f"SELECT '{what}', slug, signature_count,"
        f" (SELECT COALESCE(sum(t.{column}), 0)::bigint FROM {table} t WHERE t.pledge_id = p.id) FROM pledges p"
    )


# Each kept count beside the rows it stands for: (what, name, kept, from the rows).
_INTEGRITY_CHECKS = (
    "SELECT 'pledge', slug, signature_count,"
    " (SELECT COUNT(*) FROM signatures s WHERE s.pledge_id = p.id) FROM pledges p",
    "SELECT 'partner', name, signature_count,"
    " (SELECT COUNT(*) FROM signatures s WHERE s.partner_id = p.id) FROM partners p",
    _of_pledge("days of pledge", "signature_days"),
    "SELECT 'organisation', name, signatures, (SELECT COUNT(*) FROM signatures s WHERE s.pledge_id = o.pledge_id"
    f" AND s.organisation != '' AND {KEY.format('s.organisation')} = o.name_key) FROM organisations o",
    # The staff area's kept counts: every kept row equals its rows, and each pledge's kept rows
    # add up to its total, so no signature is missing from them either.
    _kept_beside_rows(
        "day",
        "pledge_id || '/' || partner_id || '/' || to_char(day, 'YYYY-MM-DD')",
        "signature_days",
        "pledge_id, partner_id, day",
        "SELECT pledge_id, COALESCE(partner_id, 0) AS partner_id, (created_at AT TIME ZONE 'UTC')::date AS day,"
        " count(*) FROM signatures GROUP BY 1, 2, 3",
    ),
    _kept_beside_rows(
        "hour",
        "pledge_id || '/' || partner_id || '/' || hour",
        "signature_hours",
        "pledge_id, hour, partner_id",
        f'SELECT pledge_id, {HOUR.format("created_at")} COLLATE "C" AS hour,'
        " COALESCE(partner_id, 0) AS partner_id, count(*) FROM signatures GROUP BY 1, 2, 3",
    ),
    _of_pledge("hours of pledge", "signature_hours"),
    _kept_beside_rows(
        "minute",
        "pledge_id || '/' || minute",
        "signature_minutes",
        "pledge_id, minute",
        f'SELECT pledge_id, {MINUTE.format("created_at")} COLLATE "C" AS minute, count(*)'
        " FROM signatures GROUP BY 1, 2",
    ),
    _of_pledge("minutes of pledge", "signature_minutes"),
    _kept_beside_rows(
        "occupation",
        "pledge_id || '/' || partner_id || '/' || occupation",
        "signature_occupations",
        "pledge_id, partner_id, occupation",
        "SELECT pledge_id, COALESCE(partner_id, 0) AS partner_id,"
        f' {OCCUPATION.format("occupation")} COLLATE "C" AS occupation, count(*) FROM signatures GROUP BY 1, 2, 3',
    ),
    _of_pledge("occupations of pledge", "signature_occupations"),
    _kept_beside_rows(
        "source",
        "pledge_id || '/' || partner_id || '/' || " + " || '/' || ".join(ATTRIBUTION_PARAMS),
        "signature_sources",
        f"pledge_id, partner_id, {_TAGS}",
        "SELECT pledge_id, COALESCE(partner_id, 0) AS partner_id, "
        + ", ".join(f'{key} COLLATE "C" AS {key}' for key in ATTRIBUTION_PARAMS)
        + ", count(*) FROM signatures GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
    ),
    _of_pledge("sources of pledge", "signature_sources"),
    _of_pledge("partner totals of pledge", "partner_totals", "signatures"),
    # Each partner_totals row as one text of every column, beside the same text from the rows.
    "SELECT 'partner totals', pledge_id || '/' || partner_id, k.totals, r.totals FROM"
    " (SELECT pledge_id, partner_id, signatures || ' ' || opt_in_updates || ' ' || opt_in_partner || ' ' || "
    + ISO.format("first_at")
    + " || ' ' || "
    + ISO.format("last_at")
    + " AS totals FROM partner_totals) k FULL JOIN"
    " (SELECT pledge_id, COALESCE(partner_id, 0) AS partner_id, count(*) || ' ' ||"
    " count(*) FILTER (WHERE opt_in_updates) || ' ' || count(*) FILTER (WHERE opt_in_partner) || ' ' || "
    + ISO.format("min(created_at)")
    + " || ' ' || "
    + ISO.format("max(created_at)")
    + " AS totals FROM signatures GROUP BY 1, 2) r USING (pledge_id, partner_id)"
    " WHERE k.totals IS DISTINCT FROM r.totals",
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
    return [dict(row) for row in await conn.fetch(sql + ' ORDER BY name_key COLLATE "C"', *params)]


async def approved_organisation_names(conn: Connection, pledge_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT name FROM organisations WHERE pledge_id = $1 AND status = 'approved' ORDER BY name_key COLLATE \"C\"",
        pledge_id,
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
    """Every signature of one email across pledges: the counted ones, then those still pending."""
    found = []
    for table, status in (("signatures", "counted"), ("pending_signatures", "pending")):
        rows = await conn.fetch(
            f"SELECT {_PERSON_COLUMNS}, '{status}' AS status FROM {table} s JOIN pledges p ON p.id = s.pledge_id"
            " LEFT JOIN partners pa ON pa.id = s.partner_id WHERE s.email = $1 ORDER BY s.id",
            email,
        )
        found += [dict(row) for row in rows]
    return found


async def erase_signatures(conn: Connection, email: str) -> int:
    """Delete one email's signatures everywhere, pending ones and every message about either
    included, inside the caller's transaction, counts corrected."""
    return await remove_signatures(conn, "email = $1", [email], pending=True)


# Kept rows that a removal brought to nothing are deleted: (table, its count column). The first,
# organisations, because a name that nobody stands behind any more is personal data too.
_EMPTIED = (
    ("organisations", "signatures"),
    ("signature_days", "count"),
    ("signature_hours", "count"),
    ("signature_minutes", "count"),
    ("signature_occupations", "count"),
    ("signature_sources", "count"),
    ("partner_totals", "signatures"),
)


async def remove_signatures(conn: Connection, where: str, params: Sequence[object], *, pending: bool = False) -> int:
    """Delete the signatures `where` selects and move every kept count down with them, with their
    queued webhooks, inside the caller's transaction: erasure and burst invalidation both end here.
    With `pending`, the pending signatures `where` selects go too, with their confirmation emails.
    Counters are taken in the order insert_signatures takes them. Returns how many rows went."""
    erased = await conn.fetch(
        "DELETE FROM signatures WHERE "
        + where
        + " RETURNING id, "
        + DAY.format("created_at")
        + " AS day, organisation, "
        + _COUNTED_COLUMNS,
        *params,
    )
    waiting = []
    if pending:
        waiting = [
            row["id"]
            for row in await conn.fetch("DELETE FROM pending_signatures WHERE " + where + " RETURNING id", *params)
        ]
        await _delete_messages(conn, "confirm", waiting)
    if not erased:
        return len(waiting)
    await _delete_messages(conn, "webhook", [row["id"] for row in erased])
    per_pledge = Counter(row["pledge_id"] for row in erased)
    per_partner = Counter(row["partner_id"] for row in erased if row["partner_id"])
    per_day = Counter((row["pledge_id"], row["partner_id"] or 0, row["day"]) for row in erased)
    per_org = Counter((row["pledge_id"], ascii_lower(row["organisation"])) for row in erased if row["organisation"])
    await conn.executemany(
        "UPDATE pledges SET signature_count = signature_count - $1 WHERE id = $2",
        [(n, pledge_id) for pledge_id, n in sorted(per_pledge.items())],
    )
    await conn.executemany(
        "UPDATE partners SET signature_count = signature_count - $1 WHERE id = $2",
        [(n, partner_id) for partner_id, n in sorted(per_partner.items())],
    )
    await conn.executemany(
        "UPDATE signature_days SET count = count - $1"
        " WHERE pledge_id = $2 AND partner_id = $3 AND day = $4::text::date",
        [(n, *key) for key, n in sorted(per_day.items())],
    )
    if per_org:
        await conn.executemany(
            "UPDATE organisations SET signatures = signatures - $1 WHERE pledge_id = $2 AND name_key = $3",
            [(n, *key) for key, n in sorted(per_org.items())],
        )
    await _remove_kept_counts(conn, [tuple(row[name] for name in _COUNTED) for row in erased])
    pledge_ids = sorted(per_pledge)
    # A name that nobody stands behind any more is personal data too: forget it.
    for table, count in _EMPTIED:
        await conn.execute(f"DELETE FROM {table} WHERE pledge_id = ANY($1::bigint[]) AND {count} <= 0", pledge_ids)
    # The first and last signature of a partner may have gone: read them again from the rows.
    for pledge_id, partner_id in sorted({(row["pledge_id"], row["partner_id"] or DIRECT) for row in erased}):
        await conn.execute(_REFRESH_FIRST_LAST[partner_id == DIRECT], pledge_id, partner_id)
    return len(erased) + len(waiting)


async def _delete_messages(conn: Connection, kind: str, ref_ids: Sequence[int]) -> None:
    """Delete the queued messages about these rows: "webhook" for signatures, "confirm" for
    pending signatures (their reminders included)."""
    if ref_ids:
        kinds = ["webhook"] if kind == "webhook" else ["confirm", "remind"]
        await conn.execute(
            "DELETE FROM outbox WHERE ref_id = ANY($1::bigint[]) AND kind = ANY($2::text[])", list(ref_ids), kinds
        )


# Abuse: what one kind of burst groups signatures by, as SQL over the signatures table.
_BURST_VALUE = {
    "client": "client_mark",
    "domain": "substr(email, strpos(email, '@') + 1)",
    "partner": "COALESCE(partner_id, 0)::text",
}


async def bursts(conn: Connection, pledge_id: int, since: str, until: str, kind: str, at_least: int) -> list[Burst]:
    """Hours in which one value of `kind` brought `at_least` signatures, read along the
    (pledge_id, created_at) index over the window only."""
    if kind not in BURST_KINDS:
        raise ValueError(kind)
    skip_unmarked = " AND client_mark != ''" if kind == "client" else ""
    rows = await conn.fetch(
        f'SELECT {HOUR.format("created_at")} COLLATE "C" AS hour, ({_BURST_VALUE[kind]}) COLLATE "C" AS value,'
        " count(*) AS n FROM signatures"
        f" WHERE pledge_id = $1 AND created_at >= $2::text::timestamptz AND created_at < $3::text::timestamptz"
        f"{skip_unmarked} GROUP BY 1, 2 HAVING count(*) >= $4 ORDER BY 3 DESC, 1 DESC, 2 LIMIT 200",
        pledge_id,
        since,
        until,
        at_least,
    )
    return [Burst(row["hour"], kind, row["value"], row["n"]) for row in rows]


def _hour_window(hour: str) -> tuple[datetime, datetime] | None:
    """[the hour's start, the next hour's) in UTC; None for a text that is not a UTC hour, which
    no stored time falls in (as SQLite's text comparison finds none)."""
    try:
        start = datetime.strptime(hour + "+0000", "%Y-%m-%dT%H%z")
    except ValueError:
        return None
    if start.strftime("%Y-%m-%dT%H") != hour:
        return None
    return start, start + timedelta(hours=1)


def _match_where(match: SignatureMatch) -> tuple[str, list[object]]:
    if match.kind not in BURST_KINDS:
        raise ValueError(match.kind)
    if match.kind == "client" and not match.value:
        return "false", []  # an unmarked signature is nobody's burst
    value: object = match.value
    if match.kind == "partner":
        value = None if match.value in ("", str(DIRECT)) else int(match.value)
    window = _hour_window(match.hour)
    if window is None:
        return "false", []
    where = "pledge_id = $1 AND created_at >= $2 AND created_at < $3 AND "
    params: list[object] = [match.pledge_id, *window]
    if match.kind == "partner":
        if value is None:
            return where + "partner_id IS NULL", params
        return where + "partner_id = $4", [*params, value]
    return where + _BURST_VALUE[match.kind] + " = $4", [*params, value]


async def count_matching(conn: Connection, match: SignatureMatch) -> int:
    where, params = _match_where(match)
    return int(await conn.fetchval("SELECT count(*) FROM signatures WHERE " + where, *params))


async def invalidate_signatures(conn: Connection, match: SignatureMatch) -> int:
    """Inside the caller's transaction, as remove_signatures."""
    where, params = _match_where(match)
    return await remove_signatures(conn, where, params)


# Kept counts for the dashboard ---------------------------------------------------------------


async def hour_counts(conn: Connection, pledge_id: int, since_hour: str) -> list[HourCount]:
    rows = await conn.fetch(
        "SELECT hour, partner_id, count FROM signature_hours WHERE pledge_id = $1 AND hour >= $2"
        " ORDER BY hour, partner_id",
        pledge_id,
        since_hour,
    )
    return [HourCount(row[0], row[1] or None, row[2]) for row in rows]


async def minute_counts(conn: Connection, pledge_id: int, since_minute: str) -> list[MinuteCount]:
    rows = await conn.fetch(
        "SELECT minute, count FROM signature_minutes WHERE pledge_id = $1 AND minute >= $2 ORDER BY minute",
        pledge_id,
        since_minute,
    )
    return [MinuteCount(row[0], row[1]) for row in rows]


async def partner_totals(conn: Connection, pledge_id: int) -> list[PartnerTotals]:
    rows = await conn.fetch(
        "SELECT partner_id, signatures, opt_in_updates, opt_in_partner, "
        + ISO.format("first_at")
        + ", "
        + ISO.format("last_at")
        + " FROM partner_totals WHERE pledge_id = $1 ORDER BY partner_id",
        pledge_id,
    )
    return [PartnerTotals(row[0] or None, row[1], row[2], row[3], row[4], row[5]) for row in rows]


async def occupation_counts(conn: Connection, pledge_id: int, partner_id: int | None = None) -> list[OccupationCount]:
    sql = "SELECT occupation, sum(count)::bigint AS n FROM signature_occupations WHERE pledge_id = $1"
    params: list[object] = [pledge_id]
    if partner_id is not None:
        sql += " AND partner_id = $2"
        params.append(partner_id)
    rows = await conn.fetch(sql + " GROUP BY occupation HAVING sum(count) > 0 ORDER BY n DESC, occupation", *params)
    return [OccupationCount(row[0], row[1]) for row in rows]


async def source_counts(conn: Connection, pledge_id: int) -> list[SourceCount]:
    # The tags break ties, so that the order is the same on every read.
    rows = await conn.fetch(
        f"SELECT partner_id, {_TAGS}, count FROM signature_sources WHERE pledge_id = $1"
        f" ORDER BY count DESC, partner_id, {_TAGS}",
        pledge_id,
    )
    return [SourceCount(row[0] or None, tuple(row[1:-1]), row[-1]) for row in rows]


# Pledges and partners as staff edit them ------------------------------------------------------


async def pledges(conn: Connection) -> list[Pledge]:
    return [_pledge(row) for row in await conn.fetch(_PLEDGE + " ORDER BY id DESC")]


async def pledge_by_id(conn: Connection, pledge_id: int) -> Pledge | None:
    row = await conn.fetchrow(_PLEDGE + " WHERE id = $1", pledge_id)
    return _pledge(row) if row else None


async def update_pledge(
    conn: Connection,
    pledge_id: int,
    *,
    title: str,
    statement_html: str,
    goal: int | None,
    privacy_url: str | None,
    contact: str | None,
    optional_fields: Sequence[str],
    closed_at: str | None,
    confirm_email: bool = False,
) -> Pledge:
    row = await conn.fetchrow(
        "UPDATE pledges SET title = $1, statement_html = $2, goal = $3, privacy_url = $4, contact = $5,"
        " optional_fields = $6, closed_at = CASE WHEN $7::text IS NULL THEN NULL"
        " ELSE COALESCE(closed_at, $7::text::timestamptz) END, confirm_email = $9"
        f" WHERE id = $8 RETURNING {_PLEDGE_COLUMNS}",
        title,
        statement_html,
        goal,
        privacy_url,
        contact,
        ",".join(optional_fields),
        closed_at,
        pledge_id,
        confirm_email,
    )
    assert row is not None
    return _pledge(row)


async def reinstate_partner(conn: Connection, partner_id: int) -> Partner:
    row = await conn.fetchrow(
        f"UPDATE partners SET revoked_at = NULL WHERE id = $1 RETURNING {_PARTNER_COLUMNS}", partner_id
    )
    assert row is not None
    return _partner(row)


# Staff accounts and the audit log ----------------------------------------------------------

_STAFF_COLUMNS = "id, email, role, password_hash, session_epoch, " + ISO.format("created_at") + " AS created_at"


def _staff_user(row: asyncpg.Record) -> StaffUser:
    return StaffUser(
        row["id"], row["email"], row["role"], row["password_hash"], row["session_epoch"], row["created_at"]
    )


async def staff_users(conn: Connection) -> list[StaffUser]:
    rows = await conn.fetch(f'SELECT {_STAFF_COLUMNS} FROM staff_users ORDER BY email COLLATE "C"')
    return [_staff_user(row) for row in rows]


async def staff_user_by(conn: Connection, column: str, value: object) -> StaffUser | None:
    assert column in ("id", "email")
    row = await conn.fetchrow(f"SELECT {_STAFF_COLUMNS} FROM staff_users WHERE {column} = $1", value)
    return _staff_user(row) if row else None


async def insert_staff_user(conn: Connection, *, email: str, role: str, password_hash: str, now: str) -> StaffUser:
    row = await conn.fetchrow(
        "INSERT INTO staff_users (email, role, password_hash, created_at) VALUES ($1, $2, $3, $4::text::timestamptz)"
        f" RETURNING {_STAFF_COLUMNS}",
        email,
        role,
        password_hash,
        now,
    )
    return _staff_user(row)


async def delete_staff_user(conn: Connection, user_id: int) -> bool:
    result = await conn.execute("DELETE FROM staff_users WHERE id = $1", user_id)
    return bool(result.split()[-1] != "0")


async def update_staff_user(conn: Connection, user_id: int, sql: str, params: Sequence[object]) -> StaffUser | None:
    """`sql` sets columns from $2 on; None when there is no such account."""
    row = await conn.fetchrow(
        f"UPDATE staff_users SET {sql} WHERE id = $1 RETURNING {_STAFF_COLUMNS}", user_id, *params
    )
    return _staff_user(row) if row else None


async def record_audit(
    conn: Connection, *, at: str, actor: str, action: str, pledge: str, subject: str, detail: str
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (at, actor, action, pledge, subject, detail)"
        " VALUES ($1::text::timestamptz, $2, $3, $4, $5, $6)",
        at,
        actor,
        action,
        pledge,
        subject,
        detail,
    )


async def audit_entries(
    conn: Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    pledge: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    sql = f"SELECT id, {ISO.format('at')}, actor, action, pledge, subject, detail FROM audit_log WHERE true"
    params: list[object] = []
    for column, value in (("actor", actor), ("action", action), ("pledge", pledge)):
        if value:
            params.append(value)
            sql += f" AND {column} = ${len(params)}"
    if before_id is not None:
        params.append(before_id)
        sql += f" AND id < ${len(params)}"
    params.append(limit)
    rows = await conn.fetch(sql + f" ORDER BY id DESC LIMIT ${len(params)}", *params)
    return [AuditEntry(*row) for row in rows]


# Moving a campaign between engines -----------------------------------------------------------


def _select(name: str, kind: str) -> str:
    if kind == "time":
        return ISO.format(name) + f" AS {name}"
    if kind == "day":
        return f"to_char({name}, 'YYYY-MM-DD') AS {name}"
    return name


def _placeholder(index: int, kind: str) -> str:
    if kind == "time":
        return f"${index}::text::timestamptz"
    if kind == "day":
        return f"${index}::text::date"
    return f"${index}"


async def is_empty(conn: Connection) -> bool:
    for table in TABLES:
        if await conn.fetchval(f"SELECT EXISTS (SELECT 1 FROM {table})"):  # names from TABLES only
            return False
    return True


async def _primary_key(conn: Connection, table: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)"
        " WHERE i.indrelid = $1::regclass AND i.indisprimary ORDER BY array_position(i.indkey::int2[], a.attnum)",
        table,
    )
    return [row[0] for row in rows]


async def read_table(conn: Connection, table: str, chunk: int = 1000) -> AsyncIterator[list[dict[str, object]]]:
    """The table's rows a chunk at a time in primary-key order, inside the caller's transaction.

    Text keys are ordered as bytes, as SQLite orders them, so both engines yield the same rows in
    the same order.
    """
    columns = TABLES[table]
    kinds = dict(columns)
    selected = ", ".join(_select(name, kind) for name, kind in columns)
    key = await _primary_key(conn, table) or [name for name, _ in columns]
    order = ", ".join(f'{name} COLLATE "C"' if kinds.get(name) == "text" else name for name in key)
    cursor = await conn.cursor(f"SELECT {selected} FROM {table} ORDER BY {order}")
    while rows := await cursor.fetch(chunk):
        yield [{name: row[name] for name, _ in columns} for row in rows]


async def write_rows(conn: Connection, table: str, rows: Sequence[dict[str, object]]) -> None:
    columns = TABLES[table]
    placeholders = ", ".join(_placeholder(i + 1, kind) for i, (_, kind) in enumerate(columns))
    await conn.executemany(
        f"INSERT INTO {table} ({', '.join(n for n, _ in columns)}) VALUES ({placeholders})",
        [tuple(row[name] for name, _ in columns) for row in rows],
    )


# Besides its own ids, the largest id a table's sequence must pass after a copy: a pending id
# confirmed before the move is remembered only in confirmed_pending, and an old link may name it.
_PAST_IDS = {"pending_signatures": "(SELECT max(id) FROM confirmed_pending)"}


async def finish_copy(conn: Connection) -> None:
    """Every identity sequence past the largest id copied (1 for an empty table)."""
    for table in TABLES:
        if any(name == "id" for name, _ in TABLES[table]) and table != "confirmed_pending":
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"
                f" COALESCE(GREATEST((SELECT max(id) FROM {table}), {_PAST_IDS.get(table, 'NULL')}), 0) + 1, false)"
            )


# Confirmed signatures ------------------------------------------------------------------------


async def pending_signature(conn: Connection, pending_id: int) -> PendingSignature | None:
    row = await conn.fetchrow(
        f"SELECT id, sends, reminded, {_SIGNATURE_SELECT} FROM pending_signatures WHERE id = $1", pending_id
    )
    if row is None:
        return None
    return PendingSignature(row["id"], _signature(row, pending=True), row["sends"], row["reminded"])


async def signature_by_id(conn: Connection, signature_id: int) -> NewSignature | None:
    row = await conn.fetchrow(f"SELECT {_SIGNATURE_SELECT} FROM signatures WHERE id = $1", signature_id)
    return _signature(row) if row else None


async def queue_reminders(conn: Connection, signed_before: str, now: str) -> int:
    """Inside the caller's transaction: mark and queue in one statement."""
    result = await conn.execute(
        "WITH due AS (UPDATE pending_signatures SET reminded = true"
        " WHERE created_at < $1::text::timestamptz AND NOT reminded RETURNING id)"
        " INSERT INTO outbox (kind, ref_id, created_at, next_attempt_at)"
        " SELECT 'remind', id, $2::text::timestamptz, $2::text::timestamptz FROM due ORDER BY id",
        signed_before,
        now,
    )
    return int(result.split()[-1])


async def purge_pending(conn: Connection, signed_before: str) -> int:
    """Inside the caller's transaction."""
    purged = [
        row["id"]
        for row in await conn.fetch(
            "DELETE FROM pending_signatures WHERE created_at < $1::text::timestamptz RETURNING id", signed_before
        )
    ]
    await _delete_messages(conn, "confirm", purged)
    await conn.execute("DELETE FROM confirmed_pending WHERE confirmed_at < $1::text::timestamptz", signed_before)
    return len(purged)


async def confirmation_counts(conn: Connection, pledge_id: int) -> dict[int, tuple[int, int]]:
    rows = await conn.fetch(
        "SELECT partner_id, asked, confirmed FROM confirmation_counts WHERE pledge_id = $1", pledge_id
    )
    return {row[0]: (row[1], row[2]) for row in rows}


async def pending_counts(conn: Connection, pledge_id: int) -> dict[int, int]:
    rows = await conn.fetch(
        "SELECT COALESCE(partner_id, 0) AS partner, count(*) FROM pending_signatures WHERE pledge_id = $1 GROUP BY 1",
        pledge_id,
    )
    return {row[0]: row[1] for row in rows}


# Partner webhooks ----------------------------------------------------------------------------


async def set_partner_webhook(conn: Connection, partner_id: int, url: str | None, secret: str | None) -> Partner:
    row = await conn.fetchrow(
        f"UPDATE partners SET webhook_url = $1, webhook_secret = $2 WHERE id = $3 RETURNING {_PARTNER_COLUMNS}",
        url,
        secret if url is not None else None,
        partner_id,
    )
    assert row is not None
    return _partner(row)


async def partner_webhook(conn: Connection, partner_id: int) -> tuple[str, str] | None:
    row = await conn.fetchrow("SELECT webhook_url, webhook_secret FROM partners WHERE id = $1", partner_id)
    if row is None or row[0] is None:
        return None
    return row[0], row[1] or ""


# The outbox ----------------------------------------------------------------------------------

_OUTBOX_COLUMNS = (
    "id, kind, ref_id, partner_id, "
    + ISO.format("created_at")
    + " AS created_at, attempts, "
    + ISO.format("next_attempt_at")
    + " AS next_attempt_at, last_error, dead"
)


def _message(row: asyncpg.Record) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        kind=row["kind"],
        ref_id=row["ref_id"],
        partner_id=row["partner_id"],
        created_at=row["created_at"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        dead=row["dead"],
    )


async def claim_outbox(conn: Connection, now: str, lease_until: str, limit: int) -> list[OutboxMessage]:
    """Lease due messages, inside the caller's transaction. SKIP LOCKED: a message another process
    is claiming at this moment is passed over, not waited for, so claimers never share one. The
    lease's end is also the next attempt, so the due index skips leased messages."""
    rows = await conn.fetch(
        "UPDATE outbox SET leased_until = $2::text::timestamptz, next_attempt_at = $2::text::timestamptz"
        " WHERE id IN (SELECT id FROM outbox WHERE NOT dead AND next_attempt_at <= $1::text::timestamptz"
        " AND (leased_until IS NULL OR leased_until <= $1::text::timestamptz)"
        " ORDER BY next_attempt_at, id LIMIT $3 FOR UPDATE SKIP LOCKED)"
        f" RETURNING {_OUTBOX_COLUMNS}",
        now,
        lease_until,
        limit,
    )
    return sorted((_message(row) for row in rows), key=lambda message: message.id)


async def outbox_sent(conn: Connection, message_ids: Sequence[int]) -> None:
    await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", list(message_ids))


async def unflushed(conn: Connection) -> None:
    """Inside a transaction: its commit need not wait for the WAL flush (Store.claim_outbox says
    why the outbox's bookkeeping may be lost in a crash)."""
    await conn.execute("SET LOCAL synchronous_commit TO OFF")


async def outbox_failed(conn: Connection, message_id: int, error: str, retry_at: str | None) -> None:
    await conn.execute(
        "UPDATE outbox SET attempts = attempts + 1, last_error = $2, leased_until = NULL,"
        " next_attempt_at = COALESCE($3::text::timestamptz, next_attempt_at), dead = ($3::text IS NULL)"
        " WHERE id = $1",
        message_id,
        error,
        retry_at,
    )


async def outbox_message(conn: Connection, message_id: int) -> OutboxMessage | None:
    row = await conn.fetchrow(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = $1", message_id)
    return _message(row) if row is not None else None


async def outbox_messages(conn: Connection, dead_only: bool, limit: int) -> list[OutboxMessage]:
    where = " WHERE dead" if dead_only else ""
    rows = await conn.fetch(f"SELECT {_OUTBOX_COLUMNS} FROM outbox{where} ORDER BY id LIMIT $1", limit)
    return [_message(row) for row in rows]


async def outbox_retry(conn: Connection, message_id: int | None, now: str) -> int:
    result = await conn.execute(
        "UPDATE outbox SET dead = false, attempts = 0, next_attempt_at = $1::text::timestamptz, leased_until = NULL"
        " WHERE dead AND ($2::bigint IS NULL OR id = $2)",
        now,
        message_id,
    )
    return int(result.split()[-1])


async def outbox_discard(conn: Connection, message_id: int) -> bool:
    result = await conn.execute("DELETE FROM outbox WHERE id = $1", message_id)
    return bool(result.split()[-1] != "0")
