"""The outbox, as every storage engine promises it (storage/store.py): claims lease messages so that
no two claimers get one message, a lease that runs out makes it due again, failures back off or
die, and staff can retry or discard what died."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from tests.storage.test_store_contract import a_partner, a_pledge, signature
from widget_server.core.models import Pledge
from widget_server.storage.engines import open_store
from widget_server.storage.store import Store

Run = Callable[[Callable[[Store], Awaitable[Any]]], Any]

T0 = "2026-11-30T10:00:00Z"
T1 = "2026-11-30T10:00:30Z"
T2 = "2026-11-30T10:01:00Z"
T3 = "2026-11-30T10:05:00Z"


async def queue_webhooks(store: Store, pledge: Pledge, n: int, at: str = T0) -> None:
    """`n` webhook messages, one per consenting signature of a partner with a webhook."""
    partner = await a_partner(store, pledge)
    await store.set_partner_webhook(partner.id, "https://crm.example/in", "whsec_x")
    batch = [signature(pledge, f"s{i}@example.org", partner, opt_in_partner=True, created_at=at) for i in range(n)]
    for start in range(0, n, 200):
        await store.write_signatures(batch[start : start + 200])


def test_a_claim_leases_its_messages_until_the_lease_ends(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await queue_webhooks(store, pledge, 3)
        not_yet = await store.claim_outbox("2026-11-30T09:59:59Z", T1, 10)
        first = await store.claim_outbox(T0, T2, 2)
        rest = await store.claim_outbox(T0, T2, 10)
        leased = await store.claim_outbox(T1, T2, 10)  # the lease has not ended: nothing
        again = await store.claim_outbox(T2, T3, 10)  # it has (the process died mid-send): due again
        return not_yet, first, rest, leased, again

    not_yet, first, rest, leased, again = with_store(go)
    assert not_yet == []
    assert [m.id for m in first] == [1, 2] and [m.id for m in rest] == [3]  # oldest first, `limit` at most
    assert [(m.kind, m.ref_id, m.partner_id, m.attempts, m.dead) for m in first] == [
        ("webhook", 1, 1, 0, False),
        ("webhook", 2, 1, 0, False),
    ]
    assert leased == []
    assert [m.id for m in again] == [1, 2, 3]


def test_sent_removes_and_failed_backs_off_then_dies(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await queue_webhooks(store, pledge, 2)
        claimed = await store.claim_outbox(T0, T3, 10)
        await store.outbox_sent([claimed[0].id])
        await store.outbox_failed(claimed[1].id, "The receiver answered 503.", T2)
        before_retry = await store.claim_outbox(T1, T3, 10)  # failed releases the lease, but not due yet
        retried = await store.claim_outbox(T2, T3, 10)
        await store.outbox_failed(claimed[1].id, "The receiver answered 500.", None)
        dead = await store.claim_outbox("2026-12-31T00:00:00Z", "2026-12-31T00:01:00Z", 10)
        return (
            claimed,
            before_retry,
            retried,
            dead,
            await store.outbox_messages(),
            await store.outbox_messages(dead_only=True),
        )

    claimed, before_retry, retried, dead, listed, dead_listed = with_store(go)
    assert before_retry == []
    assert [(m.id, m.attempts, m.last_error) for m in retried] == [(2, 1, "The receiver answered 503.")]
    assert dead == []  # dead messages are never claimed
    assert [(m.id, m.attempts, m.last_error, m.dead) for m in listed] == [(2, 2, "The receiver answered 500.", True)]
    assert dead_listed == listed


def test_staff_retry_and_discard_dead_messages(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await queue_webhooks(store, pledge, 4)
        claimed = await store.claim_outbox(T0, T1, 10)
        for message in claimed[:3]:
            await store.outbox_failed(message.id, "down", None)
        live = await store.outbox_retry(claimed[3].id, T3)  # not dead: nothing to retry
        one = await store.outbox_retry(claimed[0].id, T3)
        after_one = await store.outbox_messages(dead_only=True)
        due = await store.claim_outbox(T3, "2026-11-30T10:06:00Z", 10)
        discarded = await store.outbox_discard(claimed[1].id)
        twice = await store.outbox_discard(claimed[1].id)
        every = await store.outbox_retry(None, T3)
        return live, one, after_one, due, discarded, twice, every, await store.outbox_messages()

    live, one, after_one, due, discarded, twice, every, listed = with_store(go)
    assert (live, one) == (0, 1)
    assert [m.id for m in after_one] == [2, 3]
    # Message 1 retried (attempts reset, due at T3); message 4's lease (to T1) ran out long ago.
    assert [(m.id, m.attempts) for m in due] == [(1, 0), (4, 0)]
    assert (discarded, twice) == (True, False)
    assert every == 1  # message 3, the only dead one left
    assert [(m.id, m.dead, m.attempts, m.next_attempt_at) for m in listed] == [
        (1, False, 0, "2026-11-30T10:06:00Z"),
        (3, False, 0, T3),
        (4, False, 0, "2026-11-30T10:06:00Z"),
    ]


def test_two_stores_claiming_at_once_never_get_the_same_message(store_url: str) -> None:
    """Two processes' stores on one database: every message goes to exactly one claimer."""
    messages = 200

    async def go() -> dict[int, list[int]]:
        async with open_store(store_url) as first, open_store(store_url) as second:
            await queue_webhooks(first, await a_pledge(first), messages)
            claims: dict[int, list[int]] = {1: [], 2: []}
            for _ in range(messages):
                stores = ((1, first), (2, second), (1, first), (2, second))
                rounds = await asyncio.gather(*(store.claim_outbox(T0, T3, 2) for _, store in stores))
                for (which, _), claimed in zip(stores, rounds, strict=True):
                    claims[which] += [m.id for m in claimed]
                if not any(rounds):
                    break
            return claims

    claims = asyncio.run(go())
    assert claims[1] and claims[2]  # both claimed, many times
    assert sorted(claims[1] + claims[2]) == list(range(1, messages + 1))  # each message once, none lost


def test_migrating_twice_keeps_the_queued_messages(store_url: str) -> None:
    async def go() -> tuple[int, int, int]:
        async with open_store(store_url) as store:
            first = await store.migrate()
            await queue_webhooks(store, await a_pledge(store), 2)
        async with open_store(store_url) as store:
            second = await store.migrate()
            return first, second, len(await store.outbox_messages())

    first, second, kept = asyncio.run(go())
    assert first == second >= 4 and kept == 2


def test_sent_removes_a_whole_batch_in_one_call(with_store: Run) -> None:
    async def go(store: Store) -> tuple[int, list[int]]:
        pledge = await a_pledge(store)
        await queue_webhooks(store, pledge, 250)
        claimed = await store.claim_outbox(T0, T3, 1000)
        await store.outbox_sent([])  # nothing finished: nothing to do, no error
        await store.outbox_sent([m.id for m in claimed[:240]])
        return len(claimed), [m.id for m in await store.outbox_messages(limit=1000)]

    claimed, left = with_store(go)
    assert claimed == 250
    assert len(left) == 10


def test_one_message_is_read_by_its_id(with_store: Run) -> None:
    async def go(store: Store) -> tuple[Any, ...]:
        pledge = await a_pledge(store)
        await queue_webhooks(store, pledge, 3)
        await store.outbox_failed(2, "The receiver answered 500.", None)
        return await store.outbox_message(2), await store.outbox_message(99)

    found, missing = with_store(go)
    assert found is not None and (found.id, found.kind, found.dead, found.attempts) == (2, "webhook", True, 1)
    assert missing is None
