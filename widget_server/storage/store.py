"""The storage interface: the only thing in the service that holds database connections.

A `Store` opens and closes its connections, runs its engine's migrations, runs each write in one
transaction, writes batches of signatures for the group-commit writer, reads rows, counts and
reports, backs up, and turns its driver's errors into the project's own (errors.py): `Conflict` for
a unique guard that said no, `Unavailable` for a database that cannot be reached or is busy,
`ConfigError` for a file that is not a widget database. Everything above it (the writer, the
catalog, the use cases, the CLI, the demo, the tests) takes a Store and never a connection or path.

`storage/engines.py` picks the engine a URL names (`open_store(url)`): SQLite for a path or
`sqlite:///path` (the default), PostgreSQL for `postgresql://user:password@host:port/database`.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from widget_server.core.models import NewSignature, Partner, Pledge


@dataclass(frozen=True)
class BatchResult:
    """What one committed batch did: the new (pledge_id, email) pairs and the counts after it."""

    inserted: set[tuple[int, str]]
    totals: dict[int, int]  # pledge id → its count after the commit
    # partner id → (its pledge id, its count after the commit)
    partner_counts: dict[int, tuple[int, int]] = field(default_factory=dict)
    # (pledge_id, email) of pending signatures (NewSignature.pending) stored for the first time
    pending: set[tuple[int, str]] = field(default_factory=set)
    # Outbox messages (confirmation emails, webhooks) this batch queued: wake the worker when > 0.
    queued: int = 0


# Confirmed signatures and the outbox ---------------------------------------------------------


@dataclass(frozen=True)
class PendingSignature:
    """A signature waiting for its signer to confirm it from their mailbox (not counted)."""

    id: int
    signature: NewSignature  # as signed, with pending=True
    sends: int  # confirmation emails queued for it so far, the first one included
    reminded: bool


@dataclass(frozen=True)
class ConfirmResult:
    """What following a confirmation link did."""

    state: str  # "confirmed" (counted now), "already" (counted before), "unknown" (purged, erased, never)
    pledge_id: int | None
    # The batch that moved the counts, for the catalog (`Catalog.counts_committed`); None unless confirmed.
    batch: BatchResult | None = None


#: What an outbox message is: a confirmation email, its one reminder, or a partner webhook.
OUTBOX_KINDS = ("confirm", "remind", "webhook")


@dataclass(frozen=True)
class OutboxMessage:
    """One email or webhook to send. It holds no personal data: `ref_id` names the pending
    signature (confirm, remind) or the signature (webhook) read when it is sent, so an erasure
    leaves nothing behind in the outbox."""

    id: int  # also the delivery's stable id (webhook-id), so a receiver can drop a duplicate
    kind: str  # one of OUTBOX_KINDS
    ref_id: int
    partner_id: int | None  # the webhook's partner; None for emails
    created_at: str
    attempts: int  # failed attempts so far
    next_attempt_at: str
    last_error: str  # "" until an attempt failed; a reason, never personal data
    dead: bool  # out of attempts: waits for staff to retry or discard it


@dataclass(frozen=True)
class DayCount:
    """Signatures kept for one pledge, partner (None: signed directly) and UTC day."""

    day: str
    partner_id: int | None
    count: int


# The staff area's records -------------------------------------------------------------------

#: In the kept counts' filters, partner_id 0 stands for "signed directly" (no partner).
DIRECT = 0


def occupation_key(occupation: str) -> str:
    """How an occupation is kept and grouped: "Nurse ", "nurse" and "NURSE" are one.

    Spaces trimmed and ASCII letters lower-cased, exactly SQL's `lower(trim(x))` in SQLite
    (whose lower() leaves other letters alone), so the migration and the integrity check compute
    the same key in SQL; an engine whose lower() folds every letter must fold only A–Z here.
    """
    return occupation.strip(" ").translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


@dataclass(frozen=True)
class HourCount:
    """Signatures kept for one pledge, UTC hour ('2026-11-30T10') and partner (None: direct)."""

    hour: str
    partner_id: int | None
    count: int


@dataclass(frozen=True)
class MinuteCount:
    """Signatures kept for one pledge and UTC minute ('2026-11-30T10:07')."""

    minute: str
    count: int


@dataclass(frozen=True)
class PartnerTotals:
    """What the dashboard shows per partner (None: signed directly) beyond the count itself."""

    partner_id: int | None
    signatures: int
    opt_in_updates: int
    opt_in_partner: int
    first_at: str
    last_at: str


@dataclass(frozen=True)
class OccupationCount:
    occupation: str  # occupation_key(...); "" for signers who gave none
    count: int


@dataclass(frozen=True)
class SourceCount:
    """Signatures per partner (None: direct) and the partner page's source / utm_* tags."""

    partner_id: int | None
    tags: tuple[str, ...]  # in models.ATTRIBUTION_PARAMS order
    count: int


@dataclass(frozen=True)
class StaffUser:
    id: int
    email: str
    role: str  # 'owner', 'campaigner' or 'viewer'
    password_hash: str
    session_epoch: int  # moves on a password change: sessions of an older epoch are over
    created_at: str


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    actor: str  # a staff email, or "cli:" and the operating-system user
    action: str
    pledge: str
    subject: str
    detail: str


BURST_KINDS = ("client", "domain", "partner")


@dataclass(frozen=True)
class Burst:
    """One UTC hour's signatures of a pledge from one client mark, email domain or partner."""

    hour: str  # '2026-11-30T10'
    kind: str  # one of BURST_KINDS
    value: str  # the client mark, the domain, or the partner id as text ("0": direct)
    count: int


@dataclass(frozen=True)
class SignatureMatch:
    """Which signatures a burst stands for: a pledge, an hour, and one kind's value."""

    pledge_id: int
    hour: str
    kind: str
    value: str


# Every table, in an order that keeps foreign keys satisfied, with each column's portable kind:
# what `read_table` yields and `write_rows` takes, whatever the engine stores ("int", "text",
# "bool", "time" as 2026-11-30T10:00:00Z, "day" as 2026-11-30, "list" of text). Moving a campaign
# between engines (services/moving.py) copies exactly these.
# fmt: off
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "pledges": (
        ("id", "int"), ("slug", "text"), ("title", "text"), ("statement_html", "text"), ("goal", "int"),
        ("privacy_url", "text"), ("contact", "text"), ("signature_count", "int"), ("created_at", "time"),
        ("closed_at", "time"), ("optional_fields", "text"), ("confirm_email", "bool"),
    ),
    "partners": (
        ("id", "int"), ("pledge_id", "int"), ("name", "text"), ("origins", "list"), ("token_version", "int"),
        ("revoked_at", "time"), ("signature_count", "int"), ("created_at", "time"), ("webhook_url", "text"),
        ("webhook_secret", "text"),
    ),
    "signatures": (
        ("id", "int"), ("pledge_id", "int"), ("partner_id", "int"), ("email", "text"), ("name", "text"),
        ("occupation", "text"), ("organisation", "text"), ("opt_in_updates", "bool"), ("opt_in_partner", "bool"),
        ("origin", "text"), ("source", "text"), ("utm_source", "text"), ("utm_medium", "text"),
        ("utm_campaign", "text"), ("utm_term", "text"), ("utm_content", "text"), ("created_at", "time"),
        ("client_mark", "text"),
    ),
    "signature_days": (("pledge_id", "int"), ("partner_id", "int"), ("day", "day"), ("count", "int")),
    "organisations": (
        ("pledge_id", "int"), ("name_key", "text"), ("name", "text"), ("signatures", "int"), ("status", "text"),
        ("first_signed_at", "time"), ("reviewed_at", "time"),
    ),
    # The staff area's kept counts (each one's primary key first), accounts and audit log.
    "signature_hours": (("pledge_id", "int"), ("hour", "text"), ("partner_id", "int"), ("count", "int")),
    "signature_minutes": (("pledge_id", "int"), ("minute", "text"), ("count", "int")),
    "partner_totals": (
        ("pledge_id", "int"), ("partner_id", "int"), ("signatures", "int"), ("opt_in_updates", "int"),
        ("opt_in_partner", "int"), ("first_at", "time"), ("last_at", "time"),
    ),
    "signature_occupations": (("pledge_id", "int"), ("partner_id", "int"), ("occupation", "text"), ("count", "int")),
    "signature_sources": (
        ("pledge_id", "int"), ("partner_id", "int"), ("source", "text"), ("utm_source", "text"),
        ("utm_medium", "text"), ("utm_campaign", "text"), ("utm_term", "text"), ("utm_content", "text"),
        ("count", "int"),
    ),
    "staff_users": (
        ("id", "int"), ("email", "text"), ("role", "text"), ("password_hash", "text"), ("session_epoch", "int"),
        ("created_at", "time"),
    ),
    "audit_log": (
        ("id", "int"), ("at", "time"), ("actor", "text"), ("action", "text"), ("pledge", "text"),
        ("subject", "text"), ("detail", "text"),
    ),
    # Confirmed signatures: those waiting for their signer, and which waiting ids became which
    # signature (so a second click answers "already"); then the outbox, so that a move loses no
    # queued email or webhook.
    "pending_signatures": (
        ("id", "int"), ("pledge_id", "int"), ("partner_id", "int"), ("email", "text"), ("name", "text"),
        ("occupation", "text"), ("organisation", "text"), ("opt_in_updates", "bool"), ("opt_in_partner", "bool"),
        ("origin", "text"), ("source", "text"), ("utm_source", "text"), ("utm_medium", "text"),
        ("utm_campaign", "text"), ("utm_term", "text"), ("utm_content", "text"), ("created_at", "time"),
        ("client_mark", "text"), ("sends", "int"), ("reminded", "bool"),
    ),
    "confirmed_pending": (("id", "int"), ("pledge_id", "int"), ("signature_id", "int"), ("confirmed_at", "time")),
    "confirmation_counts": (("pledge_id", "int"), ("partner_id", "int"), ("asked", "int"), ("confirmed", "int")),
    "outbox": (
        ("id", "int"), ("kind", "text"), ("ref_id", "int"), ("partner_id", "int"), ("created_at", "time"),
        ("attempts", "int"), ("next_attempt_at", "time"), ("leased_until", "time"), ("last_error", "text"),
        ("dead", "bool"),
    ),
}
# fmt: on


class Row(Protocol):
    """A database row read by column name: sqlite3.Row and asyncpg.Record both are."""

    def __getitem__(self, key: str, /) -> Any: ...


def pledge_from_row(row: Row) -> Pledge:
    """A pledge from an engine's row of its columns (sqlite3.Row and asyncpg.Record alike)."""
    return Pledge(
        id=row["id"],
        slug=row["slug"],
        title=row["title"],
        statement_html=row["statement_html"],
        goal=row["goal"],
        privacy_url=row["privacy_url"],
        contact=row["contact"],
        signature_count=row["signature_count"],
        closed=row["closed_at"] is not None,
        optional_fields=tuple(f for f in row["optional_fields"].split(",") if f),
        confirm_email=bool(row["confirm_email"]),
    )


def partner_from_row(row: Row, origins: Sequence[str]) -> Partner:
    """A partner from an engine's row; `origins` decoded by the engine (JSON text, or an array)."""
    return Partner(
        id=row["id"],
        pledge_id=row["pledge_id"],
        name=row["name"],
        origins=tuple(origins),
        token_version=row["token_version"],
        revoked=row["revoked_at"] is not None,
        signature_count=row["signature_count"],
        webhook_url=row["webhook_url"],
    )


class Store(abc.ABC):
    """One database, whatever the engine. Every method is one transaction (or one read)."""

    #: What `describe()` prints for people: the file or server, never a password.
    location: str

    # Life cycle -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect; ConfigError if the database cannot be opened or is not a widget database."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Wait for writes under way, then close every connection."""

    @abc.abstractmethod
    async def migrate(self) -> int:
        """Create or upgrade the schema to the latest version and return it.

        Safe to run twice, and by several processes starting at once: each migration runs once.
        """

    @abc.abstractmethod
    async def ping(self) -> None:
        """Unavailable unless the database answers a trivial read."""

    @abc.abstractmethod
    async def backup(self, dest: Path) -> None:
        """A consistent copy of the whole database at `dest`, safe while the server writes.

        Needs no `open()`: NotFound when there is no database to copy.
        """

    # Pledges and partners ---------------------------------------------------------------------

    @abc.abstractmethod
    async def pledge_by_slug(self, slug: str) -> Pledge | None: ...

    @abc.abstractmethod
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
        """The new pledge; Conflict if its slug is taken."""

    @abc.abstractmethod
    async def partner_by_id(self, partner_id: int) -> Partner | None: ...

    @abc.abstractmethod
    async def partner_by_name(self, pledge_id: int, name: str) -> Partner | None: ...

    @abc.abstractmethod
    async def partners_of(self, pledge_id: int) -> list[Partner]:
        """The pledge's partners, most signatures first, then by name."""

    @abc.abstractmethod
    async def insert_partner(self, *, pledge_id: int, name: str, origins: Sequence[str], now: str) -> Partner:
        """The new partner at token version 1; Conflict if the pledge has a partner of that name."""

    @abc.abstractmethod
    async def rotate_partner(self, partner_id: int) -> Partner:
        """A new token version (old tokens stop working); also reinstates a revoked partner."""

    @abc.abstractmethod
    async def revoke_partner(self, partner_id: int, now: str) -> None:
        """Switch the partner off; revoking twice keeps the first time."""

    @abc.abstractmethod
    async def set_partner_origins(self, partner_id: int, origins: Sequence[str]) -> Partner:
        """New origins need a new token (the token carries them), so the version moves too."""

    # Signatures and counts --------------------------------------------------------------------

    @abc.abstractmethod
    async def write_signatures(self, batch: Sequence[NewSignature], *, confirm_sends: int = 3) -> BatchResult:
        """Insert a batch in one transaction, with every kept count moved in the same transaction.

        A signature whose (pledge, normalised email) is already stored is skipped, not an error.
        Any other failure rolls the whole batch back and raises: nothing is half-written.
        Pending signatures and the outbox messages a batch queues: see "Confirmed signatures" below.
        """

    @abc.abstractmethod
    async def counts(self, pledge_id: int) -> tuple[int, dict[int, int]]:
        """The pledge's total and every partner's count, from the kept counts (no counting of rows)."""

    @abc.abstractmethod
    async def day_counts(self, pledge_id: int) -> list[DayCount]:
        """Signatures per partner and UTC day, oldest day first, from the kept per-day counts."""

    @abc.abstractmethod
    def export_rows(self, pledge_id: int) -> contextlib.AbstractAsyncContextManager[AsyncIterator[tuple[object, ...]]]:
        """Every signature of a pledge in signing order, in `models.EXPORT_COLUMNS` order.

        Use as `async with store.export_rows(id) as rows: async for row in rows: ...`; rows are fetched
        a chunk at a time, so a million of them take flat memory, and leaving the block early (a
        reader that stopped) releases the cursor.
        """

    @abc.abstractmethod
    async def signatures_of(self, email: str) -> list[dict[str, object]]:
        """Every signature of one normalised email, across pledges (a subject access request):
        the counted ones ("status": "counted") in signing order, then those still waiting for
        confirmation ("status": "pending")."""

    @abc.abstractmethod
    async def erase_signatures(self, email: str) -> int:
        """Delete one email's signatures everywhere, every kept count corrected in the same
        transaction, and the erased details no longer readable in the database's files.

        Its pending signatures go too, and every queued message about a signature or pending
        signature removed (nothing about the person stays queued). Returns how many signatures,
        counted and pending, were removed."""

    @abc.abstractmethod
    async def scrub(self) -> bool:
        """Make rows removed so far unreadable in the database's own files (after an erasure).

        False when another reader's open snapshot still needs an old copy: it goes once that
        reader finishes. What each engine can and cannot promise is in SECURITY.md.
        """

    @abc.abstractmethod
    async def integrity(self) -> list[str]:
        """Where kept counts disagree with the rows (empty when all is well); for tests and ops."""

    # Moving a campaign between engines --------------------------------------------------------

    @abc.abstractmethod
    async def is_empty(self) -> bool:
        """True when the database holds no rows in any of TABLES (a fresh target for a move)."""

    @abc.abstractmethod
    def read_table(self, table: str) -> contextlib.AbstractAsyncContextManager[AsyncIterator[list[dict[str, object]]]]:
        """The table's rows in chunks, in primary-key order, as TABLES' portable kinds."""

    @abc.abstractmethod
    async def write_rows(self, table: str, rows: Sequence[dict[str, object]]) -> None:
        """Insert rows as read_table gives them, ids kept, in one transaction."""

    @abc.abstractmethod
    async def finish_copy(self) -> None:
        """After write_rows: make new rows take ids past the copied ones."""

    # Organisations ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def organisations(self, pledge_id: int, status: str | None = None) -> list[dict[str, object]]:
        """Organisations named by a pledge's signers: name, signatures, status, first_signed_at."""

    @abc.abstractmethod
    async def approved_organisation_names(self, pledge_id: int) -> list[str]: ...

    @abc.abstractmethod
    async def set_organisation_status(self, pledge_id: int, name: str, status: str, now: str) -> bool:
        """True when an organisation of that name (any case) had signed the pledge."""

    # The staff area ---------------------------------------------------------------------------
    # Pledges and partners, as staff edit them.

    @abc.abstractmethod
    async def pledges(self) -> list[Pledge]:
        """Every pledge, newest first."""

    @abc.abstractmethod
    async def pledge_by_id(self, pledge_id: int) -> Pledge | None: ...

    @abc.abstractmethod
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
        """Replace the pledge's settings (the slug stays); `closed_at` None opens it again, and a
        pledge already closed keeps its first closing time."""

    @abc.abstractmethod
    async def reinstate_partner(self, partner_id: int) -> Partner:
        """Switch a revoked partner back on with the same token version, so the snippet already on
        its pages works again."""

    # Kept counts for the dashboard: each one a read of kept rows, never a count of signatures.

    @abc.abstractmethod
    async def hour_counts(self, pledge_id: int, since_hour: str) -> list[HourCount]:
        """Signatures per UTC hour and partner from `since_hour` ('YYYY-MM-DDTHH') on, oldest first."""

    @abc.abstractmethod
    async def minute_counts(self, pledge_id: int, since_minute: str) -> list[MinuteCount]:
        """Signatures per UTC minute from `since_minute` ('YYYY-MM-DDTHH:MM') on, oldest first."""

    @abc.abstractmethod
    async def partner_totals(self, pledge_id: int) -> list[PartnerTotals]:
        """Per partner (and direct) with at least one signature: counts, opt-ins, first and last."""

    @abc.abstractmethod
    async def occupation_counts(self, pledge_id: int, partner_id: int | None = None) -> list[OccupationCount]:
        """Signatures per occupation key, most first then by key; `partner_id` None: every
        signature, DIRECT: signed directly, else that partner's."""

    @abc.abstractmethod
    async def source_counts(self, pledge_id: int) -> list[SourceCount]:
        """Signatures per partner and source / utm_* tags, most first."""

    @abc.abstractmethod
    def export_partner_rows(
        self, pledge_id: int, partner_id: int, opted_in_only: bool
    ) -> contextlib.AbstractAsyncContextManager[AsyncIterator[tuple[object, ...]]]:
        """As `export_rows`, for one partner's signatures (DIRECT: signed directly); with
        `opted_in_only`, only those who agreed to hear from that partner."""

    # Abuse: bursts seen through client marks, email domains, partners and hours.

    @abc.abstractmethod
    async def bursts(self, pledge_id: int, since: str, until: str, kind: str, at_least: int) -> list[Burst]:
        """Hours in [since, until) (ISO times) in which one `kind` value (BURST_KINDS) brought
        `at_least` signatures, biggest first; signatures without a client mark are not a client."""

    @abc.abstractmethod
    async def count_matching(self, match: SignatureMatch) -> int:
        """How many signatures `match` stands for (the preview before an invalidation)."""

    @abc.abstractmethod
    async def invalidate_signatures(self, match: SignatureMatch) -> int:
        """Delete the signatures `match` stands for, every kept count corrected in the same
        transaction, as `erase_signatures` does, their queued webhooks with them; returns how many."""

    # Staff accounts and the audit log.

    @abc.abstractmethod
    async def staff_users(self) -> list[StaffUser]:
        """Every account, by email."""

    @abc.abstractmethod
    async def staff_user_by_email(self, email: str) -> StaffUser | None: ...

    @abc.abstractmethod
    async def staff_user_by_id(self, user_id: int) -> StaffUser | None: ...

    @abc.abstractmethod
    async def insert_staff_user(self, *, email: str, role: str, password_hash: str, now: str) -> StaffUser:
        """The new account at session epoch 1; Conflict if the email has one."""

    @abc.abstractmethod
    async def delete_staff_user(self, user_id: int) -> bool:
        """True when there was such an account."""

    @abc.abstractmethod
    async def set_staff_password(self, user_id: int, password_hash: str) -> StaffUser:
        """A new password hash and the next session epoch (every earlier session ends)."""

    @abc.abstractmethod
    async def end_staff_sessions(self, user_id: int) -> StaffUser:
        """The next session epoch, the password unchanged."""

    @abc.abstractmethod
    async def set_staff_role(self, user_id: int, role: str) -> StaffUser: ...

    @abc.abstractmethod
    async def record_audit(self, *, at: str, actor: str, action: str, pledge: str, subject: str, detail: str) -> None:
        """Append one entry to the audit log (committed before this returns)."""

    @abc.abstractmethod
    async def audit_entries(
        self,
        *,
        actor: str | None = None,
        action: str | None = None,
        pledge: str | None = None,
        before_id: int | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """The newest entries first, filtered by exact actor, action and pledge; `before_id`
        pages back."""

    # Confirmed signatures ---------------------------------------------------------------------
    # `write_signatures` stores a NewSignature with pending=True in pending_signatures, never in
    # signatures (so no count moves), unless that (pledge, email) has already signed: then it
    # does nothing. A new pending signature queues a "confirm" message in the same transaction;
    # signing again while pending queues another one, up to `confirm_sends` in all.
    # A signature written to signatures (confirmation off, or confirmed) whose signer consented
    # to the partner's contact, for a partner with a webhook, queues a "webhook" message in the
    # same transaction.

    @abc.abstractmethod
    async def pending_signature(self, pending_id: int) -> PendingSignature | None:
        """A signature still waiting for confirmation; None once confirmed, purged or erased."""

    @abc.abstractmethod
    async def confirm_pending(self, pending_id: int, now: str) -> ConfirmResult:
        """Count a pending signature, in one transaction: it moves to signatures with every kept
        count, and its webhook (if any) is queued. Confirming twice counts once ("already")."""

    @abc.abstractmethod
    async def queue_reminders(self, signed_before: str, now: str | None = None) -> int:
        """Queue one "remind" message for each pending signature signed before that time and not
        yet reminded, marking it reminded in the same transaction; returns how many. The messages
        are due at `now` (None: at `signed_before`, which is due at once too)."""

    @abc.abstractmethod
    async def purge_pending(self, signed_before: str) -> int:
        """Delete pending signatures signed before that time, with their queued messages; counts
        untouched (they never counted). Returns how many. What remembers a confirmation (for the
        "already" answer) confirmed before that time goes too."""

    @abc.abstractmethod
    async def pending_counts(self, pledge_id: int) -> dict[int, int]:
        """Pending signatures of a pledge per partner id (DIRECT for signed directly)."""

    @abc.abstractmethod
    async def confirmation_counts(self, pledge_id: int) -> dict[int, tuple[int, int]]:
        """Per partner id (DIRECT for signed directly): (asked, confirmed), how many signatures
        were asked to confirm (each new pending signature) and how many were confirmed. Counts of
        events, moved in the same transactions, and never lowered by a purge or an erasure."""

    @abc.abstractmethod
    async def signature_by_id(self, signature_id: int) -> NewSignature | None:
        """A counted signature as it was signed (for a webhook's body); None once erased."""

    # Partner webhooks -------------------------------------------------------------------------

    @abc.abstractmethod
    async def set_partner_webhook(self, partner_id: int, url: str | None, secret: str | None) -> Partner:
        """Set (or with None, remove) a partner's webhook URL and signing secret. Messages already
        queued for it stay queued and go to the URL current when they are sent."""

    @abc.abstractmethod
    async def partner_webhook(self, partner_id: int) -> tuple[str, str] | None:
        """The partner's webhook (URL, secret), or None when it has none."""

    # The outbox -------------------------------------------------------------------------------

    @abc.abstractmethod
    async def claim_outbox(self, now: str, lease_until: str, limit: int) -> list[OutboxMessage]:
        """Up to `limit` messages due at `now` (not dead, not leased by another process), oldest
        first, each leased until `lease_until` in one transaction: however many processes claim
        at once, a message goes to one of them (PostgreSQL: FOR UPDATE SKIP LOCKED). A lease that
        runs out (its process died mid-send) makes the message due again.

        The outbox's own bookkeeping (claims, sent, failed) need not wait for its own flush to disk:
        a claim or a mark lost in a crash only means a message is sent again (at least once, with
        its stable id), never lost. Engines may commit it without waiting (SQLite: after the
        signature writer's next fsync; PostgreSQL: synchronous_commit off), so delivering never
        costs signing a flush of its own."""

    @abc.abstractmethod
    async def outbox_sent(self, message_ids: Sequence[int]) -> None:
        """These messages were delivered (or had nothing left to send): remove them, in one
        transaction, however many."""

    @abc.abstractmethod
    async def outbox_failed(self, message_id: int, error: str, retry_at: str | None) -> None:
        """One more failed attempt, its reason, the lease released; due again at `retry_at`, or
        dead when None."""

    @abc.abstractmethod
    async def outbox_messages(self, *, dead_only: bool = False, limit: int = 100) -> list[OutboxMessage]:
        """Queued messages, oldest first (dead ones only with `dead_only`)."""

    @abc.abstractmethod
    async def outbox_message(self, message_id: int) -> OutboxMessage | None:
        """One queued or dead message; None when there is none of that id."""

    @abc.abstractmethod
    async def outbox_retry(self, message_id: int | None, now: str) -> int:
        """Make a dead message (None: every dead message) due at `now` with its attempts reset;
        returns how many."""

    @abc.abstractmethod
    async def outbox_discard(self, message_id: int) -> bool:
        """Remove a queued or dead message without sending it; True when there was one."""
