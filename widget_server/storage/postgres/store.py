"""The PostgreSQL engine of the Store: for several server processes on one or more hosts.

A pool of asyncpg connections serves every read and write; each write is one transaction. Batches
of signatures from the group-commit writer are one `INSERT … SELECT FROM unnest(…)` plus the kept
counts, in one transaction, so a batch costs a handful of round trips whatever its size.
Migrations run under an advisory lock, so processes starting together apply each one once.
Every driver error leaves this module as one of the project's own (errors.py); a database that
went away answers Unavailable and the pool reconnects by itself when it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import shutil
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Sequence
from importlib import resources
from pathlib import Path
from typing import Any, ParamSpec, TypeVar
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from widget_server import messages
from widget_server.core.models import NewSignature, Partner, Pledge
from widget_server.errors import ConfigError, Conflict, NotFound, Unavailable
from widget_server.storage.postgres import queries
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

# Any fixed number, the same in every process: the lock that makes migrations run once.
MIGRATION_LOCK = 0x77696467  # "widg"
# Two committers that touched the same rows in another order (should not happen: rows are taken in
# one order) or a serialisation failure: the whole transaction is tried again.
RETRYABLE = (asyncpg.DeadlockDetectedError, asyncpg.SerializationError)
CONNECTION_LOST = (
    OSError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    asyncpg.CannotConnectNowError,
    asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError,
)


def _unavailable(exc: BaseException) -> Unavailable:
    # The driver's text can hold the host and user; people are told only what kind of problem it is.
    return Unavailable(messages.DATABASE_PROBLEM.format(problem=type(exc).__name__))


def _translated(method: Callable[P, Coroutine[Any, Any, T]]) -> Callable[P, Coroutine[Any, Any, T]]:
    """Driver errors become the project's: a unique guard → Conflict, anything else → Unavailable."""

    @functools.wraps(method)
    async def call(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return await method(*args, **kwargs)
        except asyncpg.UniqueViolationError:
            raise Conflict(messages.ALREADY_STORED) from None
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            log.warning("database call %s failed: %s", method.__name__, type(exc).__name__)
            raise _unavailable(exc) from None

    return call


def migrations() -> list[tuple[int, str]]:
    """(version, SQL) for every file in migrations/, in order."""
    found = []
    for entry in resources.files("widget_server.storage.postgres.migrations").iterdir():
        if entry.name.endswith(".sql"):
            found.append((int(entry.name.split("_", 1)[0]), entry.read_text()))
    return sorted(found)


def redacted(url: str) -> str:
    """The URL without its password, for logs and messages."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


class PostgresStore(Store):
    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.location = redacted(url)
        self._pool_size = pool_size
        self._pool: asyncpg.Pool | None = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise Unavailable(messages.RESTARTING)
        return self._pool

    async def open(self) -> None:
        try:
            # min_size=0: a process starts even while the database is briefly away, and the pool
            # connects again by itself once it is back.
            self._pool = await asyncpg.create_pool(
                self.url, min_size=0, max_size=self._pool_size, command_timeout=30, timeout=10
            )
            async with self._pool.acquire() as conn:
                await conn.fetchval("SELECT 1")
        except (asyncpg.InvalidCatalogNameError, asyncpg.InvalidAuthorizationSpecificationError) as exc:
            await self.close()
            raise ConfigError(messages.CANNOT_OPEN.format(path=self.location, problem=exc)) from None
        except (asyncpg.PostgresError, *CONNECTION_LOST, ValueError) as exc:
            await self.close()
            raise ConfigError(messages.CANNOT_OPEN.format(path=self.location, problem=type(exc).__name__)) from None

    async def close(self) -> None:
        if self._pool is not None:
            pool, self._pool = self._pool, None
            await pool.close()

    async def migrate(self) -> int:
        try:
            async with self.pool.acquire() as conn:
                await conn.execute("SELECT pg_advisory_lock($1)", MIGRATION_LOCK)
                try:
                    await conn.execute(
                        "CREATE TABLE IF NOT EXISTS schema_migrations"
                        " (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                    )
                    done = {row[0] for row in await conn.fetch("SELECT version FROM schema_migrations")}
                    for version, script in migrations():
                        if version in done:
                            continue
                        async with conn.transaction():
                            await conn.execute(script)
                            await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
                        log.info("applied migration %04d", version)
                    return int(await conn.fetchval("SELECT max(version) FROM schema_migrations") or 0)
                finally:
                    await conn.execute("SELECT pg_advisory_unlock($1)", MIGRATION_LOCK)
        except asyncpg.PostgresError as exc:
            raise ConfigError(messages.NOT_A_DATABASE.format(path=self.location, problem=exc)) from None
        except CONNECTION_LOST as exc:
            raise _unavailable(exc) from None

    @_translated
    async def ping(self) -> None:
        async with self.pool.acquire() as conn:
            await conn.fetchval("SELECT 1")

    async def backup(self, dest: Path) -> None:
        """`pg_dump` in its custom format (restore with `pg_restore`); no open pool needed."""
        pg_dump = shutil.which("pg_dump")
        if pg_dump is None:
            raise ConfigError(messages.NO_PG_DUMP)
        process = await asyncio.create_subprocess_exec(
            pg_dump,
            "--format=custom",
            "--no-owner",
            f"--file={dest}",
            self.url,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await process.communicate()
        if process.returncode != 0:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
            problem = stderr.decode(errors="replace").strip().splitlines()[-1:] or ["pg_dump failed"]
            raise Unavailable(messages.DATABASE_PROBLEM.format(problem=problem[0].replace(self.url, self.location)))
        os.chmod(dest, 0o600)

    async def _run(self, action: Callable[[asyncpg.Connection], Awaitable[T]], attempts: int = 3) -> T:
        """`action` in one transaction, tried again when the database asks for it (deadlock, serialisation)."""
        for attempt in range(attempts):
            try:
                async with self.pool.acquire() as conn, conn.transaction():
                    return await action(conn)
            except RETRYABLE:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    @_translated
    async def pledge_by_slug(self, slug: str) -> Pledge | None:
        async with self.pool.acquire() as conn:
            return await queries.pledge_by_slug(conn, slug)

    @_translated
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
        async with self.pool.acquire() as conn:
            return await queries.insert_pledge(
                conn,
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
        async with self.pool.acquire() as conn:
            return await queries.partner_by_id(conn, partner_id)

    @_translated
    async def partner_by_name(self, pledge_id: int, name: str) -> Partner | None:
        async with self.pool.acquire() as conn:
            return await queries.partner_by_name(conn, pledge_id, name)

    @_translated
    async def partners_of(self, pledge_id: int) -> list[Partner]:
        async with self.pool.acquire() as conn:
            return await queries.partners_of(conn, pledge_id)

    @_translated
    async def insert_partner(self, *, pledge_id: int, name: str, origins: Sequence[str], now: str) -> Partner:
        async with self.pool.acquire() as conn:
            return await queries.insert_partner(conn, pledge_id=pledge_id, name=name, origins=origins, now=now)

    @_translated
    async def rotate_partner(self, partner_id: int) -> Partner:
        async with self.pool.acquire() as conn:
            return await queries.rotate_partner(conn, partner_id)

    @_translated
    async def revoke_partner(self, partner_id: int, now: str) -> None:
        async with self.pool.acquire() as conn:
            await queries.revoke_partner(conn, partner_id, now)

    @_translated
    async def set_partner_origins(self, partner_id: int, origins: Sequence[str]) -> Partner:
        async with self.pool.acquire() as conn:
            return await queries.set_partner_origins(conn, partner_id, origins)

    @_translated
    async def write_signatures(self, batch: Sequence[NewSignature], *, confirm_sends: int = 3) -> BatchResult:
        return await self._run(lambda conn: queries.insert_signatures(conn, batch, confirm_sends))

    @_translated
    async def counts(self, pledge_id: int) -> tuple[int, dict[int, int]]:
        async with self.pool.acquire() as conn:
            return await queries.counts(conn, pledge_id)

    @_translated
    async def day_counts(self, pledge_id: int) -> list[DayCount]:
        async with self.pool.acquire() as conn:
            return await queries.day_counts(conn, pledge_id)

    @contextlib.asynccontextmanager
    async def export_rows(self, pledge_id: int) -> AsyncIterator[AsyncIterator[tuple[object, ...]]]:
        try:
            async with self.pool.acquire() as conn, conn.transaction(readonly=True):
                yield _translated_rows(queries.export_rows(conn, pledge_id))
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            raise _unavailable(exc) from None

    @_translated
    async def signatures_of(self, email: str) -> list[dict[str, object]]:
        async with self.pool.acquire() as conn:
            return await queries.signatures_of(conn, email)

    @_translated
    async def erase_signatures(self, email: str) -> int:
        # Dead row versions are removed by (auto)vacuum; see docs/deploy.md for what erasure means on disk.
        return await self._run(lambda conn: queries.erase_signatures(conn, email))

    @_translated
    async def scrub(self) -> bool:
        # VACUUM removes the dead row versions an erasure left, once no snapshot needs them; it
        # cannot run in a transaction, and it cannot vouch for WAL segments or free space (SECURITY.md).
        async with self.pool.acquire() as conn:
            await conn.execute("VACUUM signatures, organisations, pending_signatures")
            oldest = await conn.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE backend_xmin IS NOT NULL AND pid != pg_backend_pid()"
                " AND datname = current_database()"
            )
        return not oldest

    @_translated
    async def integrity(self) -> list[str]:
        async with self.pool.acquire() as conn:
            return await queries.integrity(conn)

    @_translated
    async def is_empty(self) -> bool:
        async with self.pool.acquire() as conn:
            return await queries.is_empty(conn)

    @contextlib.asynccontextmanager
    async def read_table(self, table: str) -> AsyncIterator[AsyncIterator[list[dict[str, object]]]]:
        try:
            async with self.pool.acquire() as conn, conn.transaction(readonly=True):
                yield _translated_rows(queries.read_table(conn, table))
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            raise _unavailable(exc) from None

    @_translated
    async def write_rows(self, table: str, rows: Sequence[dict[str, object]]) -> None:
        await self._run(lambda conn: queries.write_rows(conn, table, rows), attempts=1)

    @_translated
    async def finish_copy(self) -> None:
        async with self.pool.acquire() as conn:
            await queries.finish_copy(conn)

    @_translated
    async def organisations(self, pledge_id: int, status: str | None = None) -> list[dict[str, object]]:
        async with self.pool.acquire() as conn:
            return await queries.organisations(conn, pledge_id, status)

    @_translated
    async def approved_organisation_names(self, pledge_id: int) -> list[str]:
        async with self.pool.acquire() as conn:
            return await queries.approved_organisation_names(conn, pledge_id)

    @_translated
    async def set_organisation_status(self, pledge_id: int, name: str, status: str, now: str) -> bool:
        async with self.pool.acquire() as conn:
            return await queries.set_organisation_status(conn, pledge_id, name, status, now)

    # The staff area ---------------------------------------------------------------------------

    @_translated
    async def pledges(self) -> list[Pledge]:
        async with self.pool.acquire() as conn:
            return await queries.pledges(conn)

    @_translated
    async def pledge_by_id(self, pledge_id: int) -> Pledge | None:
        async with self.pool.acquire() as conn:
            return await queries.pledge_by_id(conn, pledge_id)

    @_translated
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
        async with self.pool.acquire() as conn:
            return await queries.update_pledge(
                conn,
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
    async def reinstate_partner(self, partner_id: int) -> Partner:
        async with self.pool.acquire() as conn:
            return await queries.reinstate_partner(conn, partner_id)

    @_translated
    async def hour_counts(self, pledge_id: int, since_hour: str) -> list[HourCount]:
        async with self.pool.acquire() as conn:
            return await queries.hour_counts(conn, pledge_id, since_hour)

    @_translated
    async def minute_counts(self, pledge_id: int, since_minute: str) -> list[MinuteCount]:
        async with self.pool.acquire() as conn:
            return await queries.minute_counts(conn, pledge_id, since_minute)

    @_translated
    async def partner_totals(self, pledge_id: int) -> list[PartnerTotals]:
        async with self.pool.acquire() as conn:
            return await queries.partner_totals(conn, pledge_id)

    @_translated
    async def occupation_counts(self, pledge_id: int, partner_id: int | None = None) -> list[OccupationCount]:
        async with self.pool.acquire() as conn:
            return await queries.occupation_counts(conn, pledge_id, partner_id)

    @_translated
    async def source_counts(self, pledge_id: int) -> list[SourceCount]:
        async with self.pool.acquire() as conn:
            return await queries.source_counts(conn, pledge_id)

    @contextlib.asynccontextmanager
    async def export_partner_rows(
        self, pledge_id: int, partner_id: int, opted_in_only: bool
    ) -> AsyncIterator[AsyncIterator[tuple[object, ...]]]:
        try:
            async with self.pool.acquire() as conn, conn.transaction(readonly=True):
                yield _translated_rows(queries.export_partner_rows(conn, pledge_id, partner_id, opted_in_only))
        except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
            raise _unavailable(exc) from None

    @_translated
    async def bursts(self, pledge_id: int, since: str, until: str, kind: str, at_least: int) -> list[Burst]:
        async with self.pool.acquire() as conn:
            return await queries.bursts(conn, pledge_id, since, until, kind, at_least)

    @_translated
    async def count_matching(self, match: SignatureMatch) -> int:
        async with self.pool.acquire() as conn:
            return await queries.count_matching(conn, match)

    @_translated
    async def invalidate_signatures(self, match: SignatureMatch) -> int:
        return await self._run(lambda conn: queries.invalidate_signatures(conn, match))

    @_translated
    async def staff_users(self) -> list[StaffUser]:
        async with self.pool.acquire() as conn:
            return await queries.staff_users(conn)

    @_translated
    async def staff_user_by_email(self, email: str) -> StaffUser | None:
        async with self.pool.acquire() as conn:
            return await queries.staff_user_by(conn, "email", email)

    @_translated
    async def staff_user_by_id(self, user_id: int) -> StaffUser | None:
        async with self.pool.acquire() as conn:
            return await queries.staff_user_by(conn, "id", user_id)

    @_translated
    async def insert_staff_user(self, *, email: str, role: str, password_hash: str, now: str) -> StaffUser:
        async with self.pool.acquire() as conn:
            return await queries.insert_staff_user(conn, email=email, role=role, password_hash=password_hash, now=now)

    @_translated
    async def delete_staff_user(self, user_id: int) -> bool:
        async with self.pool.acquire() as conn:
            return await queries.delete_staff_user(conn, user_id)

    async def _update_staff_user(self, user_id: int, sql: str, params: tuple[object, ...]) -> StaffUser:
        async with self.pool.acquire() as conn:
            user = await queries.update_staff_user(conn, user_id, sql, params)
        if user is None:
            raise NotFound(messages.STAFF_NO_ACCOUNT.format(email=f"#{user_id}"))
        return user

    @_translated
    async def set_staff_password(self, user_id: int, password_hash: str) -> StaffUser:
        return await self._update_staff_user(
            user_id, "password_hash = $2, session_epoch = session_epoch + 1", (password_hash,)
        )

    @_translated
    async def end_staff_sessions(self, user_id: int) -> StaffUser:
        return await self._update_staff_user(user_id, "session_epoch = session_epoch + 1", ())

    @_translated
    async def set_staff_role(self, user_id: int, role: str) -> StaffUser:
        return await self._update_staff_user(user_id, "role = $2", (role,))

    @_translated
    async def record_audit(self, *, at: str, actor: str, action: str, pledge: str, subject: str, detail: str) -> None:
        async with self.pool.acquire() as conn:
            await queries.record_audit(
                conn, at=at, actor=actor, action=action, pledge=pledge, subject=subject, detail=detail
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
        async with self.pool.acquire() as conn:
            return await queries.audit_entries(
                conn, actor=actor, action=action, pledge=pledge, before_id=before_id, limit=limit
            )

    # Confirmed signatures ---------------------------------------------------------------------

    @_translated
    async def pending_signature(self, pending_id: int) -> PendingSignature | None:
        async with self.pool.acquire() as conn:
            return await queries.pending_signature(conn, pending_id)

    @_translated
    async def confirm_pending(self, pending_id: int, now: str) -> ConfirmResult:
        return await self._run(lambda conn: queries.confirm_pending(conn, pending_id, now))

    @_translated
    async def queue_reminders(self, signed_before: str, now: str | None = None) -> int:
        async with self.pool.acquire() as conn:
            return await queries.queue_reminders(conn, signed_before, now or signed_before)

    @_translated
    async def purge_pending(self, signed_before: str) -> int:
        return await self._run(lambda conn: queries.purge_pending(conn, signed_before))

    @_translated
    async def confirmation_counts(self, pledge_id: int) -> dict[int, tuple[int, int]]:
        async with self.pool.acquire() as conn:
            return await queries.confirmation_counts(conn, pledge_id)

    @_translated
    async def pending_counts(self, pledge_id: int) -> dict[int, int]:
        async with self.pool.acquire() as conn:
            return await queries.pending_counts(conn, pledge_id)

    @_translated
    async def signature_by_id(self, signature_id: int) -> NewSignature | None:
        async with self.pool.acquire() as conn:
            return await queries.signature_by_id(conn, signature_id)

    # Partner webhooks -------------------------------------------------------------------------

    @_translated
    async def set_partner_webhook(self, partner_id: int, url: str | None, secret: str | None) -> Partner:
        async with self.pool.acquire() as conn:
            return await queries.set_partner_webhook(conn, partner_id, url, secret)

    @_translated
    async def partner_webhook(self, partner_id: int) -> tuple[str, str] | None:
        async with self.pool.acquire() as conn:
            return await queries.partner_webhook(conn, partner_id)

    # The outbox -------------------------------------------------------------------------------

    @_translated
    async def claim_outbox(self, now: str, lease_until: str, limit: int) -> list[OutboxMessage]:
        async def claim(conn: asyncpg.Connection) -> list[OutboxMessage]:
            await queries.unflushed(conn)
            return await queries.claim_outbox(conn, now, lease_until, limit)

        return await self._run(claim)

    @_translated
    async def outbox_sent(self, message_ids: Sequence[int]) -> None:
        if message_ids:
            async with self.pool.acquire() as conn, conn.transaction():
                await queries.unflushed(conn)
                await queries.outbox_sent(conn, message_ids)

    @_translated
    async def outbox_failed(self, message_id: int, error: str, retry_at: str | None) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            await queries.unflushed(conn)
            await queries.outbox_failed(conn, message_id, error, retry_at)

    @_translated
    async def outbox_message(self, message_id: int) -> OutboxMessage | None:
        async with self.pool.acquire() as conn:
            return await queries.outbox_message(conn, message_id)

    @_translated
    async def outbox_messages(self, *, dead_only: bool = False, limit: int = 100) -> list[OutboxMessage]:
        async with self.pool.acquire() as conn:
            return await queries.outbox_messages(conn, dead_only, limit)

    @_translated
    async def outbox_retry(self, message_id: int | None, now: str) -> int:
        async with self.pool.acquire() as conn:
            return await queries.outbox_retry(conn, message_id, now)

    @_translated
    async def outbox_discard(self, message_id: int) -> bool:
        async with self.pool.acquire() as conn:
            return await queries.outbox_discard(conn, message_id)


async def _translated_rows(rows: AsyncIterator[T]) -> AsyncIterator[T]:
    try:
        async for row in rows:
            yield row
    except (asyncpg.PostgresError, *CONNECTION_LOST) as exc:
        raise _unavailable(exc) from None
