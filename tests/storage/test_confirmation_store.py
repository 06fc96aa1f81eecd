"""Confirmed signatures and partner webhooks, as every storage engine promises them (storage/store.py):
pending signatures never count until confirmed, a confirmation counts once, and the outbox holds
exactly the messages the contract says, written in the same transaction."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.storage.test_store_contract import NOW, a_partner, a_pledge, signature
from widget_server.core.models import NewSignature, Partner, Pledge
from widget_server.storage.engines import open_store
from widget_server.storage.store import DIRECT, SignatureMatch, Store
from widget_server.storage.writer import SignatureWriter

Run = Callable[[Callable[[Store], Awaitable[Any]]], Any]
LATER = "2026-11-30T12:00:00Z"


def pending(pledge: Pledge, email: str, partner: Partner | None = None, **fields: Any) -> NewSignature:
    return signature(pledge, email, partner, pending=True, **fields)


async def messages(store: Store) -> list[tuple[str, int]]:
    return [(m.kind, m.ref_id) for m in await store.outbox_messages(limit=1000)]


async def with_webhook(store: Store, pledge: Pledge, name: str = "Riverside") -> Partner:
    partner = await a_partner(store, pledge, name)
    return await store.set_partner_webhook(partner.id, f"https://{name.lower()}.example/hook", "whsec_c2VjcmV0")


def test_a_pending_signature_is_kept_but_not_counted(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        result = await store.write_signatures([pending(pledge, "ana@example.org", partner, opt_in_partner=True)])
        waiting = await store.pending_signature(1)
        return (
            result,
            waiting,
            await store.counts(pledge.id),
            await store.day_counts(pledge.id),
            await store.partner_totals(pledge.id),
            await store.pending_counts(pledge.id),
            await messages(store),
            await store.signatures_of("ana@example.org"),
            await store.integrity(),
        )

    result, waiting, counts, days, totals, waits, queued, found, problems = with_store(go)
    assert result.inserted == set() and result.pending == {(1, "ana@example.org")}
    assert result.totals == {1: 0} and result.partner_counts == {} and result.queued == 1
    assert counts == (0, {1: 0}) and days == [] and totals == []
    assert waits == {1: 1}
    assert waiting is not None and (waiting.id, waiting.sends, waiting.reminded) == (1, 1, False)
    assert waiting.signature == NewSignature(
        pledge_id=1,
        partner_id=1,
        email="ana@example.org",
        name="Ana",
        opt_in_partner=True,
        created_at=NOW,
        pending=True,
    )
    assert queued == [("confirm", 1)]  # the confirmation email, and no webhook before it counts
    assert [(row["pledge"], row["status"], row["partner"]) for row in found] == [
        ("data-firewall", "pending", "Riverside")
    ]
    assert problems == []


def test_confirming_counts_once_for_pledge_partner_and_every_kept_count(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        await store.write_signatures(
            [
                pending(pledge, "ana@example.org", partner, organisation="Hill School", occupation="Nurse"),
                pending(pledge, "bo@example.org"),
            ]
        )
        first = await store.confirm_pending(1, LATER)
        second = await store.confirm_pending(1, LATER)
        return (
            first,
            second,
            await store.counts(pledge.id),
            await store.day_counts(pledge.id),
            await store.hour_counts(pledge.id, "2026-11-30T00"),
            await store.occupation_counts(pledge.id),
            await store.organisations(pledge.id),
            await store.partner_totals(pledge.id),
            await store.pending_signature(1),
            await store.pending_counts(pledge.id),
            await messages(store),
            await store.signatures_of("ana@example.org"),
            await store.integrity(),
        )

    first, second, counts, days, hours, jobs, orgs, totals, gone, waits, queued, found, problems = with_store(go)
    assert first.state == "confirmed" and first.pledge_id == 1
    assert first.batch is not None
    assert first.batch.inserted == {(1, "ana@example.org")}
    assert first.batch.totals == {1: 1} and first.batch.partner_counts == {1: (1, 1)}
    assert (second.state, second.pledge_id, second.batch) == ("already", 1, None)
    assert counts == (1, {1: 1})
    assert [(d.day, d.partner_id, d.count) for d in days] == [("2026-11-30", 1, 1)]
    assert [(h.hour, h.count) for h in hours] == [("2026-11-30T10", 1)]  # counted as signed, not as confirmed
    assert [(j.occupation, j.count) for j in jobs] == [("nurse", 1)]
    assert [(o["name"], o["signatures"]) for o in orgs] == [("Hill School", 1)]
    assert [(t.partner_id, t.signatures) for t in totals] == [(1, 1)]
    assert gone is None
    assert waits == {DIRECT: 1}  # Bo still waits
    assert queued == [("confirm", 2)]  # Ana's confirmation email went with her pending row
    assert [(row["status"], row["name"]) for row in found] == [("counted", "Ana")]
    assert problems == []


def test_an_unknown_pending_id_is_unknown(with_store: Run) -> None:
    async def go(store: Store) -> Any:
        await a_pledge(store)
        return await store.confirm_pending(99, LATER)

    result = with_store(go)
    assert (result.state, result.pledge_id, result.batch) == ("unknown", None, None)


def test_signing_again_resends_the_email_up_to_the_cap(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        results = [
            await store.write_signatures([pending(pledge, "ana@example.org")], confirm_sends=3) for _ in range(5)
        ]
        # The same address twice in one batch is one signature.
        twice = await store.write_signatures([pending(pledge, "bo@example.org")] * 2, confirm_sends=3)
        once = await store.write_signatures([pending(pledge, "cy@example.org")] * 2, confirm_sends=1)
        once_again = await store.write_signatures([pending(pledge, "cy@example.org")], confirm_sends=1)
        return results, twice, once, once_again, await store.pending_signature(1), await messages(store)

    results, twice, once, once_again, waiting, queued = with_store(go)
    assert [(bool(r.pending), r.queued) for r in results] == [(True, 1), (False, 1), (False, 1), (False, 0), (False, 0)]
    assert waiting.sends == 3
    assert (twice.pending, twice.queued) == ({(1, "bo@example.org")}, 1)
    assert (once.queued, once_again.queued) == (1, 0)
    # Ana's three emails, then one each for Bo and Cy (ids skipped by a re-send are not reused).
    assert queued[:3] == [("confirm", 1)] * 3
    assert [kind for kind, _ in queued[3:]] == ["confirm", "confirm"] and len({ref for _, ref in queued[3:]}) == 2


def test_an_address_already_counted_gets_nothing_queued_and_is_not_kept_again(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await store.write_signatures([signature(pledge, "ana@example.org")])
        again = await store.write_signatures([pending(pledge, "ana@example.org")])
        return again, await store.pending_counts(pledge.id), await messages(store), await store.counts(pledge.id)

    again, waits, queued, counts = with_store(go)
    assert (again.inserted, again.pending, again.queued, again.totals) == (set(), set(), 0, {1: 1})
    assert waits == {} and queued == [] and counts == (1, {})


def test_confirming_an_address_that_signed_meanwhile_counts_nothing_and_clears_the_pending_row(
    with_store: Run,
) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await store.write_signatures([pending(pledge, "ana@example.org")])
        # Staff switched confirmation off, and she signed again.
        await store.write_signatures([signature(pledge, "ana@example.org")])
        result = await store.confirm_pending(1, LATER)
        return (
            result,
            await store.confirm_pending(1, LATER),
            await store.counts(pledge.id),
            await store.pending_signature(1),
            await messages(store),
            await store.integrity(),
        )

    result, again, counts, gone, queued, problems = with_store(go)
    assert (result.state, result.pledge_id, result.batch) == ("already", 1, None)
    assert again.state == "already"
    assert counts == (1, {}) and gone is None and queued == [] and problems == []


def test_a_batch_of_both_kinds_reports_every_pledge(with_store: Run) -> None:
    async def go(store: Store) -> Any:
        open_pledge = await a_pledge(store)
        confirmed = await a_pledge(store, "confirmed")
        return await store.write_signatures(
            [signature(open_pledge, "ana@example.org"), pending(confirmed, "ana@example.org")]
        )

    result = with_store(go)
    assert result.inserted == {(1, "ana@example.org")} and result.pending == {(2, "ana@example.org")}
    assert result.totals == {1: 1, 2: 0} and result.queued == 1


def test_reminders_are_queued_once_for_those_signed_before_the_time(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await store.write_signatures(
            [
                pending(pledge, "ana@example.org", created_at="2026-11-28T10:00:00Z"),
                pending(pledge, "bo@example.org", created_at="2026-11-30T10:00:00Z"),
            ]
        )
        first = await store.queue_reminders("2026-11-29T00:00:00Z", now=LATER)
        again = await store.queue_reminders("2026-11-29T00:00:00Z", now=LATER)
        later = await store.queue_reminders("2026-12-02T00:00:00Z")
        reminded = [(await store.pending_signature(i)) for i in (1, 2)]
        listed = await store.outbox_messages()
        return first, again, later, reminded, listed

    first, again, later, reminded, listed = with_store(go)
    assert (first, again, later) == (1, 0, 1)
    assert [p.reminded for p in reminded] == [True, True]
    assert [(m.kind, m.ref_id) for m in listed] == [("confirm", 1), ("confirm", 2), ("remind", 1), ("remind", 2)]
    assert (listed[2].created_at, listed[2].next_attempt_at) == (LATER, LATER)
    assert listed[3].next_attempt_at == "2026-12-02T00:00:00Z"  # no `now`: due at once


def test_the_retention_purge_removes_pending_rows_and_their_messages_and_never_a_count(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await with_webhook(store, pledge)
        await store.write_signatures(
            [
                pending(pledge, "old@example.org", created_at="2026-11-01T10:00:00Z"),
                pending(pledge, "kept@example.org", partner, opt_in_partner=True, created_at="2026-11-01T11:00:00Z"),
                pending(pledge, "new@example.org", created_at="2026-11-30T10:00:00Z"),
                signature(pledge, "counted@example.org", created_at="2026-11-01T09:00:00Z"),
            ]
        )
        await store.queue_reminders("2026-11-02T00:00:00Z")
        confirmed = await store.confirm_pending(2, "2026-11-02T00:00:00Z")
        before = await store.counts(pledge.id)
        purged = await store.purge_pending("2026-11-20T00:00:00Z")
        return (
            confirmed.state,
            before,
            purged,
            await store.counts(pledge.id),
            await store.pending_counts(pledge.id),
            await messages(store),
            await store.confirm_pending(1, LATER),
            await store.confirm_pending(2, LATER),  # its confirmation is forgotten after the retention too
            await store.integrity(),
        )

    state, before, purged, after, waits, queued, old, confirmed, problems = with_store(go)
    assert state == "confirmed"
    assert purged == 1  # the old one; the confirmed one was no longer pending, the new one is recent
    assert before == after == (2, {1: 1})
    assert waits == {DIRECT: 1}
    assert queued == [("confirm", 3), ("webhook", 2)]  # the old one's email and reminder went with it
    assert old.state == "unknown" and confirmed.state == "unknown"
    assert problems == []


def test_a_webhook_is_queued_only_with_consent_for_a_partner_that_has_one(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        hooked = await with_webhook(store, pledge)
        plain = await a_partner(store, pledge, "Plain")
        result = await store.write_signatures(
            [
                signature(pledge, "yes@example.org", hooked, opt_in_partner=True),
                signature(pledge, "no@example.org", hooked, opt_in_partner=False),
                signature(pledge, "plain@example.org", plain, opt_in_partner=True),
                signature(pledge, "direct@example.org", opt_in_partner=True),
            ]
        )
        again = await store.write_signatures([signature(pledge, "yes@example.org", hooked, opt_in_partner=True)])
        quiet = await store.write_signatures([signature(pledge, "other@example.org", plain, opt_in_partner=True)])
        listed = await store.outbox_messages()
        return result, again, quiet, listed, await store.signature_by_id(listed[0].ref_id)

    result, again, quiet, listed, signed = with_store(go)
    assert (result.queued, again.queued, quiet.queued) == (1, 0, 0)
    assert [(m.kind, m.partner_id, m.created_at, m.attempts, m.dead) for m in listed] == [("webhook", 1, NOW, 0, False)]
    assert signed is not None and (signed.email, signed.partner_id, signed.opt_in_partner) == (
        "yes@example.org",
        1,
        True,
    )


def test_a_confirmed_signature_queues_its_webhook_at_confirmation(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await with_webhook(store, pledge)
        signed = await store.write_signatures([pending(pledge, "ana@example.org", partner, opt_in_partner=True)])
        before = await messages(store)
        confirmed = await store.confirm_pending(1, LATER)
        listed = await store.outbox_messages()
        return signed, before, confirmed, listed, await store.signature_by_id(listed[0].ref_id)

    signed, before, confirmed, listed, body = with_store(go)
    assert signed.queued == 1 and before == [("confirm", 1)]
    assert confirmed.batch is not None and confirmed.batch.queued == 1
    assert [(m.kind, m.partner_id, m.created_at) for m in listed] == [("webhook", 1, LATER)]
    assert body is not None and body.email == "ana@example.org" and body.pending is False


def test_partner_webhooks_are_set_read_and_removed(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        before = await store.partner_webhook(partner.id)
        set_ = await store.set_partner_webhook(partner.id, "https://crm.example/in", "whsec_one")
        read = await store.partner_webhook(partner.id)
        listed = await store.partners_of(pledge.id)
        removed = await store.set_partner_webhook(partner.id, None, None)
        return before, set_, read, listed, removed, await store.partner_webhook(partner.id)

    before, set_, read, listed, removed, after = with_store(go)
    assert before is None
    assert set_.webhook_url == "https://crm.example/in" and listed[0].webhook_url == "https://crm.example/in"
    assert read == ("https://crm.example/in", "whsec_one")
    assert removed.webhook_url is None and after is None


def test_confirmation_is_a_pledge_setting(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        plain = await a_pledge(store)
        asked = await store.insert_pledge(
            slug="asked",
            title="T",
            statement_html="<p>s</p>",
            goal=None,
            privacy_url=None,
            contact=None,
            now=NOW,
            confirm_email=True,
        )
        edited = await store.update_pledge(
            plain.id,
            title=plain.title,
            statement_html=plain.statement_html,
            goal=plain.goal,
            privacy_url=None,
            contact=None,
            optional_fields=plain.optional_fields,
            closed_at=None,
            confirm_email=True,
        )
        return (
            plain,
            asked,
            edited,
            await store.pledge_by_slug("asked"),
            [p.confirm_email for p in await store.pledges()],
        )

    plain, asked, edited, read, listed = with_store(go)
    assert (plain.confirm_email, asked.confirm_email, edited.confirm_email, read.confirm_email) == (
        False,
        True,
        True,
        True,
    )
    assert listed == [True, True]


def test_erasure_removes_pending_rows_and_every_message_about_the_person(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        asked = await a_pledge(store, "asked")
        partner = await with_webhook(store, pledge)
        await store.write_signatures(
            [
                signature(pledge, "ana@example.org", partner, opt_in_partner=True),  # webhook 1
                signature(pledge, "bo@example.org", partner, opt_in_partner=True),  # webhook 2
                pending(asked, "ana@example.org"),  # pending 1
                pending(asked, "bo@example.org"),  # pending 2
            ]
        )
        await store.write_signatures([pending(asked, "ana@example.org")])  # a re-send
        await store.queue_reminders("2026-12-31T00:00:00Z")
        found = await store.signatures_of("ana@example.org")
        erased = await store.erase_signatures("ana@example.org")
        return (
            found,
            erased,
            await store.signatures_of("ana@example.org"),
            await messages(store),
            await store.pending_signature(1),
            await store.confirm_pending(1, LATER),
            await store.pending_counts(asked.id),
            await store.counts(pledge.id),
            await store.integrity(),
        )

    found, erased, after, queued, gone, confirmed, waits, counts, problems = with_store(go)
    assert [(row["pledge"], row["status"]) for row in found] == [("data-firewall", "counted"), ("asked", "pending")]
    assert erased == 2
    assert after == [] and gone is None and confirmed.state == "unknown"
    assert sorted(queued) == [("confirm", 2), ("remind", 2), ("webhook", 2)]  # only Bo's
    assert waits == {DIRECT: 1} and counts == (1, {1: 1}) and problems == []


def test_erasing_a_confirmed_signature_forgets_its_confirmation(with_store: Run) -> None:
    async def go(store: Store) -> tuple[str, str]:
        pledge = await a_pledge(store)
        await store.write_signatures([pending(pledge, "ana@example.org")])
        first = await store.confirm_pending(1, LATER)
        await store.erase_signatures("ana@example.org")
        return first.state, (await store.confirm_pending(1, LATER)).state

    assert with_store(go) == ("confirmed", "unknown")


def test_invalidating_signatures_removes_their_webhooks(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await with_webhook(store, pledge)
        await store.write_signatures(
            [
                signature(pledge, "a@example.org", partner, opt_in_partner=True, client_mark="m1"),
                signature(pledge, "b@example.org", partner, opt_in_partner=True, client_mark="m2"),
            ]
        )
        removed = await store.invalidate_signatures(SignatureMatch(pledge.id, "2026-11-30T10", "client", "m1"))
        return removed, await messages(store), await store.integrity()

    removed, queued, problems = with_store(go)
    assert removed == 1 and queued == [("webhook", 2)] and problems == []


def test_the_writer_calls_a_new_pending_signature_created(store_url: str) -> None:
    async def go() -> list[tuple[bool, int]]:
        async with open_store(store_url) as store:
            pledge = await a_pledge(store)
            await store.write_signatures([signature(pledge, "counted@example.org")])
            writer = SignatureWriter(store, confirm_sends=2)
            writer.start()
            results = [
                await writer.submit(pending(pledge, email))
                for email in ("ana@example.org", "ana@example.org", "counted@example.org")
            ]
            await writer.close()
            return [(r.created, r.total) for r in results]

    assert asyncio.run(go()) == [(True, 1), (False, 1), (False, 1)]


def test_two_processes_confirming_one_link_at_once_count_it_once(store_url: str) -> None:
    async def go() -> tuple[list[str], tuple[int, dict[int, int]], list[str]]:
        async with open_store(store_url) as first, open_store(store_url) as second:
            pledge = await a_pledge(first)
            await first.write_signatures([pending(pledge, f"s{i}@example.org") for i in range(20)])
            states: list[str] = []
            for pending_id in range(1, 21):
                results = await asyncio.gather(
                    first.confirm_pending(pending_id, LATER), second.confirm_pending(pending_id, LATER)
                )
                states += sorted(result.state for result in results)
            return states, await first.counts(pledge.id), await second.integrity()

    states, counts, problems = asyncio.run(go())
    assert states == ["already", "confirmed"] * 20
    assert counts == (20, {}) and problems == []


def test_asked_and_confirmed_are_kept_per_partner_and_no_purge_or_resend_moves_them(with_store: Run) -> None:
    """The confirmation rate staff watch (services/reports.py): a partner sending invented addresses
    must not look better once its unconfirmed signatures are purged, nor worse when a signer asks
    for the email again."""

    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        partner = await a_partner(store, pledge)
        await store.write_signatures([pending(pledge, f"p{n}@example.org", partner) for n in range(4)])
        await store.write_signatures([pending(pledge, "d0@example.org"), pending(pledge, "p0@example.org", partner)])
        await store.confirm_pending(1, LATER)
        await store.confirm_pending(1, LATER)  # twice: counted once
        before_purge = await store.confirmation_counts(pledge.id)
        await store.purge_pending("2027-01-01T00:00:00Z")
        return before_purge, await store.confirmation_counts(pledge.id), await store.pending_counts(pledge.id)

    before_purge, after_purge, waiting = with_store(go)
    assert before_purge == {1: (4, 1), DIRECT: (1, 0)}
    assert after_purge == before_purge
    assert waiting == {}
