"""The outbox worker: sends what the outbox holds, in the server process, after the commit that queued it.

It claims due messages with a lease (`Store.claim_outbox`), hands each to the handler for its kind, and
records the outcome: a handler that returns sent it (`outbox_sent`); one that raises `Dropped` had
nothing left to send (`outbox_sent` too); `DeliveryFailed`, a timeout or any other exception is one failed
attempt (`outbox_failed`), due again after `first_retry × 2^attempts` with jitter, or dead once the
attempts run out. A process that dies mid-send leaves its lease behind, and the message is due again when
the lease runs out: a message is sent at least once, and carries its id so a receiver can drop a duplicate.

Sends run concurrently up to a small bound, and each is cut off after SEND_TIMEOUT, so no receiver holds
the worker for long; a webhook receiver that was slow to fail is "cooling": while one probe to it is in
flight, its other messages are not tried (nor counted as attempts: their leases run out and they come
back), so it cannot fill every slot and hold up confirmation emails behind it. The worker polls every
second or so (another process may have committed messages) and wakes at once on `wake()` (this
process's writer has). It claims when half its slots are free and records sent messages a batch at a
time, so that in a surge its bookkeeping is a few transactions, not several per message. It runs
housekeeping (reminders, purges) at start and every minute. Nothing personal reaches a log line:
kinds, ids and reasons only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from collections.abc import Awaitable, Callable, Mapping

from widget_server import messages
from widget_server.core.times import iso_utc
from widget_server.delivery.errors import DeliveryFailed, Dropped
from widget_server.settings import Settings
from widget_server.storage.store import OutboxMessage, Store

log = logging.getLogger(__name__)

Handler = Callable[[OutboxMessage], Awaitable[None]]
Housekeeping = Callable[[float], Awaitable[None]]

#: The longest one send may take before the worker abandons it as failed (the webhook POST gives up
#: sooner, after its own 10 s; an SMTP exchange well within it).
SEND_TIMEOUT = 15.0
#: A claimed message is leased for its send's timeout and this much more, so no other process claims it
#: while it is being sent; if this process dies, the message is due again once the lease runs out.
LEASE_MARGIN_SECONDS = 5.0
#: Sends in flight at once in one process.
CONCURRENCY = 16
#: Claims wait until at least this share of the slots is free (or none is busy), so that in a surge
#: one claim leases many messages, instead of one claim (one write transaction) per message sent.
CLAIM_WHEN_FREE = 0.5
#: A failure that took at least this long marks its webhook receiver as slow (see the module's doc).
SLOW_SECONDS = 5.0
#: How often the outbox is polled when nothing woke the worker: messages committed by other processes,
#: and retries falling due.
POLL_SECONDS = 1.0
#: How often housekeeping runs (reminders, purges), measured on the worker's clock.
HOUSEKEEPING_SECONDS = 60.0
#: While signing surges (`give_way()` says so), sends go one at a time, each followed by a pause so
#: that sending takes at most this share of the time: a person waiting at the form comes first, and
#: what is queued is durable, so it is sent when the surge passes (BENCHMARKS.md).
GIVE_WAY_SHARE = 0.1
#: The longest such pause after one send, so a slow receiver does not stop the others for long.
GIVE_WAY_MAX_PAUSE = 1.0
#: How long close() lets sends in flight finish before abandoning them (their leases run out).
CLOSE_GRACE_SECONDS = 5.0
#: Each wait before a retry is its doubling share times a factor drawn from this range, so messages that
#: failed together do not all come back at the same moment; narrow enough that each wait stays longer
#: than the one before it.
JITTER = (0.8, 1.2)


def retry_delay(settings: Settings, attempts: int, draw: Callable[[], float] = random.random) -> float:
    """Seconds until the next attempt after `attempts` earlier failed ones (this one not counted)."""
    low, high = JITTER
    return float(settings.outbox_first_retry_seconds * 2**attempts * (low + (high - low) * draw()))


def retry_at(
    settings: Settings, message: OutboxMessage, now: float, draw: Callable[[], float] = random.random
) -> float | None:
    """When a message that has just failed is due again (whole seconds, as the outbox stores them, rounded
    up so no retry comes early), or None when that was its last attempt."""
    if message.attempts + 1 >= settings.outbox_attempts:
        return None
    return float(math.ceil(now + retry_delay(settings, message.attempts, draw)))


class OutboxWorker:
    """Drains the outbox of one store; `start()` in the app's lifespan, `close()` before the store closes."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        handlers: Mapping[str, Handler],
        housekeeping: Housekeeping | None = None,
        clock: Callable[[], float] = time.time,
        *,
        concurrency: int = CONCURRENCY,
        poll_seconds: float = POLL_SECONDS,
        send_timeout: float = SEND_TIMEOUT,
        slow_seconds: float = SLOW_SECONDS,
        close_grace: float = CLOSE_GRACE_SECONDS,
        draw: Callable[[], float] = random.random,
        give_way: Callable[[], bool] | None = None,
    ) -> None:
        self._store = store
        self._settings = settings
        self._handlers = dict(handlers)
        self._housekeeping = housekeeping
        self._clock = clock
        self._concurrency = concurrency
        self._poll_seconds = poll_seconds
        self._send_timeout = send_timeout
        self._lease_seconds = send_timeout + LEASE_MARGIN_SECONDS
        self._slow_seconds = slow_seconds
        self._close_grace = close_grace
        self._draw = draw
        self._give_way = give_way
        self._in_turn = asyncio.Lock()  # sends while giving way go through it one at a time
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._sends: set[asyncio.Task[None]] = set()
        # Messages sent (or dropped) whose removal is not yet recorded: removed together, one
        # transaction for all that finished while the previous removal was being written.
        self._finished: list[int] = []
        self._recording: asyncio.Task[None] | None = None
        # The last claim found fewer messages due than it could take: a send finishing is then no
        # reason to look again (a commit's wake(), a retry falling due or the poll is).
        self._drained = False
        self._closing = False
        self._next_housekeeping = 0.0
        # Webhook receivers (partner ids) that were slow to fail, and those with a probe in flight.
        self._cooling: set[int] = set()
        self._probing: set[int] = set()
        self._retry_timers: set[asyncio.TimerHandle] = set()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="outbox-worker")

    def wake(self) -> None:
        """Look at the outbox now rather than at the next poll (a commit has just queued messages)."""
        self._drained = False
        self._wakeup.set()

    async def close(self) -> None:
        """Stop claiming; let sends in flight finish for a moment, then abandon them (their leases run out,
        so another process, or this one restarted, sends them)."""
        self._closing = True
        for timer in self._retry_timers:
            timer.cancel()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._sends:
            _, unfinished = await asyncio.wait(self._sends, timeout=self._close_grace)
            for task in unfinished:
                task.cancel()
            if unfinished:
                await asyncio.wait(unfinished)
                log.info("abandoned %d sends in flight; they are sent again when their leases run out", len(unfinished))
        while self._recording is not None:
            await self._recording

    # The loop ---------------------------------------------------------------------------------

    async def _run(self) -> None:
        while not self._closing:
            self._wakeup.clear()
            await self._housekeep_if_due()
            free = self._concurrency - len(self._sends)
            if self._sends and free < self._concurrency * CLAIM_WHEN_FREE:
                await self._wakeup.wait()  # a send finishing, or a commit, looks again
                continue
            claimed = await self._claim(free)
            self._drained = len(claimed) < free
            for message in claimed:
                task = asyncio.create_task(self._send(message), name=f"outbox-send-{message.id}")
                self._sends.add(task)
                task.add_done_callback(self._sent)
            if claimed and len(claimed) == free:
                # There may be more due: claim again as soon as a slot frees up.
                await self._wakeup.wait()
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wakeup.wait(), self._poll_seconds)

    def _sent(self, task: asyncio.Task[None]) -> None:
        self._sends.discard(task)
        if not self._drained:
            self._wakeup.set()  # a slot is free for messages still due

    async def _housekeep_if_due(self) -> None:
        now = self._clock()
        if self._housekeeping is None or now < self._next_housekeeping:
            return
        self._next_housekeeping = now + HOUSEKEEPING_SECONDS
        try:
            await self._housekeeping(now)
        except Exception as exc:  # the next round tries again; sending goes on meanwhile
            log.warning("outbox housekeeping failed (%s); trying again in a minute", type(exc).__name__)

    async def _claim(self, limit: int) -> list[OutboxMessage]:
        now = self._clock()
        try:
            return await self._store.claim_outbox(iso_utc(now), iso_utc(math.ceil(now + self._lease_seconds)), limit)
        except Exception as exc:  # the database is away: the next poll tries again
            log.warning("could not read the outbox (%s); trying again shortly", type(exc).__name__)
            return []

    # One message ------------------------------------------------------------------------------

    async def _send(self, message: OutboxMessage) -> None:
        handler = self._handlers.get(message.kind)
        if handler is None:
            await self._failed(message, messages.DELIVERY_NO_HANDLER.format(kind=message.kind), 0.0)
            return
        turn = self._give_way is not None and self._give_way()
        if turn:
            claimed_at = time.monotonic()
            await self._in_turn.acquire()
            # Waited so long for its turn that its lease is running out: leave it to come back.
            if time.monotonic() - claimed_at > self._lease_seconds / 2:
                self._in_turn.release()
                return
        receiver = message.partner_id if message.kind == "webhook" else None
        if receiver is not None and receiver in self._cooling and receiver in self._probing:
            # Not an attempt: nothing was tried. Its lease simply runs out and it comes back then,
            # so a receiver that is slow for a while does not use up its messages' attempts.
            return
        probe = receiver is not None and receiver in self._cooling
        if receiver is not None and probe:
            self._probing.add(receiver)
        started = time.monotonic()
        try:
            async with asyncio.timeout(self._send_timeout):
                await handler(message)
        except Dropped as exc:
            log.info("outbox message %d (%s) dropped: %s", message.id, message.kind, exc.reason)
            await self._done(message)
        except DeliveryFailed as exc:
            await self._failed(message, exc.reason, time.monotonic() - started, receiver, permanent=exc.permanent)
        except TimeoutError:
            reason = messages.DELIVERY_SEND_TIMEOUT.format(seconds=self._send_timeout)
            await self._failed(message, reason, time.monotonic() - started, receiver)
        except Exception as exc:  # a bug must not stop the worker; its text may hold data, so not logged
            reason = messages.DELIVERY_UNEXPECTED.format(error=type(exc).__name__)
            await self._failed(message, reason, time.monotonic() - started, receiver)
        else:
            if receiver is not None:
                self._cooling.discard(receiver)
            await self._done(message)
        finally:
            if receiver is not None and probe:
                self._probing.discard(receiver)
            if turn:
                pause = min((time.monotonic() - started) * (1 / GIVE_WAY_SHARE - 1), GIVE_WAY_MAX_PAUSE)
                try:
                    await asyncio.sleep(pause)
                finally:
                    self._in_turn.release()

    async def _done(self, message: OutboxMessage) -> None:
        self._finished.append(message.id)
        if self._recording is None:
            self._recording = asyncio.create_task(self._record_finished(), name="outbox-sent")

    async def _record_finished(self) -> None:
        """Remove every finished message from the outbox, a batch at a time, until none is left."""
        try:
            while self._finished:
                ids, self._finished = self._finished, []
                try:
                    await self._store.outbox_sent(ids)
                except Exception as exc:  # their leases run out and they are sent again: receivers drop duplicates
                    log.warning("%d outbox messages were sent but not marked so (%s)", len(ids), type(exc).__name__)
        finally:
            self._recording = None

    async def _failed(
        self, message: OutboxMessage, reason: str, took: float, receiver: int | None = None, *, permanent: bool = False
    ) -> None:
        if receiver is not None and took >= self._slow_seconds:
            self._cooling.add(receiver)
        elif receiver is not None:
            self._cooling.discard(receiver)  # it answered (or refused) quickly: not slow any more
        now = self._clock()
        due = None if permanent else retry_at(self._settings, message, now, self._draw)
        attempt = message.attempts + 1
        try:
            await self._store.outbox_failed(message.id, reason, None if due is None else iso_utc(due))
        except Exception as exc:
            log.warning("could not record a failed outbox message %d (%s)", message.id, type(exc).__name__)
            return
        if due is None:
            log.warning(
                "outbox message %d (%s) is dead after %d attempts: %s", message.id, message.kind, attempt, reason
            )
            return
        log.info(
            "outbox message %d (%s) failed (attempt %d of %d): %s; next attempt in %.0f s",
            message.id,
            message.kind,
            attempt,
            self._settings.outbox_attempts,
            reason,
            due - now,
        )
        if not self._closing:
            # Look again when it falls due, rather than up to a poll interval later.
            loop = asyncio.get_running_loop()
            self._retry_timers = {t for t in self._retry_timers if t.when() > loop.time()}
            self._retry_timers.add(loop.call_later(max(0.0, due - now) + 0.01, self.wake))
