"""What every engine promises the staff area (storage/store.py), through the interface only:
kept counts per hour, minute, partner, occupation and source that move with every write and
removal, pledge settings, partners switched back on, bursts, accounts and the audit log."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.storage.test_store_contract import a_partner, a_pledge, signature
from widget_server.errors import Conflict
from widget_server.storage.store import DIRECT, SignatureMatch, Store, occupation_key

Run = Callable[[Callable[[Store], Awaitable[Any]]], Any]


def at(hour: int, minute: int = 0, second: int = 0, day: int = 30) -> str:
    return f"2026-11-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}Z"


async def _signed(store: Store) -> tuple[Any, Any, Any]:
    """A pledge with two partners and ten signatures over three hours and two days."""
    pledge = await a_pledge(store)
    river = await a_partner(store, pledge, "Riverside")
    hill = await a_partner(store, pledge, "Hill")
    batch = [
        signature(pledge, "a@x.org", river, created_at=at(10, 1), occupation="Nurse ", opt_in_partner=True),
        signature(pledge, "b@x.org", river, created_at=at(10, 2), occupation="nurse", opt_in_updates=True),
        signature(pledge, "c@x.org", river, created_at=at(11, 5), occupation="NURSE", attribution={"source": "news"}),
        signature(pledge, "d@y.org", hill, created_at=at(11, 5, 30), occupation="Teacher"),
        signature(pledge, "e@y.org", hill, created_at=at(11, 59, 59), attribution={"utm_source": "fb"}),
        signature(pledge, "f@y.org", None, created_at=at(9, 0), occupation="doctor", opt_in_updates=True),
        signature(pledge, "g@z.org", None, created_at=at(23, 59, 59, day=29)),
        signature(pledge, "h@z.org", river, created_at=at(0, 0, 0, day=29), client_mark="m1"),
        signature(pledge, "i@z.org", river, created_at=at(10, 30), client_mark="m1"),
        signature(pledge, "j@z.org", river, created_at=at(10, 31), client_mark="m1"),
    ]
    await store.write_signatures(batch)
    return pledge, river, hill


def test_occupations_are_kept_under_one_key_however_typed() -> None:
    assert occupation_key("Nurse ") == occupation_key(" NURSE") == occupation_key("nurse") == "nurse"
    assert occupation_key("Social Worker") == "social worker"


def test_every_kept_count_moves_with_the_batch(with_store: Run) -> None:
    async def go(store: Store) -> dict[str, Any]:
        pledge, river, hill = await _signed(store)
        return {
            "ids": (river.id, hill.id),
            "hours": [(h.hour, h.partner_id, h.count) for h in await store.hour_counts(pledge.id, "2026-11-30T10")],
            "minutes": [(m.minute, m.count) for m in await store.minute_counts(pledge.id, "2026-11-30T11:00")],
            "totals": await store.partner_totals(pledge.id),
            "occupations": [(o.occupation, o.count) for o in await store.occupation_counts(pledge.id)],
            "river_occupations": [(o.occupation, o.count) for o in await store.occupation_counts(pledge.id, river.id)],
            "direct_occupations": [(o.occupation, o.count) for o in await store.occupation_counts(pledge.id, DIRECT)],
            "sources": [(s.partner_id, s.tags, s.count) for s in await store.source_counts(pledge.id)],
            "problems": await store.integrity(),
        }

    found = with_store(go)
    river, hill = found["ids"]
    assert found["hours"] == [
        ("2026-11-30T10", river, 4),
        ("2026-11-30T11", river, 1),
        ("2026-11-30T11", hill, 2),
    ]
    assert found["minutes"] == [("2026-11-30T11:05", 2), ("2026-11-30T11:59", 1)]
    totals = {t.partner_id: t for t in found["totals"]}
    assert set(totals) == {river, hill, None}
    assert (totals[river].signatures, totals[river].opt_in_updates, totals[river].opt_in_partner) == (6, 1, 1)
    assert (totals[river].first_at, totals[river].last_at) == (at(0, day=29), at(11, 5))
    assert (totals[None].signatures, totals[None].first_at, totals[None].last_at) == (2, at(23, 59, 59, 29), at(9))
    assert found["occupations"] == [("", 5), ("nurse", 3), ("doctor", 1), ("teacher", 1)]
    assert found["river_occupations"] == [("", 3), ("nurse", 3)]
    assert found["direct_occupations"] == [("", 1), ("doctor", 1)]
    assert (river, ("news", "", "", "", "", ""), 1) in found["sources"]
    assert (hill, ("", "fb", "", "", "", ""), 1) in found["sources"]
    assert sum(count for _, _, count in found["sources"]) == 10
    assert found["problems"] == []


def test_erasure_and_invalidation_move_every_kept_count_down(with_store: Run) -> None:
    async def go(store: Store) -> dict[str, Any]:
        pledge, river, hill = await _signed(store)
        burst = SignatureMatch(pledge.id, "2026-11-30T10", "client", "m1")
        preview = await store.count_matching(burst)
        removed = await store.invalidate_signatures(burst)
        erased_first = await store.erase_signatures("h@z.org")  # river's first signature
        erased_direct = await store.erase_signatures("g@z.org")  # the first direct signature
        by_domain = SignatureMatch(pledge.id, "2026-11-30T11", "domain", "y.org")
        domain_preview = await store.count_matching(by_domain)
        return {
            "river": river.id,
            "counts": (preview, removed, erased_first, erased_direct, domain_preview),
            "total": (await store.counts(pledge.id))[0],
            "totals": {t.partner_id: t for t in await store.partner_totals(pledge.id)},
            "problems": await store.integrity(),
        }

    found = with_store(go)
    assert found["counts"] == (2, 2, 1, 1, 2)
    assert found["total"] == 6
    river = found["totals"][found["river"]]
    assert (river.signatures, river.first_at, river.last_at) == (3, at(10, 1), at(11, 5))
    assert (found["totals"][None].signatures, found["totals"][None].first_at) == (1, at(9))
    assert found["problems"] == []


def test_a_partner_burst_and_the_direct_ones_can_be_removed(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge, river, _ = await _signed(store)
        bursts = await store.bursts(pledge.id, at(0), at(23), "partner", 3)
        removed = await store.invalidate_signatures(
            SignatureMatch(pledge.id, "2026-11-30T10", "partner", str(river.id))
        )
        direct = await store.invalidate_signatures(SignatureMatch(pledge.id, "2026-11-30T09", "partner", "0"))
        return river.id, bursts, removed, direct, await store.partner_totals(pledge.id), await store.integrity()

    river, bursts, removed, direct, totals, problems = with_store(go)
    assert [(b.hour, b.kind, b.value, b.count) for b in bursts] == [("2026-11-30T10", "partner", str(river), 4)]
    assert (removed, direct) == (4, 1)
    assert {t.partner_id for t in totals} == {river, None, river + 1}
    assert problems == []


def test_bursts_by_client_skip_unmarked_signatures(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge, _, _ = await _signed(store)
        clients = await store.bursts(pledge.id, at(0), at(23), "client", 2)
        domains = await store.bursts(pledge.id, at(0), at(23), "domain", 2)
        nothing = await store.count_matching(SignatureMatch(pledge.id, "2026-11-30T10", "client", ""))
        return clients, domains, nothing

    clients, domains, nothing = with_store(go)
    assert [(b.value, b.count) for b in clients] == [("m1", 2)]
    # Biggest first, then the latest hour first.
    assert [(b.hour, b.value, b.count) for b in domains] == [
        ("2026-11-30T11", "y.org", 2),
        ("2026-11-30T10", "x.org", 2),
        ("2026-11-30T10", "z.org", 2),
    ]
    assert nothing == 0


def test_one_partners_export_and_only_its_opted_in_signers(with_store: Run) -> None:
    async def go(store: Store) -> tuple[list[Any], ...]:
        pledge, river, _ = await _signed(store)
        found = []
        for partner_id, opted_in in ((river.id, False), (river.id, True), (DIRECT, False)):
            async with store.export_partner_rows(pledge.id, partner_id, opted_in) as rows:
                found.append([row[1] async for row in rows])
        return tuple(found)

    every, opted_in, direct = with_store(go)
    assert every == ["a@x.org", "b@x.org", "c@x.org", "h@z.org", "i@z.org", "j@z.org"]
    assert opted_in == ["a@x.org"]
    assert direct == ["f@y.org", "g@z.org"]


def test_pledge_settings_and_closing(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        common: dict[str, Any] = {
            "title": "New",
            "statement_html": "<p>S</p>",
            "goal": 5,
            "privacy_url": None,
            "contact": "0800",
        }
        closed = await store.update_pledge(pledge.id, optional_fields=("occupation",), closed_at=at(1), **common)
        again = await store.update_pledge(pledge.id, optional_fields=(), closed_at=at(2), **common)
        opened = await store.update_pledge(pledge.id, optional_fields=("organisation",), closed_at=None, **common)
        return closed, again, opened, await store.pledges(), await store.pledge_by_id(pledge.id)

    closed, again, opened, every, by_id = with_store(go)
    assert (closed.title, closed.goal, closed.contact, closed.closed, closed.optional_fields) == (
        "New",
        5,
        "0800",
        True,
        ("occupation",),
    )
    assert again.closed and again.optional_fields == ()
    assert not opened.closed and opened.optional_fields == ("organisation",)
    assert every == [opened] and by_id == opened


def test_a_reinstated_partner_keeps_its_token_version(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        await store.revoke_partner(partner.id, at(1))
        revoked = await store.partner_by_id(partner.id)
        return partner, revoked, await store.reinstate_partner(partner.id)

    partner, revoked, back = with_store(go)
    assert revoked.revoked and not back.revoked
    assert back.token_version == partner.token_version


def test_staff_accounts_and_their_session_epochs(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        ana = await store.insert_staff_user(email="ana@c.org", role="owner", password_hash="h1", now=at(1))
        with pytest.raises(Conflict):
            await store.insert_staff_user(email="ana@c.org", role="viewer", password_hash="h2", now=at(1))
        bo = await store.insert_staff_user(email="bo@c.org", role="viewer", password_hash="h3", now=at(1))
        changed = await store.set_staff_password(ana.id, "h4")
        ended = await store.end_staff_sessions(ana.id)
        role = await store.set_staff_role(bo.id, "campaigner")
        removed = await store.delete_staff_user(bo.id)
        again = await store.delete_staff_user(bo.id)
        return (
            ana,
            changed,
            ended,
            role,
            removed,
            again,
            await store.staff_users(),
            await store.staff_user_by_email("bo@c.org"),
        )

    ana, changed, ended, role, removed, again, users, gone = with_store(go)
    assert ana.session_epoch == 1
    assert (changed.password_hash, changed.session_epoch) == ("h4", 2)
    assert (ended.password_hash, ended.session_epoch) == ("h4", 3)
    assert role.role == "campaigner"
    assert (removed, again, gone) == (True, False, None)
    assert [u.email for u in users] == ["ana@c.org"]


def test_the_audit_log_filters_and_pages_newest_first(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        for i in range(5):
            await store.record_audit(
                at=at(1, i),
                actor="ana@c.org" if i % 2 else "cli:root",
                action="login" if i < 3 else "export downloaded",
                pledge="p" if i else "",
                subject=f"s{i}",
                detail="",
            )
        every = await store.audit_entries()
        by_actor = await store.audit_entries(actor="cli:root")
        by_action = await store.audit_entries(action="login", pledge="p")
        page = await store.audit_entries(before_id=every[1].id, limit=2)
        return every, by_actor, by_action, page

    every, by_actor, by_action, page = with_store(go)
    assert [e.subject for e in every] == ["s4", "s3", "s2", "s1", "s0"]
    assert [e.subject for e in by_actor] == ["s4", "s2", "s0"]
    assert [e.subject for e in by_action] == ["s2", "s1"]
    assert [e.subject for e in page] == ["s2", "s1"]
