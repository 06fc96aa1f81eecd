"""The outbox worker over a real store, with handlers the tests control and a clock they move: what
each outcome does to a message, backoff that doubles, the bound on attempts, the bound on sends at
once, a slow receiver that cannot hold up emails, housekeeping, a clean close, and logs."""

from __future__ import annotations

import asyncio
import functools
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import pytest

from tests.conftest import FakeClock
from tests.delivery.conftest import consenting, partner_with_webhook
from widget_server import messages
from widget_server.core.models import NewSignature
from widget_server.core.times import iso_utc
from widget_server.delivery.errors import DeliveryFailed, Dropped
from widget_server.delivery.worker import OutboxWorker
from widget_server.services import outbox
from widget_server.settings import Settings
from widget_server.storage.engines import open_store
from widget_server.storage.store import OutboxMessage, Store

pytestmark = pytest.mark.both_engines

Handler = Callable[[OutboxMessage], Awaitable[None]]


def epoch(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


async def eventually(check: Callable[[], Awaitable[Any]], deadline: float = 10.0) -> Any:
    """Poll `check` on the loop until it returns something true."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > end:
            raise AssertionError("the worker did not get there in time")
        await asyncio.sleep(0.01)


def prepared(settings: Settings, count: int, **fields: Any) -> FakeClock:
    """`count` consenting signatures for a partner with a webhook, each with a "webhook" message queued."""
    clock = FakeClock()
    partner_id, _, _ = partner_with_webhook(settings, "http://127.0.0.1:9/hook")

    async def go() -> None:
        async with open_store(settings.database) as store:
            batch = [consenting(1, partner_id, f"signer{i}@example.org", clock(), **fields) for i in range(count)]
            await store.write_signatures(batch)

    asyncio.run(go())
    return clock


def run(settings: Settings, scenario: Callable[[Store], Awaitable[None]]) -> None:
    async def go() -> None:
        async with open_store(settings.database) as store:
            await scenario(store)

    asyncio.run(go())


def worker(store: Store, settings: Settings, handler: Handler, clock: FakeClock, **options: Any) -> OutboxWorker:
    values: dict[str, Any] = {"poll_seconds": 0.02}
    values.update(options)
    return OutboxWorker(store, settings, {"webhook": handler}, clock=clock, **values)


def test_returned_and_dropped_messages_leave_the_outbox(make_settings) -> None:
    settings = make_settings()
    clock = prepared(settings, 4)
    seen: list[int] = []

    async def handler(message: OutboxMessage) -> None:
        seen.append(message.id)
        if message.id % 2:
            raise Dropped(messages.DROPPED_NO_WEBHOOK)

    async def scenario(store: Store) -> None:
        w = worker(store, settings, handler, clock)
        w.start()
        await eventually(lambda: _empty(store))
        await w.close()

    run(settings, scenario)
    assert sorted(seen) == [1, 2, 3, 4]


async def _empty(store: Store) -> bool:
    return not await store.outbox_messages(limit=1000)


def test_a_failure_is_recorded_with_its_reason_and_backed_off(make_settings) -> None:
    settings = make_settings(outbox_first_retry_seconds=10)
    clock = prepared(settings, 2)

    async def handler(message: OutboxMessage) -> None:
        if message.id == 1:
            raise DeliveryFailed(messages.DELIVERY_STATUS.format(status=503))
        raise KeyError("ana@example.org")  # a bug whose text holds data

    async def scenario(store: Store) -> None:
        w = worker(store, settings, handler, clock)
        w.start()
        found = await eventually(lambda: _failed_ones(store, 2))
        await w.close()
        first, second = found
        assert (first.attempts, first.dead, first.last_error) == (1, False, "the webhook answered HTTP 503")
        assert second.last_error == "an unexpected error (KeyError)"
        for message in found:  # 10 s × 0.8–1.2, rounded up to a whole second
            assert 8 <= epoch(message.next_attempt_at) - clock() <= 13

    run(settings, scenario)


async def _failed_ones(store: Store, count: int) -> list[OutboxMessage] | None:
    found = [m for m in await store.outbox_messages(limit=1000) if m.attempts]
    return found if len(found) == count else None


def test_retries_double_until_the_message_is_dead_then_a_retry_by_hand_sends_it(make_settings) -> None:
    settings = make_settings(outbox_first_retry_seconds=10, outbox_attempts=5)
    clock = prepared(settings, 1)
    attempts: list[float] = []
    failing = [True]

    async def handler(message: OutboxMessage) -> None:
        attempts.append(clock())
        if failing[0]:
            raise DeliveryFailed(messages.DELIVERY_STATUS.format(status=500))

    async def scenario(store: Store) -> None:
        w = worker(store, settings, handler, clock)
        w.start()
        for n in range(1, 5):
            [message] = await eventually(functools.partial(_attempted, store, n))
            assert not message.dead
            clock.now = epoch(message.next_attempt_at)  # nothing happens before it is due …
            w.wake()
        [dead] = await eventually(lambda: store.outbox_messages(dead_only=True))
        assert (dead.attempts, dead.last_error) == (5, "the webhook answered HTTP 500")
        clock.advance(10_000)
        w.wake()
        await asyncio.sleep(0.2)
        assert len(attempts) == 5  # … and a dead message is not tried again by itself
        failing[0] = False
        assert await outbox.retry(store, "cli:test", dead.id, at=iso_utc(clock())) == 1
        w.wake()
        await eventually(lambda: _empty(store))
        await w.close()

    run(settings, scenario)
    assert len(attempts) == 6
    gaps = [b - a for a, b in zip(attempts, attempts[1:5], strict=False)]
    for n, gap in enumerate(gaps):  # 10, 20, 40, 80 s, each ×0.8–1.2 and rounded up to a second
        assert 10 * 2**n * 0.8 <= gap <= 10 * 2**n * 1.2 + 1, gaps
    assert all(later > earlier for earlier, later in zip(gaps, gaps[1:], strict=False)), gaps


async def _attempted(store: Store, count: int) -> list[OutboxMessage] | None:
    found = await store.outbox_messages(limit=10)
    return found if found and found[0].attempts == count and found[0].next_attempt_at else None


def test_sends_run_concurrently_up_to_the_bound(make_settings) -> None:
    settings = make_settings()
    clock = prepared(settings, 30)
    running: list[int] = []
    most = [0]

    async def handler(message: OutboxMessage) -> None:
        running.append(message.id)
        most[0] = max(most[0], len(running))
        await asyncio.sleep(0.02)
        running.remove(message.id)

    async def scenario(store: Store) -> None:
        w = worker(store, settings, handler, clock, concurrency=4)
        w.start()
        await eventually(lambda: _empty(store))
        await w.close()

    run(settings, scenario)
    assert most[0] == 4


def test_a_slow_webhook_receiver_cannot_hold_up_confirmation_emails(make_settings) -> None:
    settings = make_settings()
    clock = prepared(settings, 20)  # 20 webhooks to one partner, queued before the email
    calls: list[str] = []

    async def hanging_webhook(message: OutboxMessage) -> None:
        calls.append("webhook")
        await asyncio.sleep(3600)

    async def email(message: OutboxMessage) -> None:
        calls.append("email")

    async def scenario(store: Store) -> None:
        pledge = await store.insert_pledge(
            slug="confirmed",
            title="Confirmed",
            statement_html="<p>We ask.</p>",
            goal=None,
            privacy_url=None,
            contact=None,
            now=iso_utc(clock()),
            confirm_email=True,
        )
        signature = NewSignature(pledge.id, None, "bo@example.org", "Bo", created_at=iso_utc(clock()), pending=True)
        await store.write_signatures([signature])
        w = OutboxWorker(
            store,
            settings,
            {"webhook": hanging_webhook, "confirm": email},
            clock=clock,
            concurrency=4,
            poll_seconds=0.02,
            send_timeout=0.3,
            slow_seconds=0.2,
        )
        w.start()
        await eventually(lambda: _called(calls, "email"))
        await w.close()

    run(settings, scenario)
    # The first four webhooks take every slot until they time out; then the receiver is "slow": one probe
    # at a time goes to it and its other messages fail at once, so the email is next through.
    assert calls.index("email") <= 6, calls


async def _called(calls: list[str], what: str) -> bool:
    return what in calls


def test_housekeeping_runs_at_start_and_every_minute(make_settings) -> None:
    settings = make_settings()
    clock = FakeClock()
    runs: list[float] = []

    async def housekeeping(now: float) -> None:
        runs.append(now)

    async def nothing(message: OutboxMessage) -> None: ...

    async def scenario(store: Store) -> None:
        w = OutboxWorker(store, settings, {}, housekeeping=housekeeping, clock=clock, poll_seconds=0.02)
        w.start()
        await eventually(lambda: _called_times(runs, 1))
        clock.advance(59)
        await asyncio.sleep(0.1)
        assert len(runs) == 1
        clock.advance(1)
        await eventually(lambda: _called_times(runs, 2))
        await w.close()

    run(settings, scenario)
    assert runs[1] - runs[0] == 60


async def _called_times(runs: list[float], count: int) -> bool:
    return len(runs) >= count


def test_a_commit_wakes_the_worker_at_once_not_at_the_next_poll(make_settings) -> None:
    settings = make_settings()
    clock = prepared(settings, 0)
    sent: list[int] = []

    async def handler(message: OutboxMessage) -> None:
        sent.append(message.id)

    async def scenario(store: Store) -> None:
        w = worker(store, settings, handler, clock, poll_seconds=3600)
        w.start()
        await asyncio.sleep(0.1)  # idle, waiting for a poll an hour away
        partner = (await store.partners_of(1))[0]
        result = await store.write_signatures([consenting(1, partner.id, "late@example.org", clock())])
        assert result.queued == 1
        w.wake()
        await eventually(lambda: _called_times(sent, 1), deadline=5)  # type: ignore[arg-type]
        await w.close()

    run(settings, scenario)


def test_closing_abandons_a_hanging_send_whose_lease_then_runs_out(make_settings) -> None:
    settings = make_settings()
    clock = prepared(settings, 1)
    started: list[int] = []

    async def hangs(message: OutboxMessage) -> None:
        started.append(message.id)
        await asyncio.sleep(3600)

    async def scenario(store: Store) -> None:
        w = worker(store, settings, hangs, clock, send_timeout=60, close_grace=0.1)
        w.start()
        await eventually(lambda: _called_times(started, 1))  # type: ignore[arg-type]
        await w.close()
        # Still queued, no attempt counted, and leased: no other process takes it …
        [message] = await store.outbox_messages()
        assert message.attempts == 0
        assert await store.claim_outbox(iso_utc(clock()), iso_utc(clock() + 60), 10) == []
        # … until the lease (the send's timeout and a margin) runs out.
        clock.advance(66)
        [again] = await store.claim_outbox(iso_utc(clock()), iso_utc(clock() + 60), 10)
        assert again.id == message.id

    run(settings, scenario)


def test_the_log_names_kinds_ids_and_reasons_never_a_person(make_settings, caplog) -> None:
    settings = make_settings(outbox_attempts=1)
    clock = prepared(settings, 3, name="Zed Secretname", occupation="Nurse")

    async def handler(message: OutboxMessage) -> None:
        if message.id == 1:
            raise Dropped(messages.DROPPED_NO_CONSENT)
        if message.id == 2:
            raise DeliveryFailed(messages.DELIVERY_STATUS.format(status=500))
        raise ValueError("Zed Secretname <signer2@example.org>")

    async def scenario(store: Store) -> None:
        w = worker(store, settings, handler, clock)
        w.start()
        await eventually(lambda: store.outbox_messages(dead_only=True, limit=5), deadline=5)
        await eventually(lambda: _dead_count(store, 2))
        await w.close()

    with caplog.at_level(logging.DEBUG, logger="widget_server"):
        run(settings, scenario)
    text = "\n".join(record.getMessage() + str(record.exc_info or "") for record in caplog.records)
    assert "dropped" in text and "dead after 1 attempts" in text
    assert "example.org" not in text and "Secretname" not in text and "Nurse" not in text


async def _dead_count(store: Store, count: int) -> bool:
    return len(await store.outbox_messages(dead_only=True)) == count
