"""Creating pledges and finding them by slug, for campaign staff."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from widget_server import messages
from widget_server.core.models import Pledge
from widget_server.core.richtext import sanitise
from widget_server.core.signform import clean_text
from widget_server.core.times import utc_now
from widget_server.errors import Conflict, Invalid, NotFound
from widget_server.settings import Settings
from widget_server.storage.store import Store

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")
# Printable ASCII but space, backslash and quotes: nothing a browser would read differently.
_URL_TEXT = re.compile(r"[!#-&(-\[\]-~]+")


def checked_privacy_url(url: str | None) -> str | None:
    """The privacy policy's address as given, None for the built-in notice; Invalid unless it is
    an https:// address or a path on this site.

    The link is shown inside partners' pages to wary supporters: a plain-http address could be
    rewritten on the way, and "//host/…" (or "/\\host", which browsers read the same) looks like
    a path but leaves the site.
    """
    if not url:
        return None
    if not _URL_TEXT.fullmatch(url):
        raise Invalid(messages.BAD_PRIVACY_URL)
    if url.startswith("/"):
        if url.startswith("//"):
            raise Invalid(messages.BAD_PRIVACY_URL)
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        raise Invalid(messages.BAD_PRIVACY_URL) from None
    if parts.scheme != "https" or not parts.hostname:
        raise Invalid(messages.BAD_PRIVACY_URL)
    return url


def check_confirm_email(confirm_email: bool, settings: Settings | None) -> None:
    """Invalid unless confirmation can be switched on: without a mail server, no signature of
    the pledge could ever be confirmed, so none would count."""
    if confirm_email and (settings is None or not settings.mail_configured):
        raise Invalid(messages.CONFIRM_NEEDS_MAIL)


async def find_pledge(store: Store, slug: str) -> Pledge:
    pledge = await store.pledge_by_slug(slug)
    if pledge is None:
        raise NotFound(messages.NO_PLEDGE_CALLED.format(slug=slug))
    return pledge


async def add_pledge(
    store: Store,
    *,
    slug: str,
    title: str,
    statement_html: str,
    goal: int | None = None,
    privacy_url: str | None = None,
    contact: str | None = None,
    confirm_email: bool = False,
    settings: Settings | None = None,
) -> Pledge:
    """A new pledge: title and contact cleaned, the statement sanitised against the allowlist.

    `confirm_email`: count a signature only once its signer confirms it from their mailbox; it
    needs `settings` with a mail server (`check_confirm_email`).
    """
    if not SLUG.match(slug):
        raise Invalid(messages.BAD_SLUG.format(slug=slug))
    title = clean_text(title)
    if not title:
        raise Invalid(messages.TITLE_MISSING)
    statement = sanitise(statement_html).strip()
    if not statement:
        raise Invalid(messages.STATEMENT_EMPTY)
    if goal is not None and not 1 <= goal <= 10**9:
        raise Invalid(messages.BAD_GOAL)
    privacy_url = checked_privacy_url(privacy_url)
    check_confirm_email(confirm_email, settings)
    try:
        return await store.insert_pledge(
            slug=slug,
            title=title,
            statement_html=statement,
            goal=goal,
            privacy_url=privacy_url,
            contact=clean_text(contact or "") or None,
            now=utc_now(),
            confirm_email=confirm_email,
        )
    except Conflict:
        raise Conflict(messages.PLEDGE_EXISTS.format(slug=slug)) from None
