"""What every engine promises the staff area beyond tests/storage/test_staff_store.py: migration
0003 gives signatures stored before it the same kept counts as the writer would have, occupation
keys fold ASCII letters only and order as bytes, an hour's window is exactly that hour, a campaign
with staff data survives a copy through another database, writes racing removals leave every
kept count equal to the rows, and the integrity check names each kept count that drifts."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.engines import fresh_postgres
from tests.storage.test_staff_store import Run, at
from tests.storage.test_store_contract import a_partner, a_pledge, signature
from widget_server.errors import NotFound
from widget_server.services.moving import copy_everything
from widget_server.storage.engines import open_store
from widget_server.storage.postgres import store as postgres_store
from widget_server.storage.sqlite import db as sqlite_db
from widget_server.storage.store import DIRECT, TABLES, SignatureMatch, Store

# Signatures as (email, partner: 0 none / 1 / 2, created_at, occupation, opt_in_updates,
# opt_in_partner, source, utm_source): across hours, minutes and two days, with occupations that
# only ASCII folding groups (Ä is no ASCII letter: "ÄRZTIN" and "Ärztin" are one, "ärztin" another).
ROWS = [
    ("a@x.org", 1, at(10, 1), "Nurse ", True, False, "news", ""),
    ("b@x.org", 1, at(10, 1, 30), "NURSE", False, True, "news", ""),
    ("c@x.org", 2, at(10, 59, 59), " ÄRZTIN", False, False, "", "fb"),
    ("d@x.org", 2, at(11, 0), "Ärztin", True, True, "", "fb"),
    ("e@x.org", 0, at(11, 0, 1), "ärztin", False, False, "", ""),
    ("f@x.org", 0, at(23, 59, 59, day=29), "", True, False, "", ""),
    ("g@x.org", 1, at(0, 0, 0, day=29), "Zoo keeper", False, False, "", ""),
]


def _dashboard(store: Store) -> Any:
    async def read(pledge_id: int) -> dict[str, Any]:
        return {
            "hours": await store.hour_counts(pledge_id, ""),
            "minutes": await store.minute_counts(pledge_id, ""),
            "totals": await store.partner_totals(pledge_id),
            "occupations": await store.occupation_counts(pledge_id),
            "direct_occupations": await store.occupation_counts(pledge_id, DIRECT),
            "sources": sorted((s.partner_id or 0, s.tags, s.count) for s in await store.source_counts(pledge_id)),
            "days": await store.day_counts(pledge_id),
            "counts": await store.counts(pledge_id),
            "problems": await store.integrity(),
        }

    return read


async def _written(url: str) -> dict[str, Any]:
    """ROWS through the writer's path (write_signatures) into a fresh database."""
    async with open_store(url) as store:
        pledge = await a_pledge(store)
        partners = {1: await a_partner(store, pledge, "Riverside"), 2: await a_partner(store, pledge, "Hill")}
        await store.write_signatures(
            [
                signature(
                    pledge,
                    email,
                    partners.get(partner),
                    created_at=created,
                    occupation=occupation,
                    opt_in_updates=updates,
                    opt_in_partner=partner_opt_in,
                    attribution={"source": source, "utm_source": utm_source},
                )
                for email, partner, created, occupation, updates, partner_opt_in, source, utm_source in ROWS
            ]
        )
        return dict(await _dashboard(store)(pledge.id))


_SETUP = (
    "INSERT INTO pledges (slug, title, statement_html, goal, created_at)"
    " VALUES ('data-firewall', 'T', '<p>S</p>', 100, {t})",
    "INSERT INTO partners (pledge_id, name, origins, created_at) VALUES (1, 'Riverside', {o}, {t})",
    "INSERT INTO partners (pledge_id, name, origins, created_at) VALUES (1, 'Hill', {o}, {t})",
)
_SIGNATURE = (
    "INSERT INTO signatures (pledge_id, partner_id, email, name, occupation, opt_in_updates, opt_in_partner,"
    " source, utm_source, created_at) VALUES (1, {p}, {p}, 'Ana', {p}, {p}, {p}, {p}, {p}, {t})"
)
# The counts that migrations 0001 and 0002 keep, as the writer of that time kept them.
_COUNTS = (
    "UPDATE pledges SET signature_count = (SELECT count(*) FROM signatures)",
    "UPDATE partners SET signature_count = (SELECT count(*) FROM signatures s WHERE s.partner_id = partners.id)",
    "INSERT INTO signature_days (pledge_id, partner_id, day, count)"
    " SELECT pledge_id, COALESCE(partner_id, 0), {day}, count(*) FROM signatures GROUP BY 1, 2, 3",
)


def _values(row: tuple[Any, ...]) -> tuple[Any, ...]:
    email, partner, created, occupation, updates, partner_opt_in, source, utm_source = row
    return (partner or None, email, occupation, updates, partner_opt_in, source, utm_source, created)


async def _stored_at_version_2(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """ROWS stored by raw SQL into a database that has migrations 0001–0002 only."""
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///") :])
        real = sqlite_db.migrations()
        monkeypatch.setattr(sqlite_db, "migrations", lambda: real[:2])
        assert sqlite_db.migrate(path) == 2
        conn = sqlite3.connect(path)
        with conn:
            for sql in _SETUP:
                conn.execute(sql.format(t="'2026-11-01T00:00:00Z'", o="'[\"https://a.example\"]'"))
            for row in ROWS:
                conn.execute(_SIGNATURE.format(p="?", t="?"), _values(row))
            for sql in _COUNTS:
                conn.execute(sql.format(day="substr(created_at, 1, 10)"))
        conn.close()
        return
    real = postgres_store.migrations()
    monkeypatch.setattr(postgres_store, "migrations", lambda: real[:2])
    async with open_store(url) as store:
        assert await store.migrate() == 2
    conn = await asyncpg.connect(url)
    try:
        async with conn.transaction():
            for sql in _SETUP:
                await conn.execute(sql.format(t="'2026-11-01T00:00:00Z'", o="'{https://a.example}'"))
            insert = _SIGNATURE.replace("{p}", "${}").replace("{t}", "${}::text::timestamptz").format(*range(1, 9))
            await conn.executemany(insert, [_values(row) for row in ROWS])
            for sql in _COUNTS:
                await conn.execute(sql.format(day="(created_at AT TIME ZONE 'UTC')::date"))
    finally:
        await conn.close()


@contextlib.contextmanager
def _another(store_url: str, tmp_path: Path, name: str) -> Iterator[str]:
    """A second fresh, empty database of the same engine as `store_url`."""
    if store_url.startswith("sqlite:///"):
        yield f"sqlite:///{tmp_path / name}"
    else:
        with fresh_postgres() as url:
            yield url


def test_migration_0003_gives_older_signatures_the_writers_kept_counts(
    store_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asyncio.run(_stored_at_version_2(store_url, monkeypatch))
    monkeypatch.undo()

    async def migrated() -> dict[str, Any]:
        async with open_store(store_url) as store:  # migrates 0003
            pledge = await store.pledge_by_slug("data-firewall")
            assert pledge is not None
            assert (pledge.closed, pledge.optional_fields) == (False, ("occupation", "organisation"))
            return dict(await _dashboard(store)(pledge.id))

    found = asyncio.run(migrated())
    with _another(store_url, tmp_path, "written.sqlite3") as other:
        expected = asyncio.run(_written(other))
    assert found["problems"] == [] and found["counts"] == (7, {1: 3, 2: 2})
    assert found == expected


def test_occupations_fold_ascii_letters_only_and_ties_order_as_bytes(store_url: str) -> None:
    found = asyncio.run(_written(store_url))
    assert [(o.occupation, o.count) for o in found["occupations"]] == [
        ("nurse", 2),
        ("Ärztin", 2),
        ("", 1),
        ("zoo keeper", 1),
        ("ärztin", 1),
    ]
    assert [(o.occupation, o.count) for o in found["direct_occupations"]] == [("", 1), ("ärztin", 1)]
    assert found["problems"] == []


def test_hours_and_minutes_are_utc_text_keys_read_from_a_key_on(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        times = [at(9, 59, 59), at(10, 0), at(10, 7, 1), at(10, 7, 59)]
        await store.write_signatures([signature(pledge, f"s{i}@x.org", created_at=t) for i, t in enumerate(times)])
        return (
            await store.hour_counts(pledge.id, "2026-11-30T10"),
            await store.minute_counts(pledge.id, "2026-11-30T10:00"),
            await store.minute_counts(pledge.id, "2026-11-30T10:01"),
        )

    hours, minutes, later = with_store(go)
    assert [(h.hour, h.partner_id, h.count) for h in hours] == [("2026-11-30T10", None, 3)]
    assert [(m.minute, m.count) for m in minutes] == [("2026-11-30T10:00", 1), ("2026-11-30T10:07", 2)]
    assert [(m.minute, m.count) for m in later] == [("2026-11-30T10:07", 2)]


def test_an_hours_window_holds_its_last_second_and_not_the_next_hour(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await store.write_signatures(
            [
                signature(pledge, "a@x.org", created_at=at(9, 59, 59), client_mark="m"),
                signature(pledge, "b@x.org", created_at=at(10, 0), client_mark="m"),
                signature(pledge, "c@x.org", created_at=at(10, 59, 59), client_mark="m"),
                signature(pledge, "d@x.org", created_at=at(11, 0), client_mark="m"),
            ]
        )
        match = SignatureMatch(pledge.id, "2026-11-30T10", "client", "m")
        bursts = await store.bursts(pledge.id, at(10), at(11), "client", 1)
        # A text that is no hour at all (the abuse form's pattern lets this one through) holds nothing.
        impossible = await store.count_matching(SignatureMatch(pledge.id, "2026-13-45T99", "client", "m"))
        preview = await store.count_matching(match)
        removed = await store.invalidate_signatures(match)
        left = await store.bursts(pledge.id, at(0), at(23), "client", 1)
        return bursts, impossible, preview, removed, left, await store.integrity()

    bursts, impossible, preview, removed, left, problems = with_store(go)
    assert [(b.hour, b.value, b.count) for b in bursts] == [("2026-11-30T10", "m", 2)]
    assert (impossible, preview, removed) == (0, 2, 2)
    assert [(b.hour, b.count) for b in left] == [("2026-11-30T11", 1), ("2026-11-30T09", 1)]
    assert problems == []


def test_closing_keeps_the_first_time_and_a_missing_account_is_not_found(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        for closed_at in (at(1), at(2)):
            await store.update_pledge(
                pledge.id,
                title="T",
                statement_html="<p>S</p>",
                goal=None,
                privacy_url=None,
                contact=None,
                optional_fields=(),
                closed_at=closed_at,
            )
        async with store.read_table("pledges") as chunks:
            rows = [row async for chunk in chunks for row in chunk]
        missing = []
        for change in (
            store.set_staff_password(404, "h"),
            store.end_staff_sessions(404),
            store.set_staff_role(404, "viewer"),
        ):
            with pytest.raises(NotFound):
                await change
            missing.append(await store.staff_user_by_id(404))
        return rows, missing

    rows, missing = with_store(go)
    assert [row["closed_at"] for row in rows] == [at(1)]
    assert missing == [None, None, None]


async def _staff_campaign(store: Store) -> None:
    """Every table holding rows: a closed pledge, partners, marked signatures, an organisation,
    an erasure and an invalidation behind it, accounts and audit entries, pending and confirmed
    signatures, a partner webhook and queued messages (one of them dead)."""
    pledge = await a_pledge(store)
    await a_pledge(store, "second")
    river = await a_partner(store, pledge, "Riverside")
    hill = await a_partner(store, pledge, "Hill")
    await store.set_partner_webhook(hill.id, "https://hill.example/hook", "whsec_aGlsbA==")
    await store.write_signatures(
        [signature(pledge, "hooked@x.org", hill, opt_in_partner=True, created_at=at(9))]
        + [
            signature(pledge, f"w{i}@x.org", hill, opt_in_partner=True, created_at=at(9, i), pending=True)
            for i in range(3)
        ]
    )
    await store.confirm_pending(3, at(10))
    await store.queue_reminders(at(9, 1), now=at(10))
    [dead, *_] = await store.claim_outbox(at(11), at(12), 1)
    await store.outbox_failed(dead.id, "The receiver answered 410.", None)
    await store.write_signatures(
        [
            signature(
                pledge,
                f"s{i}@x.org",
                river if i % 3 else None,
                created_at=at(i % 24, i % 60, day=28 + i % 3),
                occupation=("Nurse", " ÄRZTIN", "")[i % 3],
                organisation="Hill School" if i % 5 == 0 else "",
                opt_in_updates=i % 2 == 0,
                opt_in_partner=i % 4 == 1,
                client_mark=f"m{i % 2}",
                attribution={"source": "news" if i % 2 else "", "utm_medium": "email"},
            )
            for i in range(60)
        ]
    )
    await store.erase_signatures("s7@x.org")
    await store.invalidate_signatures(SignatureMatch(pledge.id, "2026-11-29T01", "client", "m1"))
    await store.set_organisation_status(pledge.id, "hill school", "approved", at(3))
    await store.update_pledge(
        pledge.id,
        title="T",
        statement_html="<p>S</p>",
        goal=5,
        privacy_url=None,
        contact="0800",
        optional_fields=("occupation",),
        closed_at=at(4),
        confirm_email=True,
    )
    await store.revoke_partner(river.id, at(5))
    ana = await store.insert_staff_user(email="ana@c.org", role="owner", password_hash="h1", now=at(6))
    await store.insert_staff_user(email="bo@c.org", role="viewer", password_hash="h2", now=at(6))
    await store.set_staff_password(ana.id, "h3")
    for i in range(3):
        await store.record_audit(at=at(7, i), actor="ana@c.org", action="login", pledge="", subject=f"s{i}", detail="d")


async def _everything(url: str) -> dict[str, list[dict[str, object]]]:
    found: dict[str, list[dict[str, object]]] = {}
    async with open_store(url) as store:
        for table in TABLES:
            async with store.read_table(table) as chunks:
                found[table] = [row async for chunk in chunks for row in chunk]
    return found


def test_a_campaign_with_staff_data_survives_a_copy_through_another_database(store_url: str, tmp_path: Path) -> None:
    async def fill() -> None:
        async with open_store(store_url) as store:
            await _staff_campaign(store)

    asyncio.run(fill())
    before = asyncio.run(_everything(store_url))
    assert all(before[table] for table in TABLES), [table for table in TABLES if not before[table]]

    async def copy(source: str, target: str) -> None:
        async with open_store(source) as a, open_store(target) as b:
            await copy_everything(a, b)

    through = f"sqlite:///{tmp_path / 'through.sqlite3'}"
    asyncio.run(copy(store_url, through))
    with _another(store_url, tmp_path, "back.sqlite3") as back:
        asyncio.run(copy(through, back))
        assert asyncio.run(_everything(through)) == before
        assert asyncio.run(_everything(back)) == before

        async def after_the_move() -> tuple[Any, ...]:
            async with open_store(back) as store:
                pledge = await a_pledge(store, "third")
                user = await store.insert_staff_user(email="cy@c.org", role="viewer", password_hash="h", now=at(8))
                await store.record_audit(at=at(8), actor="cy@c.org", action="login", pledge="", subject="", detail="")
                entries = await store.audit_entries(limit=1)
                await store.write_signatures([signature(pledge, "new@x.org", pending=True, created_at=at(12))])
                queued = await store.outbox_messages()
                waiting = [await store.pending_signature(i) for i in range(1, 6)]
                return (
                    pledge.id,
                    user.id,
                    entries[0].id,
                    queued[-1].id,
                    [w.id for w in waiting if w],
                    await store.integrity(),
                )

        pledge_id, user_id, entry_id, message_id, waiting, problems = asyncio.run(after_the_move())
    # New rows take ids past the copied ones, in every table with an id; a pending id once
    # confirmed (3, the highest copied) is never handed out again.
    assert (pledge_id, user_id, entry_id) == (3, 3, 4)
    assert message_id > 5 and waiting == [1, 2, 4]
    assert problems == []


def test_writes_racing_removals_leave_every_kept_count_equal_to_the_rows(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)

        async def batch(n: int) -> None:
            await store.write_signatures(
                [
                    signature(
                        pledge,
                        f"p{n}-{i}@x.org",
                        partner if i % 2 else None,
                        created_at=at(10, i % 60),
                        occupation=f"Job {i % 3}",
                        client_mark=f"m{i % 4}",
                    )
                    for i in range(20)
                ]
            )

        async def removals() -> int:
            # One staff action after another, as one person works, while the writer commits.
            removed = 0
            for i in range(10):
                removed += await store.erase_signatures(f"p0-{i}@x.org")
            return removed + await store.invalidate_signatures(
                SignatureMatch(pledge.id, "2026-11-30T10", "client", "m3")
            )

        await batch(0)
        *_, removed = await asyncio.gather(*(batch(n) for n in range(1, 6)), removals())
        async with store.read_table("signatures") as chunks:
            rows = sum([len(chunk) async for chunk in chunks])
        return removed, await store.counts(pledge.id), rows, await store.integrity()

    removed, (total, _), rows, problems = with_store(go)
    assert problems == []
    assert total == rows == 120 - removed and removed >= 13  # 10 erased, then batch 0's other m3 marks at least


def test_the_copy_table_list_names_every_column_of_both_engines(store_url: str) -> None:
    async def columns() -> dict[str, set[str]]:
        if store_url.startswith("sqlite:///"):
            conn = sqlite3.connect(store_url[len("sqlite:///") :])
            try:
                names = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
                return {name: {row[1] for row in conn.execute(f"PRAGMA table_info({name})")} for name in names}
            finally:
                conn.close()
        pg = await asyncpg.connect(store_url)
        try:
            rows = await pg.fetch(
                "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'public'"
            )
        finally:
            await pg.close()
        found: dict[str, set[str]] = {}
        for row in rows:
            found.setdefault(row[0], set()).add(row[1])
        return found

    async def migrated() -> None:
        async with open_store(store_url):
            pass

    asyncio.run(migrated())
    schema = asyncio.run(columns())
    schema.pop("schema_migrations", None)
    schema.pop("sqlite_sequence", None)
    # The SQLite engine's own bookkeeping (how far its kept counts are folded), set by a copy.
    schema.pop("kept_counts_folded", None)
    assert {table: {name for name, _ in kinds} for table, kinds in TABLES.items()} == schema
    assert list(TABLES)[:3] == ["pledges", "partners", "signatures"]


async def _execute(url: str, sql: str) -> None:
    """One statement, the same text on either engine, past the Store (as a bug or a hand would)."""
    if url.startswith("sqlite:///"):
        conn = sqlite3.connect(url[len("sqlite:///") :])
        with conn:
            conn.execute(sql)
        conn.close()
        return
    pg = await asyncpg.connect(url)
    try:
        await pg.execute(sql)
    finally:
        await pg.close()


def test_integrity_names_each_kept_count_that_drifted_from_the_rows(store_url: str) -> None:
    asyncio.run(_written(store_url))
    drifts = {
        "day": "UPDATE signature_days SET count = count + 1 WHERE partner_id = 2",
        "hour": "UPDATE signature_hours SET count = count + 1 WHERE partner_id = 2",
        "minute": "UPDATE signature_minutes SET count = count + 1 WHERE minute = '2026-11-30T11:00'",
        "occupation": "UPDATE signature_occupations SET count = count + 1 WHERE occupation = 'nurse'",
        "source": "UPDATE signature_sources SET count = count + 1 WHERE utm_source = 'fb'",
        "partner totals": "UPDATE partner_totals SET opt_in_partner = opt_in_partner + 1 WHERE partner_id = 1",
    }

    async def problems() -> list[str]:
        async with open_store(store_url) as store:
            return await store.integrity()

    assert asyncio.run(problems()) == []
    for what, drift in drifts.items():
        asyncio.run(_execute(store_url, drift))
        found = asyncio.run(problems())
        assert any(problem.startswith(what + " 1/") for problem in found), (what, found)
        asyncio.run(_execute(store_url, drift.replace("+ 1", "- 1")))
    assert asyncio.run(problems()) == []
    # A kept row that stands for no signature at all is a drift too.
    asyncio.run(
        _execute(
            store_url, "INSERT INTO signature_minutes (pledge_id, minute, count) VALUES (1, '2020-01-01T00:00', 1)"
        )
    )
    assert any(problem.startswith("minute 1/2020-01-01T00:00") for problem in asyncio.run(problems()))
