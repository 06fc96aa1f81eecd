"""The one writer: signatures from concurrent requests are committed in batches (group commit).

Each request hands its signature to `submit` and waits for the commit of the batch it landed
in, so no answer is given before the row is durable. While one batch commits, the next one
gathers, so under load a single fsync covers many signatures.

The transaction runs on the writer's own thread as one call (queries.insert_signatures), so a
batch costs one hop from the event loop. With a hop per statement, as an async driver does,
each hop waits for the GIL while the loop is busy serving other requests, and a batch of eight
statements took ten milliseconds on a loaded loop instead of well under one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from widget_server import messages
from widget_server.core.models import NewSignature
from widget_server.errors import Unavailable
from widget_server.storage.sqlite import db, queries

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class WriteResult:
    created: bool  # False: this email had already signed (answered the same way)
    total: int  # the pledge's count after the commit


_Pending = tuple[NewSignature, "asyncio.Future[WriteResult]"]


class SignatureWriter:
    def __init__(
        self,
        database: Path,
        *,
        batch_size: int = 256,
        on_commit: Callable[[queries.BatchResult], None] | None = None,
    ) -> None:
        self._database = database
        self._batch_size = batch_size
        self._on_commit = on_commit
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._conn: sqlite3.Connection | None = None
        self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signature-writer")

    def start(self) -> None:
        self._conn = db.connect_sync(self._database)
        self._task = asyncio.create_task(self._run(), name="signature-writer")

    async def submit(self, signature: NewSignature) -> WriteResult:
        """Queue one signature and return once its batch is committed."""
        if self._closing or self._task is None or self._task.done():
            raise Unavailable(messages.RESTARTING)
        future: asyncio.Future[WriteResult] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((signature, future))
        return await future

    async def close(self) -> None:
        """Stop taking signatures, commit everything already queued, then stop."""
        self._closing = True
        if self._task is not None:
            await self._queue.join()
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._thread.shutdown(wait=True)
        if self._conn is not None:
            self._conn.close()
            self._conn = None

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

    async def _write(self, signatures: list[NewSignature]) -> queries.BatchResult:
        assert self._conn is not None, "start() opens the connection"
        loop = asyncio.get_running_loop()
        # Shielded: once a batch is handed to the thread it commits or fails as a whole, and
        # its requests must hear which, even if the writer task is being cancelled.
        return await asyncio.shield(
            loop.run_in_executor(self._thread, queries.insert_signatures, self._conn, signatures)
        )

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
                future.set_exception(
                    Unavailable(messages.NOT_RECORDED)
                )
            return
        created = set(result.inserted)
        for signature, future in batch:
            key = (signature.pledge_id, signature.email)
            is_new = key in created
            created.discard(key)  # the same email twice in one batch: only the first is new
            if not future.done():  # the client may have gone; the row is stored regardless
                future.set_result(WriteResult(is_new, result.totals[signature.pledge_id]))
        if self._on_commit:
            try:
                self._on_commit(result)
            except Exception:  # a stale cache must not stop the one writer: counts reload later
                log.exception("could not pass the new counts on")
