"""The SQLite engine's SQL: parameterised, and knowing nothing of requests.

Called only by `SQLiteStore` (store.py), which owns the connections and turns driver errors into
the project's own.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import sqlite3
from collections import Counter
from collections.abc import AsyncGenerator, Iterable, Iterator, Sequence
from typing import Any

import aiosqlite

from widget_server.core.models import ATTRIBUTION_PARAMS, NewSignature, Partner, Pledge
from widget_server.storage.sqlite.db import transaction
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


def _pledge(row: sqlite3.Row) -> Pledge:
    return pledge_from_row(row)


def _partner(row: sqlite3.Row) -> Partner:
    return partner_from_row(row, json.loads(row["origins"]))


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
    confirm_email: bool = False,
) -> Pledge:
    await conn.execute(
        "INSERT INTO pledges (slug, title, statement_html, goal, privacy_url, contact, created_at, confirm_email)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (slug, title, statement_html, goal, privacy_url, contact, now, int(confirm_email)),
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
    " opt_in_partner, origin, " + ", ".join(ATTRIBUTION_PARAMS) + ", created_at, client_mark"
)
_SIGNATURE_PLACEHOLDERS = "(" + ", ".join("?" * len(_SIGNATURE_COLUMNS.split(","))) + ")"


def _signature_from_values(values: Sequence[Any], pending: bool = False) -> NewSignature:
    """A signature from its columns in _SIGNATURE_COLUMNS order (as _signature_values gives them)."""
    tags = len(ATTRIBUTION_PARAMS)
    return NewSignature(
        pledge_id=values[0],
        partner_id=values[1],
        email=values[2],
        name=values[3],
        occupation=values[4],
        organisation=values[5],
        opt_in_updates=bool(values[6]),
        opt_in_partner=bool(values[7]),
        origin=values[8],
        attribution={key: value for key, value in zip(ATTRIBUTION_PARAMS, values[9 : 9 + tags], strict=True) if value},
        created_at=values[9 + tags],
        client_mark=values[10 + tags],
        pending=pending,
    )


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
        sig.client_mark,
    )


def insert_signatures(conn: sqlite3.Connection, batch: Sequence[NewSignature], confirm_sends: int = 3) -> BatchResult:
    """Insert a batch in one transaction; a duplicate (pledge, email) is skipped, not an error.

    Synchronous on purpose: the writer runs the whole transaction in its own thread in one
    step, so a batch costs one hop from the event loop, not one per statement. The public
    counts move in the same transaction as the rows (the staff area's are folded in after it,
    fold_kept_counts); with `synchronous=FULL` the COMMIT returns once the
    WAL is on disk. Pending signatures (NewSignature.pending) go to pending_signatures instead,
    each new one or re-send with a "confirm" message (insert_pending).
    """
    conn.execute("BEGIN IMMEDIATE")
    try:
        pledge_ids = {sig.pledge_id for sig in batch}
        if any(sig.pending for sig in batch):
            result = insert_counted(conn, [sig for sig in batch if not sig.pending], pledge_ids)
            pending, queued = insert_pending(conn, [sig for sig in batch if sig.pending], confirm_sends)
            result = dataclasses.replace(result, pending=pending, queued=result.queued + queued)
        else:
            result = insert_counted(conn, batch, pledge_ids)
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    return result


def insert_counted(
    conn: sqlite3.Connection, batch: Sequence[NewSignature], pledge_ids: Iterable[int], now: str | None = None
) -> BatchResult:
    """Insert signatures that count, inside the caller's transaction, with the counts the public
    reads (pledge, partner, day, organisation) and the webhooks of those who consented to their
    partner's contact: the one way a signature is counted, whether it comes from a batch or from
    a confirmation. The staff area's kept counts are folded in after the commit
    (fold_kept_counts). `pledge_ids`: the pledges whose totals the result reports (those of the
    batch, with or without a new row); `now`: when the webhooks are queued (None: as each
    signature was signed, which is now for a batch)."""
    inserted: list[tuple[int, str, int | None, str]] = []
    organisations: list[tuple[int, str, str]] = []
    consented: list[tuple[int, int, str]] = []  # (signature id, partner id, created_at)
    for start in range(0, len(batch), 100):
        chunk = batch[start : start + 100]
        sql = (
            f"INSERT INTO signatures ({_SIGNATURE_COLUMNS}) VALUES "
            + ", ".join([_SIGNATURE_PLACEHOLDERS] * len(chunk))
            + " ON CONFLICT (pledge_id, email) DO NOTHING"
            " RETURNING pledge_id, email, partner_id, substr(created_at, 1, 10), organisation, created_at, id,"
            " opt_in_partner"
        )
        params = [value for sig in chunk for value in _signature_values(sig)]
        new_rows = conn.execute(sql, params).fetchall()
        inserted.extend(tuple(row[:4]) for row in new_rows)
        organisations.extend((row[0], row[4], row[5]) for row in new_rows if row[4])
        consented.extend((row[6], row[2], row[5]) for row in new_rows if row[2] and row[7])

    per_pledge = Counter(pledge_id for pledge_id, _, _, _ in inserted)
    per_partner = Counter(partner_id for _, _, partner_id, _ in inserted if partner_id)
    per_day = Counter((p, partner or 0, day) for p, _, partner, day in inserted)
    totals: dict[int, int] = {}
    for pledge_id in pledge_ids:
        row = conn.execute(
            "UPDATE pledges SET signature_count = signature_count + ? WHERE id = ? RETURNING signature_count",
            (per_pledge.get(pledge_id, 0), pledge_id),
        ).fetchone()
        totals[pledge_id] = row[0] if row else 0
    partner_counts: dict[int, tuple[int, int]] = {}
    hooked: set[int] = set()
    for partner_id, n in per_partner.items():
        row = conn.execute(
            "UPDATE partners SET signature_count = signature_count + ? WHERE id = ?"
            " RETURNING pledge_id, signature_count, webhook_url IS NOT NULL",
            (n, partner_id),
        ).fetchone()
        if row:
            partner_counts[partner_id] = (row[0], row[1])
            if row[2]:
                hooked.add(partner_id)
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
    # Known from the partner rows just updated: a batch without a webhook to queue adds no statement.
    webhooks = [
        (sig_id, partner_id, now or at, now or at) for sig_id, partner_id, at in consented if partner_id in hooked
    ]
    if webhooks:
        conn.executemany(
            "INSERT INTO outbox (kind, ref_id, partner_id, created_at, next_attempt_at) VALUES ('webhook', ?, ?, ?, ?)",
            webhooks,
        )
    return BatchResult({(p, email) for p, email, _, _ in inserted}, totals, partner_counts, queued=len(webhooks))


def insert_pending(
    conn: sqlite3.Connection, batch: Sequence[NewSignature], confirm_sends: int
) -> tuple[set[tuple[int, str]], int]:
    """Store pending signatures inside the caller's transaction: a new one with sends = 1, one
    already waiting with sends + 1 while under `confirm_sends`, one already counted not at all;
    each new one and each re-send queues a "confirm" message. Returns the new (pledge_id, email)
    pairs and how many messages were queued."""
    first: dict[tuple[int, str], NewSignature] = {}
    for sig in batch:  # the same address twice in a batch is signed once
        first.setdefault((sig.pledge_id, sig.email), sig)
    signatures = list(first.values())
    new: set[tuple[int, str]] = set()
    asked: Counter[tuple[int, int]] = Counter()
    messages: list[tuple[int, str, str]] = []
    for start in range(0, len(signatures), 100):
        chunk = signatures[start : start + 100]
        stored = conn.execute(
            f"INSERT INTO pending_signatures ({_SIGNATURE_COLUMNS}) SELECT * FROM (VALUES "
            + ", ".join([_SIGNATURE_PLACEHOLDERS] * len(chunk))
            + ") AS v WHERE NOT EXISTS (SELECT 1 FROM signatures s WHERE s.pledge_id = v.column1"
            " AND s.email = v.column3) ON CONFLICT (pledge_id, email) DO UPDATE SET sends = sends + 1"
            " WHERE sends < ? RETURNING id, pledge_id, email, sends, partner_id",
            [*(value for sig in chunk for value in _signature_values(sig)), confirm_sends],
        ).fetchall()
        for pending_id, pledge_id, email, sends, partner_id in stored:
            if sends == 1:
                new.add((pledge_id, email))
                asked[(pledge_id, partner_id or DIRECT)] += 1
            messages.append((pending_id, first[(pledge_id, email)].created_at, first[(pledge_id, email)].created_at))
    if messages:
        conn.executemany(
            "INSERT INTO outbox (kind, ref_id, created_at, next_attempt_at) VALUES ('confirm', ?, ?, ?)", messages
        )
    if asked:
        conn.executemany(_ASKED, [(*key, n) for key, n in asked.items()])
    return new, len(messages)


_ASKED = (
    "INSERT INTO confirmation_counts (pledge_id, partner_id, asked) VALUES (?, ?, ?)"
    " ON CONFLICT (pledge_id, partner_id) DO UPDATE SET asked = asked + excluded.asked"
)
_CONFIRMED = (
    "INSERT INTO confirmation_counts (pledge_id, partner_id, confirmed) VALUES (?, ?, 1)"
    " ON CONFLICT (pledge_id, partner_id) DO UPDATE SET confirmed = confirmed + 1"
)


def confirm_pending(conn: sqlite3.Connection, pending_id: int, now: str) -> ConfirmResult:
    """Count a pending signature in one transaction, through insert_counted as a batch does, and
    remember that its id was confirmed; "already" when it was, or when the address had signed."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        row = conn.execute(
            f"DELETE FROM pending_signatures WHERE id = ? RETURNING {_SIGNATURE_COLUMNS}", (pending_id,)
        ).fetchone()
        if row is None:
            marker = conn.execute("SELECT pledge_id FROM confirmed_pending WHERE id = ?", (pending_id,)).fetchone()
            conn.execute("COMMIT")
            return ConfirmResult("already", marker[0]) if marker else ConfirmResult("unknown", None)
        # Its confirmation emails have nothing left to confirm.
        conn.execute("DELETE FROM outbox WHERE ref_id = ? AND kind IN ('confirm', 'remind')", (pending_id,))
        signature = _signature_from_values(row)
        batch = insert_counted(conn, [signature], {signature.pledge_id}, now)
        signature_id = conn.execute(
            "SELECT id FROM signatures WHERE pledge_id = ? AND email = ?", (signature.pledge_id, signature.email)
        ).fetchone()[0]
        conn.execute(
            "INSERT INTO confirmed_pending (id, pledge_id, signature_id, confirmed_at) VALUES (?, ?, ?, ?)",
            (pending_id, signature.pledge_id, signature_id, now),
        )
        if batch.inserted:
            conn.execute(_CONFIRMED, (signature.pledge_id, signature.partner_id or DIRECT))
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    if batch.inserted:
        return ConfirmResult("confirmed", signature.pledge_id, batch)
    return ConfirmResult("already", signature.pledge_id)


async def day_counts(conn: aiosqlite.Connection, pledge_id: int) -> list[DayCount]:
    async with conn.execute(
        "SELECT day, partner_id, count FROM signature_days WHERE pledge_id = ? ORDER BY day, partner_id",
        (pledge_id,),
    ) as cursor:
        # One hop for every row: iterating would cross threads once per 64 rows.
        return [DayCount(row[0], row[1] or None, row[2]) for row in await cursor.fetchall()]


async def export_rows(
    conn: aiosqlite.Connection, pledge_id: int, chunk: int = 1000
) -> AsyncGenerator[tuple[object, ...], None]:
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


# A signature's source / utm_* tags as one text, to compare kept source counts with the rows.
_TAGS_KEY = " || '/' || ".join(ATTRIBUTION_PARAMS)

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
    # The staff area's kept counts: every kept row equals its rows (one GROUP BY over the
    # signatures, joined on the bucket's key), and each pledge's kept rows add up to its total,
    # so no signature is missing from them either.
    *(
        f"SELECT '{what}', k.key, k.kept, r.real FROM (SELECT {kept_key} AS key, {kept} AS kept FROM {table}) k"
        f" LEFT JOIN (SELECT {row_key} AS key, {real} AS real FROM signatures GROUP BY 1) r ON r.key = k.key"
        for what, table, kept_key, kept, row_key, real in (
            (
                "day",
                "signature_days",
                "pledge_id || '/' || partner_id || '/' || day",
                "count",
                "pledge_id || '/' || COALESCE(partner_id, 0) || '/' || substr(created_at, 1, 10)",
                "COUNT(*)",
            ),
            (
                "hour",
                "signature_hours",
                "pledge_id || '/' || partner_id || '/' || hour",
                "count",
                "pledge_id || '/' || COALESCE(partner_id, 0) || '/' || substr(created_at, 1, 13)",
                "COUNT(*)",
            ),
            (
                "minute",
                "signature_minutes",
                "pledge_id || '/' || minute",
                "count",
                "pledge_id || '/' || substr(created_at, 1, 16)",
                "COUNT(*)",
            ),
            (
                "occupation",
                "signature_occupations",
                "pledge_id || '/' || partner_id || '/' || occupation",
                "count",
                "pledge_id || '/' || COALESCE(partner_id, 0) || '/' || lower(trim(occupation))",
                "COUNT(*)",
            ),
            (
                "source",
                "signature_sources",
                "pledge_id || '/' || partner_id || '/' || " + _TAGS_KEY,
                "count",
                "pledge_id || '/' || COALESCE(partner_id, 0) || '/' || " + _TAGS_KEY,
                "COUNT(*)",
            ),
            (
                "partner totals",
                "partner_totals",
                "pledge_id || '/' || partner_id",
                "signatures || ' ' || opt_in_updates || ' ' || opt_in_partner || ' ' || first_at || ' ' || last_at",
                "pledge_id || '/' || COALESCE(partner_id, 0)",
                "COUNT(*) || ' ' || SUM(opt_in_updates != 0) || ' ' || SUM(opt_in_partner != 0) || ' '"
                " || MIN(created_at) || ' ' || MAX(created_at)",
            ),
        )
    ),
    *(
        f"SELECT '{what} of pledge', slug, signature_count,"
        f" (SELECT COALESCE(SUM(t.{column}), 0) FROM {table} t WHERE t.pledge_id = p.id) FROM pledges p"
        for what, table, column in (
            ("hours", "signature_hours", "count"),
            ("minutes", "signature_minutes", "count"),
            ("occupations", "signature_occupations", "count"),
            ("sources", "signature_sources", "count"),
            ("partner totals", "partner_totals", "signatures"),
        )
    ),
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
    """Every signature of one normalised email, across pledges (one index look-up per pledge):
    the counted ones, then those waiting for confirmation."""
    found = []
    for table, status in (("signatures", "counted"), ("pending_signatures", "pending")):
        async with conn.execute(
            f"SELECT {_PERSON_COLUMNS}, '{status}' AS status FROM pledges p"
            f" JOIN {table} s ON s.pledge_id = p.id AND s.email = ?"
            " LEFT JOIN partners pa ON pa.id = s.partner_id ORDER BY s.id",
            (email,),
        ) as cursor:
            found += [dict(row) async for row in cursor]
    return found


async def erase_signatures(conn: aiosqlite.Connection, email: str) -> int:
    """Delete one email's signatures everywhere, pending ones and every message about either
    included; every kept count falls in the same transaction.

    secure_delete overwrites the freed pages and the checkpoint empties the WAL, so the erased
    details are not left readable in the database files (backups keep their own copies).
    """
    async with conn.execute("SELECT id FROM pledges") as cursor:
        pledge_ids = [row[0] async for row in cursor]
    # One index look-up per pledge on the (pledge_id, email) guard, not a scan of every signature.
    where = " OR ".join(["(pledge_id = ? AND email = ?)"] * len(pledge_ids)) or "0"
    params = [value for pledge_id in pledge_ids for value in (pledge_id, email)]
    return await remove_signatures(conn, where, params, pending=True)


async def remove_signatures(
    conn: aiosqlite.Connection, where: str, params: Sequence[object], *, pending: bool = False
) -> int:
    """Delete the signatures `where` selects, and move every kept count down with them, in one
    transaction, with their queued webhooks: erasure and burst invalidation both end here. With
    `pending`, the pending signatures `where` selects go too, with their confirmation emails.
    Returns how many rows were removed."""
    await conn.execute("PRAGMA secure_delete = ON")
    async with transaction(conn):
        async with conn.execute(
            "DELETE FROM signatures WHERE " + where + " RETURNING id, pledge_id, partner_id,"
            " substr(created_at, 1, 10), organisation, " + _COUNTED_COLUMNS,
            tuple(params),
        ) as cursor:
            removed = [tuple(row) async for row in cursor]
        await _delete_messages(conn, "webhook", [row[0] for row in removed])
        erased = [row[1:] for row in removed]
        waiting: list[int] = []
        if pending:
            async with conn.execute(
                "DELETE FROM pending_signatures WHERE " + where + " RETURNING id", tuple(params)
            ) as cursor:
                waiting = [row[0] async for row in cursor]
            await _delete_messages(conn, "confirm", waiting)
        per_pledge = Counter(row[0] for row in erased)
        per_partner = Counter(row[1] for row in erased if row[1])
        per_day = Counter((row[0], row[1] or 0, row[2]) for row in erased)
        per_org = Counter((row[0], row[3]) for row in erased if row[3])
        await conn.executemany(
            "UPDATE pledges SET signature_count = signature_count - ? WHERE id = ?",
            [(n, pledge_id) for pledge_id, n in per_pledge.items()],
        )
        await conn.executemany(
            "UPDATE partners SET signature_count = signature_count - ? WHERE id = ?",
            [(n, partner_id) for partner_id, n in per_partner.items()],
        )
        await conn.executemany(
            "UPDATE signature_days SET count = count - ? WHERE pledge_id = ? AND partner_id = ? AND day = ?",
            [(n, *key) for key, n in per_day.items()],
        )
        await conn.executemany(
            "UPDATE organisations SET signatures = signatures - ? WHERE pledge_id = ? AND name_key = lower(?)",
            [(n, *key) for key, n in per_org.items()],
        )
        # Only signatures already folded are in the staff area's kept counts; the rest never will
        # be. A removal of the highest ids takes the mark down with them, so that the ids SQLite
        # hands out again are folded when they come.
        async with conn.execute("SELECT signature_id FROM kept_counts_folded") as cursor:
            (mark,) = await cursor.fetchone() or (0,)
        for sql, rows in _kept_count_decrements([row[5:] for row in removed if row[0] <= mark]):
            await conn.executemany(sql, rows)
        await conn.execute(
            "UPDATE kept_counts_folded"
            " SET signature_id = min(signature_id, (SELECT COALESCE(MAX(id), 0) FROM signatures))"
        )
        # A name that nobody stands behind any more is personal data too: forget it.
        await conn.execute("DELETE FROM organisations WHERE signatures <= 0")
        await conn.execute("DELETE FROM signature_days WHERE count <= 0")
        for table in ("signature_hours", "signature_minutes", "signature_occupations", "signature_sources"):
            await conn.execute(f"DELETE FROM {table} WHERE count <= 0")
        await conn.execute("DELETE FROM partner_totals WHERE signatures <= 0")
        # The first and last signature of a partner may have gone: read them again from the rows,
        # along an index (partner_id, created_at) or (pledge_id, created_at), never a count.
        for pledge_id, partner_id in {(row[4], row[5] or DIRECT) for row in erased}:
            await conn.execute(_REFRESH_FIRST_LAST[partner_id == DIRECT], {"pledge": pledge_id, "partner": partner_id})
    return len(erased) + len(waiting)


async def _delete_messages(conn: aiosqlite.Connection, kind: str, ref_ids: Sequence[int]) -> None:
    """Delete the queued messages about these rows: "webhook" for signatures, "confirm" for
    pending signatures (their reminders included)."""
    kinds = "('webhook')" if kind == "webhook" else "('confirm', 'remind')"
    for start in range(0, len(ref_ids), 500):
        chunk = ref_ids[start : start + 500]
        await conn.execute(
            f"DELETE FROM outbox WHERE kind IN {kinds} AND ref_id IN ({', '.join('?' * len(chunk))})", chunk
        )


async def is_empty(conn: aiosqlite.Connection) -> bool:
    for table in TABLES:
        async with conn.execute(f"SELECT 1 FROM {table} LIMIT 1") as cursor:  # names from TABLES only
            if await cursor.fetchone() is not None:
                return False
    return True


def _portable(kind: str, value: object) -> object:
    if value is None:
        return None
    if kind == "bool":
        return bool(value)
    if kind == "list":
        return list(json.loads(str(value)))
    return value


def _stored(kind: str, value: object) -> object:
    if value is None:
        return None
    if kind == "bool":
        return int(bool(value))
    if kind == "list":
        return json.dumps(list(value))  # type: ignore[call-overload]
    return value


async def read_table(
    conn: aiosqlite.Connection, table: str, chunk: int = 1000
) -> AsyncGenerator[list[dict[str, object]], None]:
    columns = TABLES[table]
    names = ", ".join(name for name, _ in columns)
    order = ", ".join(name for name, _ in columns[:3])
    async with conn.execute(f"SELECT {names} FROM {table} ORDER BY {order}") as cursor:
        while rows := await cursor.fetchmany(chunk):
            yield [{name: _portable(kind, row[i]) for i, (name, kind) in enumerate(columns)} for row in rows]


async def write_rows(conn: aiosqlite.Connection, table: str, rows: Sequence[dict[str, object]]) -> None:
    columns = TABLES[table]
    sql = f"INSERT INTO {table} ({', '.join(n for n, _ in columns)}) VALUES ({', '.join('?' * len(columns))})"
    async with transaction(conn):
        await conn.executemany(sql, [tuple(_stored(kind, row[name]) for name, kind in columns) for row in rows])
        if table == "signatures":
            # The kept counts are copied as they stand at the source, where they are complete.
            await conn.execute(MARK_ALL_FOLDED)


async def finish_copy(conn: aiosqlite.Connection) -> None:
    """After a copy: a pending id confirmed before the move (remembered in confirmed_pending, no
    longer in pending_signatures) is never handed out again, since an old link may name it.
    AUTOINCREMENT already keeps every table's next id past the ids copied in."""
    async with transaction(conn):
        async with conn.execute(
            "SELECT (SELECT max(id) FROM confirmed_pending), (SELECT seq FROM sqlite_sequence"
            " WHERE name = 'pending_signatures')"
        ) as cursor:
            confirmed, seq = await cursor.fetchone() or (None, None)
        if confirmed is None or (seq is not None and seq >= confirmed):
            return
        if seq is None:
            await conn.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('pending_signatures', ?)", (confirmed,))
        else:
            await conn.execute("UPDATE sqlite_sequence SET seq = ? WHERE name = 'pending_signatures'", (confirmed,))


# The staff area's kept counts ---------------------------------------------------------------

# The signature columns a removal gives back (DELETE … RETURNING) to take a signature out of the
# staff area's kept counts: (pledge_id, partner_id, created_at, occupation, opt_in_updates,
# opt_in_partner, *ATTRIBUTION_PARAMS).
_COUNTED_COLUMNS = "pledge_id, partner_id, created_at, occupation, opt_in_updates, opt_in_partner, " + ", ".join(
    ATTRIBUTION_PARAMS
)

_TAG_COLUMNS = ", ".join(ATTRIBUTION_PARAMS)
_FOLDED_ROWS = "FROM signatures WHERE id > :after AND id <= :upto"
#: Adds the signatures with ids in (:after, :upto] to the staff area's kept counts, aggregated by
#: SQLite itself; the keys are those of migration 0003 (occupation: lower(trim(x)), which is
#: store.occupation_key).
_FOLD = (
    "INSERT INTO signature_hours (pledge_id, hour, partner_id, count) SELECT pledge_id, substr(created_at, 1, 13),"
    f" COALESCE(partner_id, 0), COUNT(*) {_FOLDED_ROWS} GROUP BY 1, 2, 3"
    " ON CONFLICT (pledge_id, hour, partner_id) DO UPDATE SET count = count + excluded.count",
    "INSERT INTO signature_minutes (pledge_id, minute, count) SELECT pledge_id, substr(created_at, 1, 16), COUNT(*)"
    f" {_FOLDED_ROWS} GROUP BY 1, 2 ON CONFLICT (pledge_id, minute) DO UPDATE SET count = count + excluded.count",
    "INSERT INTO signature_occupations (pledge_id, partner_id, occupation, count) SELECT pledge_id,"
    f" COALESCE(partner_id, 0), lower(trim(occupation)), COUNT(*) {_FOLDED_ROWS} GROUP BY 1, 2, 3"
    " ON CONFLICT (pledge_id, partner_id, occupation) DO UPDATE SET count = count + excluded.count",
    f"INSERT INTO signature_sources (pledge_id, partner_id, {_TAG_COLUMNS}, count)"
    f" SELECT pledge_id, COALESCE(partner_id, 0), {_TAG_COLUMNS}, COUNT(*) {_FOLDED_ROWS}"
    f" GROUP BY 1, 2, 3, 4, 5, 6, 7, 8 ON CONFLICT (pledge_id, partner_id, {_TAG_COLUMNS})"
    " DO UPDATE SET count = count + excluded.count",
    "INSERT INTO partner_totals (pledge_id, partner_id, signatures, opt_in_updates, opt_in_partner, first_at, last_at)"
    " SELECT pledge_id, COALESCE(partner_id, 0), COUNT(*), SUM(opt_in_updates != 0), SUM(opt_in_partner != 0),"
    f" MIN(created_at), MAX(created_at) {_FOLDED_ROWS} GROUP BY 1, 2"
    " ON CONFLICT (pledge_id, partner_id) DO UPDATE SET"
    " signatures = signatures + excluded.signatures,"
    " opt_in_updates = opt_in_updates + excluded.opt_in_updates,"
    " opt_in_partner = opt_in_partner + excluded.opt_in_partner,"
    " first_at = min(first_at, excluded.first_at), last_at = max(last_at, excluded.last_at)",
)
FOLD_STATE = "SELECT signature_id, (SELECT COALESCE(MAX(id), 0) FROM signatures) FROM kept_counts_folded"
#: After bulk writes that rebuilt every kept count from the rows (REBUILD_KEPT_COUNTS, a copy):
#: every signature is folded.
MARK_ALL_FOLDED = "UPDATE kept_counts_folded SET signature_id = (SELECT COALESCE(MAX(id), 0) FROM signatures)"


def fold_kept_counts(conn: sqlite3.Connection) -> None:
    """Fold the signatures committed since the last fold into the staff area's kept counts, and
    move the mark past them, in one transaction.

    The signing commit leaves these five tables alone (it writes fewer pages, and SQLite does the
    adding up once for many batches); every read of them folds first (store.SQLiteStore), and the
    store folds every FOLD_SECONDS while signatures arrive. Nothing to fold costs one read and
    no lock. The counts can be rebuilt from the rows, so this transaction needs no flush of its
    own: a crash that loses it loses the mark with it, and the rows are folded again.
    """
    mark, top = conn.execute(FOLD_STATE).fetchone()
    if top <= mark:
        return
    with _unflushed(conn):
        mark, top = conn.execute(FOLD_STATE).fetchone()  # again, inside the write lock
        if top > mark:
            for sql in _FOLD:
                conn.execute(sql, {"after": mark, "upto": top})
            conn.execute("UPDATE kept_counts_folded SET signature_id = ?", (top,))


_DECREMENTS = (
    "UPDATE signature_hours SET count = count + ? WHERE pledge_id = ? AND hour = ? AND partner_id = ?",
    "UPDATE signature_minutes SET count = count + ? WHERE pledge_id = ? AND minute = ?",
    "UPDATE signature_occupations SET count = count + ? WHERE pledge_id = ? AND partner_id = ? AND occupation = ?",
    "UPDATE signature_sources SET count = count + ? WHERE pledge_id = ? AND partner_id = ? AND "
    + " AND ".join(f"{key} = ?" for key in ATTRIBUTION_PARAMS),
)
_TOTALS_DECREMENT = (
    "UPDATE partner_totals SET signatures = signatures + ?, opt_in_updates = opt_in_updates + ?,"
    " opt_in_partner = opt_in_partner + ? WHERE pledge_id = ? AND partner_id = ?"
)
# After a removal: (a partner's, the direct signatures') first and last signature, from the rows.
_REFRESH_FIRST_LAST = (
    "UPDATE partner_totals SET"
    " first_at = (SELECT MIN(created_at) FROM signatures WHERE partner_id = :partner),"
    " last_at = (SELECT MAX(created_at) FROM signatures WHERE partner_id = :partner)"
    " WHERE pledge_id = :pledge AND partner_id = :partner",
    "UPDATE partner_totals SET"
    " first_at = (SELECT created_at FROM signatures WHERE pledge_id = :pledge AND partner_id IS NULL"
    " ORDER BY created_at LIMIT 1),"
    " last_at = (SELECT created_at FROM signatures WHERE pledge_id = :pledge AND partner_id IS NULL"
    " ORDER BY created_at DESC LIMIT 1)"
    " WHERE pledge_id = :pledge AND partner_id = 0",
)


def _kept_count_decrements(rows: Sequence[Sequence[object]]) -> list[tuple[str, list[tuple[object, ...]]]]:
    """The statements (and their parameter rows) that take `rows` (folded signatures, in
    _COUNTED_COLUMNS order) out of the staff area's kept counts."""
    hours: Counter[tuple[object, ...]] = Counter()
    minutes: Counter[tuple[object, ...]] = Counter()
    occupations: Counter[tuple[object, ...]] = Counter()
    sources: Counter[tuple[object, ...]] = Counter()
    totals: Counter[tuple[object, ...]] = Counter()
    for pledge_id, partner_id, created_at, occupation, updates, partner_opt_in, *tags in rows:
        partner = partner_id or DIRECT
        at = str(created_at)
        hours[(pledge_id, at[:13], partner)] += 1
        minutes[(pledge_id, at[:16])] += 1
        occupations[(pledge_id, partner, occupation_key(str(occupation)))] += 1
        sources[(pledge_id, partner, *tags)] += 1
        totals[(pledge_id, partner, "signatures")] += 1
        totals[(pledge_id, partner, "updates")] += 1 if updates else 0
        totals[(pledge_id, partner, "partner")] += 1 if partner_opt_in else 0
    if not rows:
        return []
    pairs = {(pledge_id, partner) for pledge_id, partner, _ in totals}
    return [
        (_DECREMENTS[0], [(-n, *key) for key, n in hours.items()]),
        (_DECREMENTS[1], [(-n, *key) for key, n in minutes.items()]),
        (_DECREMENTS[2], [(-n, *key) for key, n in occupations.items()]),
        (_DECREMENTS[3], [(-n, *key) for key, n in sources.items()]),
        (
            _TOTALS_DECREMENT,
            [
                (-totals[(*pair, "signatures")], -totals[(*pair, "updates")], -totals[(*pair, "partner")], *pair)
                for pair in pairs
            ],
        ),
    ]


#: Rebuilds one pledge's staff-area kept counts from its rows (named parameter :p): for bulk
#: loads that write signatures without the writer (benchmarks/generate.py), as migration 0003
#: does for every pledge.
REBUILD_KEPT_COUNTS = (
    "DELETE FROM signature_hours WHERE pledge_id = :p",
    "INSERT INTO signature_hours (pledge_id, hour, partner_id, count) SELECT pledge_id, substr(created_at, 1, 13),"
    " COALESCE(partner_id, 0), COUNT(*) FROM signatures WHERE pledge_id = :p GROUP BY 1, 2, 3",
    "DELETE FROM signature_minutes WHERE pledge_id = :p",
    "INSERT INTO signature_minutes (pledge_id, minute, count) SELECT pledge_id, substr(created_at, 1, 16), COUNT(*)"
    " FROM signatures WHERE pledge_id = :p GROUP BY 1, 2",
    "DELETE FROM partner_totals WHERE pledge_id = :p",
    "INSERT INTO partner_totals (pledge_id, partner_id, signatures, opt_in_updates, opt_in_partner, first_at, last_at)"
    " SELECT pledge_id, COALESCE(partner_id, 0), COUNT(*), SUM(opt_in_updates != 0), SUM(opt_in_partner != 0),"
    " MIN(created_at), MAX(created_at) FROM signatures WHERE pledge_id = :p GROUP BY 1, 2",
    "DELETE FROM signature_occupations WHERE pledge_id = :p",
    "INSERT INTO signature_occupations (pledge_id, partner_id, occupation, count) SELECT pledge_id,"
    " COALESCE(partner_id, 0), lower(trim(occupation)), COUNT(*) FROM signatures WHERE pledge_id = :p"
    " GROUP BY 1, 2, 3",
    "DELETE FROM signature_sources WHERE pledge_id = :p",
    "INSERT INTO signature_sources (pledge_id, partner_id, "
    + ", ".join(ATTRIBUTION_PARAMS)
    + ", count) SELECT pledge_id, COALESCE(partner_id, 0), "
    + ", ".join(ATTRIBUTION_PARAMS)
    + ", COUNT(*) FROM signatures WHERE pledge_id = :p GROUP BY 1, 2, 3, 4, 5, 6, 7, 8",
)


async def hour_counts(conn: aiosqlite.Connection, pledge_id: int, since_hour: str) -> list[HourCount]:
    async with conn.execute(
        "SELECT hour, partner_id, count FROM signature_hours WHERE pledge_id = ? AND hour >= ?"
        " ORDER BY hour, partner_id",
        (pledge_id, since_hour),
    ) as cursor:
        return [HourCount(row[0], row[1] or None, row[2]) for row in await cursor.fetchall()]


async def minute_counts(conn: aiosqlite.Connection, pledge_id: int, since_minute: str) -> list[MinuteCount]:
    async with conn.execute(
        "SELECT minute, count FROM signature_minutes WHERE pledge_id = ? AND minute >= ? ORDER BY minute",
        (pledge_id, since_minute),
    ) as cursor:
        return [MinuteCount(row[0], row[1]) for row in await cursor.fetchall()]


async def partner_totals(conn: aiosqlite.Connection, pledge_id: int) -> list[PartnerTotals]:
    async with conn.execute(
        "SELECT partner_id, signatures, opt_in_updates, opt_in_partner, first_at, last_at FROM partner_totals"
        " WHERE pledge_id = ? ORDER BY partner_id",
        (pledge_id,),
    ) as cursor:
        return [PartnerTotals(row[0] or None, *row[1:]) for row in await cursor.fetchall()]


async def occupation_counts(
    conn: aiosqlite.Connection, pledge_id: int, partner_id: int | None = None
) -> list[OccupationCount]:
    sql = "SELECT occupation, SUM(count) AS n FROM signature_occupations WHERE pledge_id = ?"
    params: tuple[object, ...] = (pledge_id,)
    if partner_id is not None:
        sql += " AND partner_id = ?"
        params += (partner_id,)
    async with conn.execute(sql + " GROUP BY occupation HAVING n > 0 ORDER BY n DESC, occupation", params) as cursor:
        return [OccupationCount(row[0], row[1]) for row in await cursor.fetchall()]


async def source_counts(conn: aiosqlite.Connection, pledge_id: int) -> list[SourceCount]:
    async with conn.execute(
        "SELECT partner_id, "
        + ", ".join(ATTRIBUTION_PARAMS)
        + ", count FROM signature_sources WHERE pledge_id = ? ORDER BY count DESC, partner_id",
        (pledge_id,),
    ) as cursor:
        return [SourceCount(row[0] or None, tuple(row[1:-1]), row[-1]) for row in await cursor.fetchall()]


async def export_partner_rows(
    conn: aiosqlite.Connection, pledge_id: int, partner_id: int, opted_in_only: bool, chunk: int = 1000
) -> AsyncGenerator[tuple[object, ...], None]:
    """One partner's signatures (DIRECT: direct ones) in signing order, a chunk at a time."""
    sql = (
        "SELECT s.created_at, s.email, s.name, s.occupation, s.organisation,"
        " COALESCE(p.name, ''), s.origin, "
        + ", ".join(f"s.{key}" for key in ATTRIBUTION_PARAMS)
        + ", s.opt_in_updates, s.opt_in_partner"
        " FROM signatures s LEFT JOIN partners p ON p.id = s.partner_id WHERE s.pledge_id = ?"
    )
    params: tuple[object, ...] = (pledge_id,)
    if partner_id == DIRECT:
        sql += " AND s.partner_id IS NULL"
    else:
        sql += " AND s.partner_id = ?"
        params += (partner_id,)
    if opted_in_only:
        sql += " AND s.opt_in_partner != 0"
    async with conn.execute(sql + " ORDER BY s.id", params) as cursor:
        while rows := await cursor.fetchmany(chunk):
            for row in rows:
                yield tuple(row)


# Abuse: what one kind of burst groups signatures by, as SQL over the signatures table.
_BURST_VALUE = {
    "client": "client_mark",
    "domain": "substr(email, instr(email, '@') + 1)",
    "partner": "CAST(COALESCE(partner_id, 0) AS TEXT)",
}


def _hour_window(hour: str) -> tuple[str, str]:
    """['2026-11-30T10:00:00Z', '2026-11-30T10:59:59Z~'): every created_at in that UTC hour."""
    return f"{hour}:00:00Z", f"{hour}:59:59Z~"


async def bursts(
    conn: aiosqlite.Connection, pledge_id: int, since: str, until: str, kind: str, at_least: int
) -> list[Burst]:
    """Hours in which one value of `kind` brought `at_least` signatures, read along the
    (pledge_id, created_at) index over the window only."""
    if kind not in BURST_KINDS:
        raise ValueError(kind)
    value = _BURST_VALUE[kind]
    skip_unmarked = " AND client_mark != ''" if kind == "client" else ""
    async with conn.execute(
        f"SELECT substr(created_at, 1, 13) AS hour, {value} AS value, COUNT(*) AS n FROM signatures"
        f" WHERE pledge_id = ? AND created_at >= ? AND created_at < ?{skip_unmarked}"
        " GROUP BY 1, 2 HAVING n >= ? ORDER BY n DESC, hour DESC, value LIMIT 200",
        (pledge_id, since, until, at_least),
    ) as cursor:
        return [Burst(row[0], kind, row[1], row[2]) async for row in cursor]


def _match_where(match: SignatureMatch) -> tuple[str, list[object]]:
    if match.kind not in BURST_KINDS:
        raise ValueError(match.kind)
    start, end = _hour_window(match.hour)
    where = "pledge_id = ? AND created_at >= ? AND created_at < ? AND "
    params: list[object] = [match.pledge_id, start, end]
    if match.kind == "partner":
        if match.value in ("", str(DIRECT)):
            return where + "partner_id IS NULL", params
        return where + "partner_id = ?", [*params, int(match.value)]
    if match.kind == "client" and not match.value:
        return "0", []  # an unmarked signature is nobody's burst
    return where + _BURST_VALUE[match.kind] + " = ?", [*params, match.value]


async def count_matching(conn: aiosqlite.Connection, match: SignatureMatch) -> int:
    where, params = _match_where(match)
    async with conn.execute("SELECT COUNT(*) FROM signatures WHERE " + where, params) as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0


async def invalidate_signatures(conn: aiosqlite.Connection, match: SignatureMatch) -> int:
    where, params = _match_where(match)
    return await remove_signatures(conn, where, params)


# Pledges as staff edit them ------------------------------------------------------------------


async def pledges(conn: aiosqlite.Connection) -> list[Pledge]:
    async with conn.execute("SELECT * FROM pledges ORDER BY id DESC") as cursor:
        return [_pledge(row) async for row in cursor]


async def pledge_by_id(conn: aiosqlite.Connection, pledge_id: int) -> Pledge | None:
    async with conn.execute("SELECT * FROM pledges WHERE id = ?", (pledge_id,)) as cursor:
        row = await cursor.fetchone()
    return _pledge(row) if row else None


async def update_pledge(
    conn: aiosqlite.Connection,
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
    await conn.execute(
        "UPDATE pledges SET title = ?, statement_html = ?, goal = ?, privacy_url = ?, contact = ?,"
        " optional_fields = ?, closed_at = CASE WHEN ? IS NULL THEN NULL ELSE COALESCE(closed_at, ?) END,"
        " confirm_email = ? WHERE id = ?",
        (
            title,
            statement_html,
            goal,
            privacy_url,
            contact,
            ",".join(optional_fields),
            closed_at,
            closed_at,
            int(confirm_email),
            pledge_id,
        ),
    )
    pledge = await pledge_by_id(conn, pledge_id)
    assert pledge is not None
    return pledge


async def reinstate_partner(conn: aiosqlite.Connection, partner_id: int) -> Partner:
    await conn.execute("UPDATE partners SET revoked_at = NULL WHERE id = ?", (partner_id,))
    partner = await partner_by_id(conn, partner_id)
    assert partner is not None
    return partner


# Staff accounts and the audit log ----------------------------------------------------------


def _staff_user(row: sqlite3.Row) -> StaffUser:
    return StaffUser(
        row["id"], row["email"], row["role"], row["password_hash"], row["session_epoch"], row["created_at"]
    )


async def staff_users(conn: aiosqlite.Connection) -> list[StaffUser]:
    async with conn.execute("SELECT * FROM staff_users ORDER BY email") as cursor:
        return [_staff_user(row) async for row in cursor]


async def staff_user_by(conn: aiosqlite.Connection, column: str, value: object) -> StaffUser | None:
    assert column in ("id", "email")
    async with conn.execute(f"SELECT * FROM staff_users WHERE {column} = ?", (value,)) as cursor:
        row = await cursor.fetchone()
    return _staff_user(row) if row else None


async def insert_staff_user(
    conn: aiosqlite.Connection, *, email: str, role: str, password_hash: str, now: str
) -> StaffUser:
    cursor = await conn.execute(
        "INSERT INTO staff_users (email, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
        (email, role, password_hash, now),
    )
    user = await staff_user_by(conn, "id", cursor.lastrowid)
    assert user is not None
    return user


async def delete_staff_user(conn: aiosqlite.Connection, user_id: int) -> bool:
    cursor = await conn.execute("DELETE FROM staff_users WHERE id = ?", (user_id,))
    return cursor.rowcount > 0


async def update_staff_user(
    conn: aiosqlite.Connection, user_id: int, sql: str, params: tuple[object, ...]
) -> StaffUser:
    await conn.execute(f"UPDATE staff_users SET {sql} WHERE id = ?", (*params, user_id))
    user = await staff_user_by(conn, "id", user_id)
    if user is None:
        raise LookupError(user_id)
    return user


async def record_audit(
    conn: aiosqlite.Connection, *, at: str, actor: str, action: str, pledge: str, subject: str, detail: str
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (at, actor, action, pledge, subject, detail) VALUES (?, ?, ?, ?, ?, ?)",
        (at, actor, action, pledge, subject, detail),
    )


async def audit_entries(
    conn: aiosqlite.Connection,
    *,
    actor: str | None = None,
    action: str | None = None,
    pledge: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AuditEntry]:
    sql = "SELECT id, at, actor, action, pledge, subject, detail FROM audit_log WHERE 1 = 1"
    params: list[object] = []
    for column, value in (("actor", actor), ("action", action), ("pledge", pledge)):
        if value:
            sql += f" AND {column} = ?"
            params.append(value)
    if before_id is not None:
        sql += " AND id < ?"
        params.append(before_id)
    async with conn.execute(sql + " ORDER BY id DESC LIMIT ?", (*params, limit)) as cursor:
        return [AuditEntry(*row) async for row in cursor]


# Confirmed signatures ------------------------------------------------------------------------


async def pending_signature(conn: aiosqlite.Connection, pending_id: int) -> PendingSignature | None:
    async with conn.execute(
        f"SELECT {_SIGNATURE_COLUMNS}, id, sends, reminded FROM pending_signatures WHERE id = ?", (pending_id,)
    ) as cursor:
        row = await cursor.fetchone()
    if row is None:
        return None
    return PendingSignature(row["id"], _signature_from_values(row, pending=True), row["sends"], bool(row["reminded"]))


async def signature_by_id(conn: aiosqlite.Connection, signature_id: int) -> NewSignature | None:
    async with conn.execute(f"SELECT {_SIGNATURE_COLUMNS} FROM signatures WHERE id = ?", (signature_id,)) as cursor:
        row = await cursor.fetchone()
    return _signature_from_values(row) if row else None


async def queue_reminders(conn: aiosqlite.Connection, signed_before: str, now: str) -> int:
    async with transaction(conn):
        async with conn.execute(
            "UPDATE pending_signatures SET reminded = 1 WHERE created_at < ? AND reminded = 0 RETURNING id",
            (signed_before,),
        ) as cursor:
            reminded = [row[0] async for row in cursor]
        await conn.executemany(
            "INSERT INTO outbox (kind, ref_id, created_at, next_attempt_at) VALUES ('remind', ?, ?, ?)",
            [(pending_id, now, now) for pending_id in reminded],
        )
    return len(reminded)


async def purge_pending(conn: aiosqlite.Connection, signed_before: str) -> int:
    # Unconfirmed details are personal data kept only for the retention period: overwrite them.
    await conn.execute("PRAGMA secure_delete = ON")
    async with transaction(conn):
        async with conn.execute(
            "DELETE FROM pending_signatures WHERE created_at < ? RETURNING id", (signed_before,)
        ) as cursor:
            purged = [row[0] async for row in cursor]
        await _delete_messages(conn, "confirm", purged)
        await conn.execute("DELETE FROM confirmed_pending WHERE confirmed_at < ?", (signed_before,))
    return len(purged)


async def confirmation_counts(conn: aiosqlite.Connection, pledge_id: int) -> dict[int, tuple[int, int]]:
    async with conn.execute(
        "SELECT partner_id, asked, confirmed FROM confirmation_counts WHERE pledge_id = ?", (pledge_id,)
    ) as cursor:
        return {row[0]: (row[1], row[2]) async for row in cursor}


async def pending_counts(conn: aiosqlite.Connection, pledge_id: int) -> dict[int, int]:
    async with conn.execute(
        "SELECT COALESCE(partner_id, 0), COUNT(*) FROM pending_signatures WHERE pledge_id = ? GROUP BY 1",
        (pledge_id,),
    ) as cursor:
        return {row[0]: row[1] for row in await cursor.fetchall()}


# Partner webhooks ----------------------------------------------------------------------------


async def set_partner_webhook(
    conn: aiosqlite.Connection, partner_id: int, url: str | None, secret: str | None
) -> Partner:
    await conn.execute(
        "UPDATE partners SET webhook_url = ?, webhook_secret = ? WHERE id = ?",
        (url, secret if url is not None else None, partner_id),
    )
    partner = await partner_by_id(conn, partner_id)
    assert partner is not None
    return partner


async def partner_webhook(conn: aiosqlite.Connection, partner_id: int) -> tuple[str, str] | None:
    async with conn.execute("SELECT webhook_url, webhook_secret FROM partners WHERE id = ?", (partner_id,)) as cursor:
        row = await cursor.fetchone()
    if row is None or row[0] is None:
        return None
    return row[0], row[1] or ""


# The outbox ----------------------------------------------------------------------------------

_OUTBOX_COLUMNS = "id, kind, ref_id, partner_id, created_at, attempts, next_attempt_at, last_error, dead"


def _message(row: sqlite3.Row) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        kind=row["kind"],
        ref_id=row["ref_id"],
        partner_id=row["partner_id"],
        created_at=row["created_at"],
        attempts=row["attempts"],
        next_attempt_at=row["next_attempt_at"],
        last_error=row["last_error"],
        dead=bool(row["dead"]),
    )


@contextlib.contextmanager
def _unflushed(conn: sqlite3.Connection) -> Iterator[None]:
    """One write transaction on the writer's connection whose commit does not wait for the disk
    (synchronous=NORMAL): in WAL mode its pages reach the disk with the next fsynced commit (the
    next batch of signatures) or a checkpoint. For what a crash may lose harmlessly: the outbox's
    bookkeeping (Store.claim_outbox says why) and the kept counts' fold (fold_kept_counts); the
    connection is back to FULL afterwards, whatever happens."""
    conn.execute("PRAGMA synchronous = NORMAL")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute("PRAGMA synchronous = FULL")


def claim_outbox(conn: sqlite3.Connection, now: str, lease_until: str, limit: int) -> list[OutboxMessage]:
    """Lease due messages in one write transaction: another process's claim waits for it, then
    finds them leased. The lease's end is also their next attempt, so the due index skips them."""
    with _unflushed(conn):
        rows = conn.execute(
            "UPDATE outbox SET leased_until = ?1, next_attempt_at = ?1 WHERE id IN (SELECT id FROM outbox"
            " WHERE dead = 0 AND next_attempt_at <= ?2 AND (leased_until IS NULL OR leased_until <= ?2)"
            f" ORDER BY next_attempt_at, id LIMIT ?3) RETURNING {_OUTBOX_COLUMNS}",
            (lease_until, now, limit),
        ).fetchall()
    # The writer's connection gives plain tuples, in _OUTBOX_COLUMNS order.
    claimed = [
        OutboxMessage(
            id=row[0],
            kind=row[1],
            ref_id=row[2],
            partner_id=row[3],
            created_at=row[4],
            attempts=row[5],
            next_attempt_at=row[6],
            last_error=row[7],
            dead=bool(row[8]),
        )
        for row in rows
    ]
    return sorted(claimed, key=lambda message: message.id)


def outbox_sent(conn: sqlite3.Connection, message_ids: Sequence[int]) -> None:
    with _unflushed(conn):
        conn.executemany("DELETE FROM outbox WHERE id = ?", [(message_id,) for message_id in message_ids])


def outbox_failed(conn: sqlite3.Connection, message_id: int, error: str, retry_at: str | None) -> None:
    with _unflushed(conn):
        conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?1, leased_until = NULL,"
            " next_attempt_at = COALESCE(?2, next_attempt_at), dead = (?2 IS NULL) WHERE id = ?3",
            (error, retry_at, message_id),
        )


async def outbox_message(conn: aiosqlite.Connection, message_id: int) -> OutboxMessage | None:
    async with conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE id = ?", (message_id,)) as cursor:
        row = await cursor.fetchone()
    return _message(row) if row is not None else None


async def outbox_messages(conn: aiosqlite.Connection, dead_only: bool, limit: int) -> list[OutboxMessage]:
    where = " WHERE dead = 1" if dead_only else ""
    async with conn.execute(f"SELECT {_OUTBOX_COLUMNS} FROM outbox{where} ORDER BY id LIMIT ?", (limit,)) as cursor:
        return [_message(row) for row in await cursor.fetchall()]


async def outbox_retry(conn: aiosqlite.Connection, message_id: int | None, now: str) -> int:
    sql = "UPDATE outbox SET dead = 0, attempts = 0, next_attempt_at = ?, leased_until = NULL WHERE dead = 1"
    params: tuple[object, ...] = (now,)
    if message_id is not None:
        sql += " AND id = ?"
        params += (message_id,)
    cursor = await conn.execute(sql, params)
    return cursor.rowcount


async def outbox_discard(conn: aiosqlite.Connection, message_id: int) -> bool:
    cursor = await conn.execute("DELETE FROM outbox WHERE id = ?", (message_id,))
    return cursor.rowcount > 0
