"""What campaign staff do: create pledges, onboard partners, read numbers, export.

Used by the CLI and the demo; each function opens what it needs and says plainly what is wrong.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import aiosqlite

from widget_server.core.csvsafe import CSVLines
from widget_server.core.models import Partner, Pledge
from widget_server.core.origins import normalise_origin
from widget_server.core.richtext import sanitise
from widget_server.core.signform import clean_text
from widget_server.core.snippets import all_snippets
from widget_server.errors import Invalid, NotFound
from widget_server.security.tokens import Tokens
from widget_server.settings import Settings
from widget_server.storage.sqlite import db, queries
from widget_server.web.runtime import iso_utc

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


@contextlib.asynccontextmanager
async def open_db(settings: Settings) -> AsyncIterator[aiosqlite.Connection]:
    db.migrate(settings.database)
    conn = await db.connect(settings.database)
    try:
        yield conn
    finally:
        await conn.close()


async def find_pledge(conn: aiosqlite.Connection, slug: str) -> Pledge:
    pledge = await queries.pledge_by_slug(conn, slug)
    if pledge is None:
        raise NotFound(f"There is no pledge called {slug!r}.")
    return pledge


async def find_partner(conn: aiosqlite.Connection, pledge: Pledge, name: str) -> Partner:
    partner = await queries.partner_by_name(conn, pledge.id, name)
    if partner is None:
        raise NotFound(f"Pledge {pledge.slug!r} has no partner called {name!r}.")
    return partner


async def add_pledge(
    conn: aiosqlite.Connection,
    *,
    slug: str,
    title: str,
    statement_html: str,
    goal: int | None = None,
    privacy_url: str | None = None,
    contact: str | None = None,
) -> Pledge:
    if not SLUG.match(slug):
        raise Invalid(f"A slug is lower-case letters, digits and dashes, like 'data-pledge', not {slug!r}.")
    title = clean_text(title)
    if not title:
        raise Invalid("The pledge needs a title.")
    statement = sanitise(statement_html).strip()
    if not statement:
        raise Invalid("The pledge statement is empty.")
    if goal is not None and not 1 <= goal <= 10**9:
        raise Invalid("The goal must be a number of signatures from 1 to 1,000,000,000.")
    if privacy_url and not privacy_url.startswith(("https://", "http://", "/")):
        raise Invalid("The privacy URL must start with https://, http:// or /.")
    try:
        return await queries.insert_pledge(
            conn,
            slug=slug,
            title=title,
            statement_html=statement,
            goal=goal,
            privacy_url=privacy_url,
            contact=clean_text(contact or "") or None,
            now=iso_utc(time.time()),
        )
    except sqlite3.IntegrityError:
        raise Invalid(f"A pledge called {slug!r} already exists.") from None


@dataclass(frozen=True)
class PartnerCredentials:
    partner: Partner
    token: str
    snippets: dict[str, str]

    def as_json(self) -> dict[str, object]:
        return {
            "id": self.partner.id,
            "name": self.partner.name,
            "origins": list(self.partner.origins),
            "token_version": self.partner.token_version,
            "token": self.token,
            **self.snippets,
        }


def credentials(settings: Settings, pledge: Pledge, partner: Partner) -> PartnerCredentials:
    token = Tokens(settings.signing_keys()).partner_token(partner)
    return PartnerCredentials(partner, token, all_snippets(settings.public_url, pledge.slug, token, pledge.goal))


async def add_partner(
    conn: aiosqlite.Connection, settings: Settings, slug: str, name: str, origins: Sequence[str]
) -> PartnerCredentials:
    pledge = await find_pledge(conn, slug)
    name = clean_text(name)
    if not name:
        raise Invalid("The partner needs a name.")
    if not origins:
        raise Invalid("Give at least one --origin: the partner's website, like https://example.org.")
    normalised = list(dict.fromkeys(normalise_origin(o) for o in origins))
    try:
        partner = await queries.insert_partner(
            conn, pledge_id=pledge.id, name=name, origins=normalised, now=iso_utc(time.time())
        )
    except sqlite3.IntegrityError:
        raise Invalid(f"Pledge {slug!r} already has a partner called {name!r}.") from None
    return credentials(settings, pledge, partner)


async def rotate_partner(
    conn: aiosqlite.Connection, settings: Settings, slug: str, name: str
) -> PartnerCredentials:
    pledge = await find_pledge(conn, slug)
    partner = await find_partner(conn, pledge, name)
    return credentials(settings, pledge, await queries.rotate_partner(conn, partner.id))


async def revoke_partner(conn: aiosqlite.Connection, slug: str, name: str) -> Partner:
    pledge = await find_pledge(conn, slug)
    partner = await find_partner(conn, pledge, name)
    await queries.revoke_partner(conn, partner.id, iso_utc(time.time()))
    return partner


async def stats(conn: aiosqlite.Connection, slug: str) -> dict[str, object]:
    return await queries.stats(conn, await find_pledge(conn, slug))


async def export_csv(conn: aiosqlite.Connection, slug: str, out: TextIO) -> int:
    """Stream the pledge's signatures as spreadsheet-safe CSV; returns the number of rows."""
    pledge = await find_pledge(conn, slug)
    lines = CSVLines()
    out.write(lines.line(queries.EXPORT_COLUMNS))
    count = 0
    # Closed here, before the connection, even when the reader stops early (`export | head`).
    async with contextlib.aclosing(queries.export_rows(conn, pledge.id)) as rows:
        async for row in rows:
            out.write(lines.line(row))
            count += 1
    out.flush()
    return count


def backup(settings: Settings, dest: Path) -> None:
    if not settings.database.exists():
        raise NotFound(f"There is no database at {settings.database} to back up.")
    if dest.exists():
        raise Invalid(f"{dest} already exists; choose a new file name for the backup.")
    if not dest.parent.exists():
        raise NotFound(f"The folder {dest.parent} does not exist.")
    db.backup(settings.database, dest)


ORGANISATION_STATUSES = ("pending", "approved", "hidden")


async def organisations(conn: aiosqlite.Connection, slug: str, status: str | None = None) -> list[dict[str, object]]:
    pledge = await find_pledge(conn, slug)
    return await queries.organisations(conn, pledge.id, status)


async def review_organisation(conn: aiosqlite.Connection, slug: str, name: str, status: str) -> None:
    """Approve an organisation for the public list, or hide it from there."""
    pledge = await find_pledge(conn, slug)
    if not await queries.set_organisation_status(conn, pledge.id, clean_text(name), status, iso_utc(time.time())):
        raise NotFound(f"No organisation called {name!r} has signed {slug!r}.")


def _checked_email(email: str) -> str:
    from widget_server.core.signform import normalise_email

    normalised = normalise_email(email)
    if "@" not in normalised:
        raise Invalid(f"{email!r} is not an email address.")
    return normalised


async def person_data(conn: aiosqlite.Connection, email: str) -> list[dict[str, object]]:
    """Everything kept about one email address, across pledges (a subject access request)."""
    return await queries.signatures_of(conn, _checked_email(email))


async def erase_person(conn: aiosqlite.Connection, email: str) -> int:
    """Delete one person's signatures everywhere, with every kept count corrected to match."""
    return await queries.erase_signatures(conn, _checked_email(email))
