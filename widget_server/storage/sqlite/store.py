"""The SQLite engine of the Store: one file, WAL, every commit fsynced.

Reads, and the staff actions' and the outbox's writes, go through one aiosqlite connection.
Batches of signatures, and confirmations (which count a signature through the same code), go
through a plain sqlite3 connection on a thread of their own, the whole transaction in one call
(queries.insert_signatures, queries.confirm_pending), so a batch costs one hop from the event
loop: with a hop per statement, as an async driver makes, each hop waits for the GIL while the
loop serves other requests. Every sqlite3 error leaves this module as one of the project's own
(errors.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Coroutine, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import aiosqlite

from widget_server import messages
from widget_server.core.models import NewSignature, Partner, Pledge
from widget_server.errors import ConfigError, Conflict, NotFound, Unavailable
from widget_server.storage.sqlite import db, queries
from widget_server.storage.store import (
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
    Store,
)

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def _translated(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Driver errors become the project's: a unique guard → Conflict, anything else → Unavailable."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except sqlite3.IntegrityError as exc:
            if "UNIQUE" in str(exc):
                raise Conflict(messages.ALREADY_STORED) from None
            raise Unavailable(messages.DATABASE_PROBLEM.format(problem=exc)) from None
        except sqlite3.Error as exc:
            raise Unavailable(messages.DATABASE_PROBLEM.format(problem=exc)) from None

    return call


def _one_writer(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Writes on the shared connection one at a time: a statement sent while another write's
    transaction is open would join that transaction (and be rolled back with it), and a second
    BEGIN would fail."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        store = args[0]
        assert isinstance(store, SQLiteStore)
        async with store._writing:
            return await method(*args, **kwargs)

    return call


# How long an erasure waits for readers of an older snapshot before saying the old copy remains.
SCRUB_WAIT_SECONDS = 5.0

#: While signatures arrive, the staff area's kept counts are folded in from the rows at most this
#: often (queries.fold_kept_counts); every read of them folds first, so they are never behind.
FOLD_SECONDS = 1.0


class SQLiteStore(Store):
    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.location = str(self.path)
        self._conn: aiosqlite.Connection | None = None
        self._writing = asyncio.Lock()
        # Opened on the first batch: a CLI command that only reads never starts the thread.
        self._write_conn: sqlite3.Connection | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        self._folding: asyncio.Task[None] | None = None
        self._folded_at = 0.0  # loop.time() of the last fold started after a batch

    @property
    def conn(self) -> aiosqlite.Connection:
        if self._conn is None:
            raise Unavailable(messages.RESTARTING)
        return self._conn

    async def open(self) -> None:
        db.create_private(self.path)
        try:
            self._conn = await db.connect(self.path)
        except sqlite3.Error as exc:
            raise ConfigError(messages.NOT_A_DATABASE.format(path=self.path, problem=exc)) from None

    async def close(self) -> None:
        if self._folding is not None:
            await asyncio.gather(self._folding, return_exceptions=True)
            self._folding = None
        if self._write_thread is not None:
            self._write_thread.shutdown(wait=True)
            self._write_thread = None
        if self._write_conn is not None:
            self._write_conn.close()
            self._write_conn = None
        if self._conn is not None:
            await self._conn.close()
            self._conn = None

    async def migrate(self) -> int:
        return db.migrate(self.path)

    @_translated
    async def ping(self) -> None:
        await queries.ping(self.conn)

    async def backup(self, dest: Path) -> None:
        # Its own connections, so a store that was never opened can be backed up too.
        if not self.path.exists():
            raise NotFound(messages.NOTHING_TO_BACK_UP.format(path=self.path))
        try:
            await asyncio.to_thread(db.backup, self.path, dest)
        except sqlite3.Error as exc:
            raise Unavailable(messages.DATABASE_PROBLEM.format(problem=exc)) from None

    @_translated
    async def pledge_by_slug(self, slug: str) -> Pledge | None:
        return await queries.pledge_by_slug(self.conn, slug)

    @_translated
    @_one_writer
    async def insert_pledge(
        self,
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
        return await queries.insert_pledge(
            self.conn,
            slug=slug,
            title=title,
            statement_html=statement_html,
            goal=goal,
            privacy_url=privacy_url,
            contact=contact,
            now=now,
            confirm_email=confirm_email,
        )

    @_translated
    async def partner_by_id(self, partner_id: int) -> Partner | None:
        return await queries.partner_by_id(self.conn, partner_id)

    @_translated
    async def partner_by_name(self, pledge_id: int, name: str) -> Partner | None:
        return await queries.partner_by_name(self.conn, pledge_id, name)

    @_translated
    async def partners_of(self, pledge_id: int) -> list[Partner]:
        return await queries.partners_of(self.conn, pledge_id)

    @_translated
    @_one_writer
    async def insert_partner(self, *, pledge_id: int, name: str, origins: Sequence[str], now: str) -> Partner:
        return await queries.insert_partner(self.conn, pledge_id=pledge_id, name=name, origins=origins, now=now)

    @_translated
    @_one_writer
    async def rotate_partner(self, partner_id: int) -> Partner:
        return await queries.rotate_partner(self.conn, partner_id)

    @_translated
    @_one_writer
    async def revoke_partner(self, partner_id: int, now: str) -> None:
        await queries.revoke_partner(self.conn, partner_id, now)

    @_translated
    @_one_writer
    async def set_partner_origins(self, partner_id: int, origins: Sequence[str]) -> Partner:
        return await queries.set_partner_origins(self.conn, partner_id, origins)

    async def _on_writer_thread(self, action: Callable[..., T], *args: object) -> T:
        """`action(connection, *args)` on the signature writer's own connection and thread: the
        synchronous transactions that count signatures (a batch, a confirmation) run there."""
        if self._write_conn is None:
            self._write_conn = db.connect_sync(self.path)
            self._write_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signature-writer")
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._write_thread, action, self._write_conn, *args)
        except sqlite3.Error as exc:
            raise Unavailable(messages.DATABASE_PROBLEM.format(problem=exc)) from exc

    async def write_signatures(self, batch: Sequence[NewSignature], *, confirm_sends: int = 3) -> BatchResult:
        result = await self._on_writer_thread(queries.insert_signatures, batch, confirm_sends)
        now = asyncio.get_running_loop().time()
        if now - self._folded_at >= FOLD_SECONDS and (self._folding is None or self._folding.done()):
            # Queued behind this batch on the writer's thread; no answer waits for it.
            self._folded_at = now
            self._folding = asyncio.create_task(self._fold_quietly(), name="fold-kept-counts")
        return result

    async def _fold(self) -> None:
        """Bring the staff area's kept counts up to the last committed signature, on the writer's
        thread (where batches commit); with nothing to fold, one read and no thread started."""
        async with self.conn.execute(queries.FOLD_STATE) as cursor:
            mark, top = await cursor.fetchone() or (0, 0)
        if top > mark:
            await self._on_writer_thread(queries.fold_kept_counts)

    async def _fold_quietly(self) -> None:
        try:
            await self._fold()
        except (Unavailable, sqlite3.Error) as exc:  # folded again by the next batch or read
            log.warning("could not fold the staff counts: %s", exc)

    @_translated
    async def counts(self, pledge_id: int) -> tuple[int, dict[int, int]]:
        return await queries.counts(self.conn, pledge_id)

    @_translated
    async def day_counts(self, pledge_id: int) -> list[DayCount]:
        return await queries.day_counts(self.conn, pledge_id)

    @contextlib.asynccontextmanager
    async def export_rows(self, pledge_id: int) -> AsyncIterator[AsyncIterator[tuple[object, ...]]]:
        rows = queries.export_rows(self.conn, pledge_id)
        try:
            yield _translated_rows(rows)
        finally:
            await rows.aclose()

    @_translated
    async def signatures_of(self, email: str) -> list[dict[str, object]]:
        return await queries.signatures_of(self.conn, email)

    @_translated
    @_one_writer
    async def erase_signatures(self, email: str) -> int:
        return await queries.erase_signatures(self.conn, email)

    async def scrub(self) -> bool:
        # secure_delete zeroed the rows in the page versions the erasure wrote to the WAL; a
        # truncating checkpoint copies those over the main file and empties the WAL. It runs on a
        # connection of its own, so waiting for a reader with an older snapshot (a backup) holds
        # up no page view; past the wait it says so.
        try:
            return await asyncio.to_thread(db.checkpoint, self.path, SCRUB_WAIT_SECONDS)
        except sqlite3.Error as exc:
            raise Unavailable(messages.DATABASE_PROBLEM.format(problem=exc)) from None

    @_translated
    async def integrity(self) -> list[str]:
        await self._fold()
        return await queries.integrity(self.conn)

    @_translated
    async def is_empty(self) -> bool:
        return await queries.is_empty(self.conn)

    @contextlib.asynccontextmanager
    async def read_table(self, table: str) -> AsyncIterator[AsyncIterator[list[dict[str, object]]]]:
        await self._fold()
        chunks = queries.read_table(self.conn, table)
        try:
            yield _translated_rows(chunks)
        finally:
            await chunks.aclose()

    @_translated
    @_one_writer
    async def write_rows(self, table: str, rows: Sequence[dict[str, object]]) -> None:
        await queries.write_rows(self.conn, table, rows)

    @_translated
    @_one_writer
    async def finish_copy(self) -> None:
        await queries.finish_copy(self.conn)

    @_translated
    async def organisations(self, pledge_id: int, status: str | None = None) -> list[dict[str, object]]:
        return await queries.organisations(self.conn, pledge_id, status)

    @_translated
    async def approved_organisation_names(self, pledge_id: int) -> list[str]:
        return await queries.approved_organisation_names(self.conn, pledge_id)

    @_translated
    @_one_writer
    async def set_organisation_status(self, pledge_id: int, name: str, status: str, now: str) -> bool:
        return await queries.set_organisation_status(self.conn, pledge_id, name, status, now)

    # The staff area ---------------------------------------------------------------------------

    @_translated
    async def pledges(self) -> list[Pledge]:
        return await queries.pledges(self.conn)

    @_translated
    async def pledge_by_id(self, pledge_id: int) -> Pledge | None:
        return await queries.pledge_by_id(self.conn, pledge_id)

    @_translated
    @_one_writer
    async def update_pledge(
        self,
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
        return await queries.update_pledge(
            self.conn,
            pledge_id,
            title=title,
            statement_html=statement_html,
            goal=goal,
            privacy_url=privacy_url,
            contact=contact,
            optional_fields=optional_fields,
            closed_at=closed_at,
            confirm_email=confirm_email,
        )

    @_translated
    @_one_writer
    async def reinstate_partner(self, partner_id: int) -> Partner:
        return await queries.reinstate_partner(self.conn, partner_id)

    @_translated
    async def hour_counts(self, pledge_id: int, since_hour: str) -> list[HourCount]:
        await self._fold()
        return await queries.hour_counts(self.conn, pledge_id, since_hour)

    @_translated
    async def minute_counts(self, pledge_id: int, since_minute: str) -> list[MinuteCount]:
        await self._fold()
        return await queries.minute_counts(self.conn, pledge_id, since_minute)

    @_translated
    async def partner_totals(self, pledge_id: int) -> list[PartnerTotals]:
        await self._fold()
        return await queries.partner_totals(self.conn, pledge_id)

    @_translated
    async def occupation_counts(self, pledge_id: int, partner_id: int | None = None) -> list[OccupationCount]:
        await self._fold()
        return await queries.occupation_counts(self.conn, pledge_id, partner_id)

    @_translated
    async def source_counts(self, pledge_id: int) -> list[SourceCount]:
        await self._fold()
        return await queries.source_counts(self.conn, pledge_id)

    @contextlib.asynccontextmanager
    async def export_partner_rows(
        self, pledge_id: int, partner_id: int, opted_in_only: bool
    ) -> AsyncIterator[AsyncIterator[tuple[object, ...]]]:
        rows = queries.export_partner_rows(self.conn, pledge_id, partner_id, opted_in_only)
        try:
            yield _translated_rows(rows)
        finally:
            await rows.aclose()

    @_translated
    async def bursts(self, pledge_id: int, since: str, until: str, kind: str, at_least: int) -> list[Burst]:
        return await queries.bursts(self.conn, pledge_id, since, until, kind, at_least)

    @_translated
    async def count_matching(self, match: SignatureMatch) -> int:
        return await queries.count_matching(self.conn, match)

    @_translated
    @_one_writer
    async def invalidate_signatures(self, match: SignatureMatch) -> int:
        return await queries.invalidate_signatures(self.conn, match)

    @_translated
    async def staff_users(self) -> list[StaffUser]:
        return await queries.staff_users(self.conn)

    @_translated
    async def staff_user_by_email(self, email: str) -> StaffUser | None:
        return await queries.staff_user_by(self.conn, "email", email)

    @_translated
    async def staff_user_by_id(self, user_id: int) -> StaffUser | None:
        return await queries.staff_user_by(self.conn, "id", user_id)

    @_translated
    @_one_writer
    async def insert_staff_user(self, *, email: str, role: str, password_hash: str, now: str) -> StaffUser:
        return await queries.insert_staff_user(self.conn, email=email, role=role, password_hash=password_hash, now=now)

    @_translated
    @_one_writer
    async def delete_staff_user(self, user_id: int) -> bool:
        return await queries.delete_staff_user(self.conn, user_id)

    async def _update_staff_user(self, user_id: int, sql: str, params: tuple[object, ...]) -> StaffUser:
        try:
            return await queries.update_staff_user(self.conn, user_id, sql, params)
        except LookupError:
            raise NotFound(messages.STAFF_NO_ACCOUNT.format(email=f"#{user_id}")) from None

    @_translated
    @_one_writer
    async def set_staff_password(self, user_id: int, password_hash: str) -> StaffUser:
        return await self._update_staff_user(
            user_id, "password_hash = ?, session_epoch = session_epoch + 1", (password_hash,)
        )

    @_translated
    @_one_writer
    async def end_staff_sessions(self, user_id: int) -> StaffUser:
        return await self._update_staff_user(user_id, "session_epoch = session_epoch + 1", ())

    @_translated
    @_one_writer
    async def set_staff_role(self, user_id: int, role: str) -> StaffUser:
        return await self._update_staff_user(user_id, "role = ?", (role,))

    @_translated
    @_one_writer
    async def record_audit(self, *, at: str, actor: str, action: str, pledge: str, subject: str, detail: str) -> None:
        await queries.record_audit(
            self.conn, at=at, actor=actor, action=action, pledge=pledge, subject=subject, detail=detail
        )

    @_translated
    async def audit_entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        pledge: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        return await queries.audit_entries(
            self.conn, actor=actor, action=action, pledge=pledge, before_id=before_id, limit=limit
        )

    # Confirmed signatures ---------------------------------------------------------------------

    @_translated
    async def pending_signature(self, pending_id: int) -> PendingSignature | None:
        return await queries.pending_signature(self.conn, pending_id)

    async def confirm_pending(self, pending_id: int, now: str) -> ConfirmResult:
        return await self._on_writer_thread(queries.confirm_pending, pending_id, now)

    @_translated
    @_one_writer
    async def queue_reminders(self, signed_before: str, now: str | None = None) -> int:
        return await queries.queue_reminders(self.conn, signed_before, now or signed_before)

    @_translated
    @_one_writer
    async def purge_pending(self, signed_before: str) -> int:
        return await queries.purge_pending(self.conn, signed_before)

    @_translated
    async def confirmation_counts(self, pledge_id: int) -> dict[int, tuple[int, int]]:
        return await queries.confirmation_counts(self.conn, pledge_id)

    @_translated
    async def pending_counts(self, pledge_id: int) -> dict[int, int]:
        return await queries.pending_counts(self.conn, pledge_id)

    @_translated
    async def signature_by_id(self, signature_id: int) -> NewSignature | None:
        return await queries.signature_by_id(self.conn, signature_id)

    # Partner webhooks -------------------------------------------------------------------------

    @_translated
    @_one_writer
    async def set_partner_webhook(self, partner_id: int, url: str | None, secret: str | None) -> Partner:
        return await queries.set_partner_webhook(self.conn, partner_id, url, secret)

    @_translated
    async def partner_webhook(self, partner_id: int) -> tuple[str, str] | None:
        return await queries.partner_webhook(self.conn, partner_id)

    # The outbox -------------------------------------------------------------------------------

    # The worker's bookkeeping runs on the signature writer's thread and connection, between its
    # batches: a second writing connection would wait on the file lock (and make batches wait).

    async def claim_outbox(self, now: str, lease_until: str, limit: int) -> list[OutboxMessage]:
        return await self._on_writer_thread(queries.claim_outbox, now, lease_until, limit)

    async def outbox_sent(self, message_ids: Sequence[int]) -> None:
        if message_ids:
            await self._on_writer_thread(queries.outbox_sent, message_ids)

    async def outbox_failed(self, message_id: int, error: str, retry_at: str | None) -> None:
        await self._on_writer_thread(queries.outbox_failed, message_id, error, retry_at)

    @_translated
    async def outbox_message(self, message_id: int) -> OutboxMessage | None:
        return await queries.outbox_message(self.conn, message_id)

    @_translated
    async def outbox_messages(self, *, dead_only: bool = False, limit: int = 100) -> list[OutboxMessage]:
        return await queries.outbox_messages(self.conn, dead_only, limit)

    @_translated
    @_one_writer
    async def outbox_retry(self, message_id: int | None, now: str) -> int:
        return await queries.outbox_retry(self.conn, message_id, now)

    @_translated
    @_one_writer
    async def outbox_discard(self, message_id: int) -> bool:
        return await queries.outbox_discard(self.conn, message_id)


async def _translated_rows(rows: AsyncIterator[T]) -> AsyncIterator[T]:
    try:
        async for row in rows:
            yield row
    except sqlite3.Error as exc:
        raise Unavailable(messages.DATABASE_PROBLEM.format(problem=exc)) from None
