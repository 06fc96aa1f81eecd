"""The storage interface: the only thing in the service that holds database connections.

A `Store` opens and closes its connections, runs its engine's migrations, runs each write in one
transaction, writes batches of signatures for the group-commit writer, reads rows, counts and
reports, backs up, and turns its driver's errors into the project's own (errors.py): `Conflict` for
a unique guard that said no, `Unavailable` for a database that cannot be reached or is busy,
`ConfigError` for a file that is not a widget database. Everything above it (the writer, the
catalog, the use cases, the CLI, the demo, the tests) takes a Store and never a connection or path.

`open_store(url)` picks the engine from the URL: a path or `sqlite:///path` (SQLite, the default),
or `postgresql://user:password@host:port/database` (storage/postgres/).
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from widget_server import messages
from widget_server.core.models import NewSignature, Partner, Pledge
from widget_server.errors import ConfigError


@dataclass(frozen=True)
class BatchResult:
    """What one committed batch did: the new (pledge_id, email) pairs and the counts after it."""

    inserted: set[tuple[int, str]]
    totals: dict[int, int]  # pledge id → its count after the commit
    # partner id → (its pledge id, its count after the commit)
    partner_counts: dict[int, tuple[int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class DayCount:
    """Signatures kept for one pledge, partner (None: signed directly) and UTC day."""

    day: str
    partner_id: int | None
    count: int


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
    async def write_signatures(self, batch: Sequence[NewSignature]) -> BatchResult:
        """Insert a batch in one transaction, with every kept count moved in the same transaction.

        A signature whose (pledge, normalised email) is already stored is skipped, not an error.
        Any other failure rolls the whole batch back and raises: nothing is half-written.
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
        """Every signature of one normalised email, across pledges (a subject access request)."""

    @abc.abstractmethod
    async def erase_signatures(self, email: str) -> int:
        """Delete one email's signatures everywhere, every kept count corrected in the same
        transaction, and the erased details no longer readable in the database's files."""

    @abc.abstractmethod
    async def integrity(self) -> list[str]:
        """Where kept counts disagree with the rows (empty when all is well); for tests and ops."""

    # Organisations ----------------------------------------------------------------------------

    @abc.abstractmethod
    async def organisations(self, pledge_id: int, status: str | None = None) -> list[dict[str, object]]:
        """Organisations named by a pledge's signers: name, signatures, status, first_signed_at."""

    @abc.abstractmethod
    async def approved_organisation_names(self, pledge_id: int) -> list[str]: ...

    @abc.abstractmethod
    async def set_organisation_status(self, pledge_id: int, name: str, status: str, now: str) -> bool:
        """True when an organisation of that name (any case) had signed the pledge."""


def store_for(url: str | Path) -> Store:
    """The engine for `url` (a path, `sqlite:///path` or `postgresql://…`), not yet opened."""
    text = str(url)
    if not text.strip():
        raise ConfigError(messages.EMPTY_DATABASE)
    if text.startswith(("postgresql://", "postgres://")):
        from widget_server.storage.postgres.store import PostgresStore

        return PostgresStore(text)
    if text.startswith("sqlite:///"):
        # As SQLAlchemy reads it: sqlite:///widget.db is relative, sqlite:////srv/widget.db absolute.
        text = text[len("sqlite:///") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ConfigError(messages.UNKNOWN_DATABASE.format(scheme=scheme))
    from widget_server.storage.sqlite.store import SQLiteStore

    return SQLiteStore(Path(text))


@contextlib.asynccontextmanager
async def open_store(url: str | Path, *, migrate: bool = True) -> AsyncIterator[Store]:
    """An opened (and by default migrated) store, closed on the way out."""
    store = store_for(url)
    await store.open()
    try:
        if migrate:
            await store.migrate()
        yield store
    finally:
        await store.close()
