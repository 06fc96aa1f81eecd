"""What every storage engine promises (storage/store.py), tested through the interface only."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from widget_server.core.models import NewSignature, Partner, Pledge
from widget_server.errors import Conflict, WidgetError
from widget_server.storage.engines import open_store
from widget_server.storage.store import Store

Run = Callable[[Callable[[Store], Awaitable[Any]]], Any]
NOW = "2026-11-30T10:00:00Z"


async def a_pledge(store: Store, slug: str = "data-firewall") -> Pledge:
    return await store.insert_pledge(
        slug=slug,
        title="Keep our data safe",
        statement_html="<p>We ask.</p>",
        goal=100,
        privacy_url=None,
        contact=None,
        now=NOW,
    )


async def a_partner(store: Store, pledge: Pledge, name: str = "Riverside") -> Partner:
    return await store.insert_partner(pledge_id=pledge.id, name=name, origins=["https://riverside.example"], now=NOW)


def signature(pledge: Pledge, email: str, partner: Partner | None = None, **fields: Any) -> NewSignature:
    values: dict[str, Any] = {"name": "Ana", "created_at": NOW}
    values.update(fields)
    return NewSignature(pledge_id=pledge.id, partner_id=partner.id if partner else None, email=email, **values)


def test_one_signature_per_pledge_and_normalised_email(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        first = await store.write_signatures(
            [signature(pledge, "ana@example.org"), signature(pledge, "ana@example.org")]
        )
        again = await store.write_signatures([signature(pledge, "ana@example.org", name="Someone else")])
        return first, again, await store.counts(pledge.id), await store.signatures_of("ana@example.org")

    first, again, (total, _), kept = with_store(go)
    assert first.inserted == {(1, "ana@example.org")}
    assert again.inserted == set()
    assert first.totals == {1: 1} and again.totals == {1: 1}
    assert total == 1
    assert [row["name"] for row in kept] == ["Ana"]  # the first signature stands; a repeat changes nothing


def test_counts_move_with_the_rows_in_the_same_transaction(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        batch = [signature(pledge, f"p{i}@example.org", partner) for i in range(7)]
        batch += [signature(pledge, f"d{i}@example.org", created_at="2026-12-01T00:00:01Z") for i in range(3)]
        result = await store.write_signatures(batch)
        return result, await store.counts(pledge.id), await store.day_counts(pledge.id), await store.integrity()

    result, (total, partners), days, problems = with_store(go)
    assert result.totals == {1: 10}
    assert result.partner_counts == {1: (1, 7)}
    assert (total, partners) == (10, {1: 7})
    assert [(d.day, d.partner_id, d.count) for d in days] == [("2026-11-30", 1, 7), ("2026-12-01", None, 3)]
    assert problems == []


def test_a_failing_batch_leaves_nothing(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        ghost = Pledge(
            id=999,
            slug="ghost",
            title="",
            statement_html="",
            goal=None,
            privacy_url=None,
            contact=None,
            signature_count=0,
        )
        with pytest.raises(WidgetError):  # the engine's own error, never a driver's
            await store.write_signatures([signature(pledge, "ana@example.org"), signature(ghost, "bo@example.org")])
        return await store.counts(pledge.id), await store.signatures_of("ana@example.org"), await store.integrity()

    (total, partners), kept, problems = with_store(go)
    assert (total, partners, kept, problems) == (0, {}, [], [])


def test_erasure_removes_the_rows_and_corrects_every_kept_count(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        other = await a_pledge(store, "second")
        partner = await a_partner(store, pledge)
        await store.write_signatures(
            [
                signature(pledge, "ana@example.org", partner, organisation="Hill School"),
                signature(other, "ana@example.org"),
                signature(pledge, "bo@example.org", partner, organisation="Hill School"),
            ]
        )
        erased = await store.erase_signatures("ana@example.org")
        return (
            erased,
            await store.counts(pledge.id),
            await store.counts(other.id),
            await store.day_counts(pledge.id),
            await store.organisations(pledge.id),
            await store.signatures_of("ana@example.org"),
            await store.integrity(),
        )

    erased, first, second, days, organisations, kept, problems = with_store(go)
    assert erased == 2
    assert first == (1, {1: 1}) and second == (0, {})
    assert sum(d.count for d in days) == 1
    assert [(o["name"], o["signatures"]) for o in organisations] == [("Hill School", 1)]
    assert kept == [] and problems == []


def test_migrations_run_twice_change_nothing(store_url: str) -> None:
    import asyncio

    async def go() -> tuple[int, int, int]:
        async with open_store(store_url) as store:
            first = await store.migrate()
            pledge = await a_pledge(store)
            await store.write_signatures([signature(pledge, "ana@example.org")])
        async with open_store(store_url) as store:  # migrates again on open
            second = await store.migrate()
            total, _ = await store.counts(pledge.id)
        return first, second, total

    first, second, total = asyncio.run(go())
    assert first == second >= 2
    assert total == 1


def test_unique_names_are_conflicts_in_the_projects_terms(with_store: Run) -> None:
    async def go(store: Store) -> None:
        pledge = await a_pledge(store)
        await a_partner(store, pledge)
        with pytest.raises(Conflict):
            await a_pledge(store)
        with pytest.raises(Conflict):
            await a_partner(store, pledge)

    with_store(go)


def test_partner_tokens_move_on_rotation_and_new_origins_and_revocation_is_kept(with_store: Run) -> None:
    async def go(store: Store) -> list[tuple[int, bool, tuple[str, ...]]]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        seen = [partner]
        await store.revoke_partner(partner.id, NOW)
        seen.append(await store.partner_by_id(partner.id))  # type: ignore[arg-type]
        seen.append(await store.rotate_partner(partner.id))  # reinstates
        seen.append(await store.set_partner_origins(partner.id, ["https://new.example"]))
        assert await store.partner_by_name(pledge.id, "Riverside") == seen[-1]
        assert [p.id for p in await store.partners_of(pledge.id)] == [partner.id]
        return [(p.token_version, p.revoked, p.origins) for p in seen]

    assert with_store(go) == [
        (1, False, ("https://riverside.example",)),
        (1, True, ("https://riverside.example",)),
        (2, False, ("https://riverside.example",)),
        (3, False, ("https://new.example",)),
    ]


def test_organisations_are_pending_until_approved(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await store.write_signatures(
            [
                signature(pledge, "a@example.org", organisation="Hill School"),
                signature(pledge, "b@example.org", organisation="HILL SCHOOL"),
                signature(pledge, "c@example.org", organisation="Quiet Trust"),
            ]
        )
        before = await store.approved_organisation_names(pledge.id)
        found = await store.set_organisation_status(pledge.id, "hill school", "approved", NOW)
        missing = await store.set_organisation_status(pledge.id, "Nobody", "approved", NOW)
        return (
            before,
            found,
            missing,
            await store.approved_organisation_names(pledge.id),
            await store.organisations(pledge.id, "pending"),
        )

    before, found, missing, after, pending = with_store(go)
    assert (before, found, missing, after) == ([], True, False, ["Hill School"])
    assert [(o["name"], o["signatures"]) for o in pending] == [("Quiet Trust", 1)]


def test_export_streams_in_signing_order_and_can_stop_early(with_store: Run) -> None:
    from widget_server.core.models import EXPORT_COLUMNS

    async def go(store: Store) -> tuple[list[tuple[object, ...]], tuple[object, ...]]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        await store.write_signatures(
            [
                signature(pledge, f"s{i}@example.org", partner if i % 2 else None, attribution={"source": "news"})
                for i in range(2500)
            ]
        )
        async with store.export_rows(pledge.id) as rows:
            everything = [row async for row in rows]
        async with store.export_rows(pledge.id) as rows:
            first = await anext(rows)  # leaving here releases the cursor
        await store.ping()
        return everything, first

    everything, first = with_store(go)
    assert len(everything) == 2500 and all(len(row) == len(EXPORT_COLUMNS) for row in everything)
    columns = dict(zip(EXPORT_COLUMNS, everything[1], strict=True))
    assert (columns["email"], columns["partner"], columns["source"]) == ("s1@example.org", "Riverside", "news")
    assert first == everything[0]


def test_a_backup_holds_everything_and_needs_no_open_store(store_url: str, tmp_path: Path) -> None:
    import asyncio

    from tests.engines import restore_postgres
    from widget_server.storage.engines import store_for

    async def fill() -> None:
        async with open_store(store_url) as store:
            pledge = await a_pledge(store)
            await store.write_signatures([signature(pledge, "ana@example.org")])

    asyncio.run(fill())
    copy = tmp_path / "copy.backup"
    asyncio.run(store_for(store_url).backup(copy))  # a store that was never opened
    assert copy.stat().st_mode & 0o077 == 0  # personal data: readable by its owner only

    async def read(url: str) -> tuple[int, dict[int, int]]:
        async with open_store(url) as restored:
            pledge = await restored.pledge_by_slug("data-firewall")
            assert pledge is not None
            return await restored.counts(pledge.id)

    if store_url.startswith("postgresql://"):
        with restore_postgres(copy) as url:
            assert asyncio.run(read(url)) == (1, {})
    else:
        assert asyncio.run(read(f"sqlite:///{copy}")) == (1, {})


def test_concurrent_writes_through_one_store_each_stand_alone(with_store: Run) -> None:
    """Staff actions arrive together (two erasures, a revocation): none fails or joins another's transaction."""
    import asyncio

    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        await store.write_signatures([signature(pledge, f"p{i}@example.org", partner) for i in range(6)])
        erased = await asyncio.gather(
            store.erase_signatures("p0@example.org"),
            store.erase_signatures("p1@example.org"),
            store.revoke_partner(partner.id, NOW),
            store.erase_signatures("p2@example.org"),
        )
        return erased, await store.counts(pledge.id), await store.partner_by_id(partner.id), await store.integrity()

    erased, counts, partner, problems = with_store(go)
    assert erased == [1, 1, None, 1]
    assert counts == (3, {1: 3}) and partner.revoked and problems == []
