"""The one writer: signatures from concurrent requests are committed in batches (group commit).

Each request hands its signature to `submit` and waits for the commit of the batch it landed
in, so no answer is given before the row is durable. While one batch commits, the next one
gathers, so under load a single fsync covers many signatures.

Each batch is one `Store.write_signatures` call, one transaction whatever the engine; how the
engine runs it (the SQLite engine: on a thread of its own, in one hop) is the engine's business.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from widget_server import messages
from widget_server.core.models import NewSignature
from widget_server.errors import Unavailable
from widget_server.storage.store import BatchResult, Store

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    # False: this email had already signed, or was already waiting for confirmation (answered
    # the same way); True for a new signature, counted or pending.
    created: bool
    total: int  # the pledge's count after the commit
    # The batch held this signature alone: its commit's time is this signature's own. In a batch
    # with others, every member is answered at the one commit, so its time tells nothing of it.
    alone: bool = True


_Pending = tuple[NewSignature, "asyncio.Future[WriteResult]"]

#: Signing "surges" for this long after a batch that held more than one signature: signatures are
#: arriving faster than one commit takes, so work that can wait (the outbox) gives way.
SURGE_SECONDS = 0.5


class SignatureWriter:
    def __init__(
        self,
        store: Store,
        *,
        batch_size: int = 256,
        confirm_sends: int = 3,
        on_commit: Callable[[BatchResult], None] | None = None,
    ) -> None:
        self._store = store
        self._batch_size = batch_size
        self._confirm_sends = confirm_sends  # confirmation emails per pending signature, at most
        self._on_commit = on_commit
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._last_shared = -SURGE_SECONDS  # time.monotonic() of the last batch of several

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="signature-writer")

    async def submit(self, signature: NewSignature) -> WriteResult:
        """Queue one signature and return once its batch is committed."""
        if self._closing or self._task is None or self._task.done():
            raise Unavailable(messages.RESTARTING)
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((signature, future))
        return await future

    def surging(self) -> bool:
        """Whether signatures arrive faster than one commit takes (a batch of several was committed
        within SURGE_SECONDS): the outbox worker then gives way (delivery/worker.py)."""
        return time.monotonic() - self._last_shared < SURGE_SECONDS

    async def close(self) -> None:
        """Stop taking signatures, commit everything already queued, then stop."""
        self._closing = True
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self._batch_size and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            try:
                await self._commit(batch)
            finally:
                for _ in batch:
                    self._queue.task_done()

    async def _write(self, signatures: list[NewSignature]) -> BatchResult:
        # Shielded: once a batch is handed to the store it commits or fails as a whole, and
        # its requests must hear which, even if the writer task is being cancelled.
        return await asyncio.shield(self._store.write_signatures(signatures, confirm_sends=self._confirm_sends))

    async def _commit(self, batch: list[_Pending]) -> None:
        try:
            result = await self._write([s for s, _ in batch])
        except Exception:
            if len(batch) > 1:
                # One bad row must not fail its neighbours: retry them one by one.
                for item in batch:
                    await self._commit([item])
                return
            log.exception("could not write a signature")
            _, future = batch[0]
            if not future.done():
                future.set_exception(Unavailable(messages.NOT_RECORDED))
            return
        created = result.inserted | result.pending
        alone = len(batch) == 1
        if not alone:
            self._last_shared = time.monotonic()
        for signature, future in batch:
            key = (signature.pledge_id, signature.email)
            is_new = key in created
            created.discard(key)  # the same email twice in one batch: only the first is new
            if not future.done():  # the client may have gone; the row is stored regardless
                future.set_result(WriteResult(is_new, result.totals[signature.pledge_id], alone))
        if self._on_commit:
            try:
                self._on_commit(result)
            except Exception:  # a stale cache must not stop the one writer: counts reload later
                log.exception("could not pass the new counts on")
