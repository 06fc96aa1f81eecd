"""Confirmed signatures: the emails that ask a signer to confirm, the link that does, housekeeping.

When a pledge asks for confirmation, a signature waits in the store as pending (not counted) and
the store queues a "confirm" message in the outbox in the same transaction. The outbox worker
hands each such message to `Confirmation.deliver`, which reads the pending signature (gone:
nothing to send) and sends one email over SMTP: the pledge in its own words, a signed link that
expires with the signature, the privacy notice, and why the email came. `housekeep` queues the one
reminder and deletes pending signatures past the retention period. The link opens a page (`page`)
with one button; only its POST (`confirm`) counts the signature, so mail scanners that fetch
links confirm nothing.

The email carries no image, no tracking and no rewritten link, and nothing typed into the form but
the address it goes to: nobody can make the campaign send their words (a phishing link in the
"name") to someone else's address.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid, parseaddr
from html.parser import HTMLParser

import jinja2
from markupsafe import Markup

from widget_server import messages
from widget_server.core.models import Pledge
from widget_server.core.origins import ascii_domain
from widget_server.core.signform import clean_text
from widget_server.core.times import iso_utc
from widget_server.delivery.errors import DeliveryFailed, Dropped
from widget_server.delivery.mail import Mail, Mailer
from widget_server.errors import Invalid, NotFound
from widget_server.files import TEMPLATES_DIR
from widget_server.memo import BoundedMemo
from widget_server.security.tokens import ConfirmClaim, Tokens
from widget_server.settings import Settings
from widget_server.storage.store import BatchResult, OutboxMessage, PendingSignature, Store

log = logging.getLogger(__name__)

EMAIL_KINDS = ("confirm", "remind")
# Stand-ins in a pledge's kept email (Confirmation.email): none can occur in the email's own text.
_TO = "signer@to-address.invalid"
_LINK = "https://link.invalid/confirmation-link"
_DATE = "Thu, 01 Jan 1970 00:00:00 +0000"  # as the email package writes a date
_MESSAGE_ID = "<message-id@message-id.invalid>"
# An address whose every character may stand in a header as it is: printable ASCII, no space,
# no quote, no angle bracket, no line break (signform's checks make nearly every address one).
_PLAIN_ADDRESS = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9.-]+")
#: Kept pledge emails: two per pledge (confirmation and reminder), replaced when staff edit it.
_TEMPLATES_KEPT = 64
# Line breaks a mail reader or the email package might honour beyond CR and LF.
_LINE_BREAKS = re.compile("[\r\n\x0b\x0c\x1c-\x1e\x85\u2028\u2029]")


class LinkExpired(NotFound):
    """A confirmation link that is forged, too old, or names a signature no longer waiting."""

    def __init__(self) -> None:
        super().__init__(messages.CONFIRM_LINK_EXPIRED)


@dataclass(frozen=True)
class Confirmed:
    """What following a link did: "confirmed" (counted now) or "already" (counted before)."""

    state: str
    pledge: Pledge
    total: int  # the pledge's count after it


class Confirmation:
    """The confirmation emails, their links and housekeeping for every pledge that asks for it.

    `mailer` sends the emails (None: one is made from WIDGET_SMTP_URL when mail is configured);
    `on_commit` is told of the counts a confirmation moved, as the signature writer tells it of
    its batches (the catalog's counts, waking the outbox worker for a webhook it queued).
    """

    def __init__(
        self,
        store: Store,
        settings: Settings,
        tokens: Tokens,
        mailer: Mailer | None = None,
        *,
        on_commit: Callable[[BatchResult], None] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store = store
        self._settings = settings
        self._tokens = tokens
        if mailer is None and settings.mail_configured:
            mailer = Mailer(settings.smtp_url)
        self._mailer = mailer
        self._on_commit = on_commit
        self._clock = clock
        self._retention = settings.confirm_retention_hours * 3600
        self._reminder = settings.confirm_reminder_hours * 3600
        self._templates: BoundedMemo[tuple[object, ...], bytes] = BoundedMemo(_TEMPLATES_KEPT, 8 * 1024 * 1024)
        self._emails = jinja2.Environment(
            loader=jinja2.FileSystemLoader(TEMPLATES_DIR / "email"),
            # The HTML part escapes everything but the statement (sanitised when staff saved it);
            # the text part is text.
            autoescape=jinja2.select_autoescape(["html"], default_for_string=False, default=False),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=True,
        )

    # The outbox's side -------------------------------------------------------------------------

    async def deliver(self, message: OutboxMessage) -> None:
        """Send the "confirm" or "remind" email `message` stands for.

        Dropped when there is nothing to send any more (confirmed, purged or erased since it was
        queued); DeliveryFailed when the mail server did not take it (the outbox retries).
        """
        if message.kind not in EMAIL_KINDS:
            raise DeliveryFailed(messages.DELIVERY_NO_HANDLER.format(kind=message.kind))
        pending = await self._store.pending_signature(message.ref_id)
        if pending is None:
            raise Dropped(messages.CONFIRM_NOTHING_TO_SEND)
        pledge = await self._store.pledge_by_id(pending.signature.pledge_id)
        if pledge is None:
            raise Dropped(messages.CONFIRM_NO_PLEDGE)
        if self._mailer is None:
            raise DeliveryFailed(messages.MAIL_NOT_CONFIGURED)
        await self._mailer.send(self.email(pending, pledge, remind=message.kind == "remind"))

    async def housekeep(self, now: float) -> None:
        """Queue the one reminder for signatures waiting long enough, and delete those waiting
        past the retention period (with their queued emails; counts untouched, never counted)."""
        reminded = 0
        if self._reminder > 0:
            reminded = await self._store.queue_reminders(iso_utc(now - self._reminder), iso_utc(now))
        purged = await self._store.purge_pending(iso_utc(now - self._retention))
        if reminded or purged:
            log.info(
                "confirmation housekeeping: %d reminders queued, %d unconfirmed signatures deleted", reminded, purged
            )

    async def close(self) -> None:
        """Close the mail server connection kept open between emails."""
        if self._mailer is not None:
            await self._mailer.close()

    # The email ---------------------------------------------------------------------------------

    def link(self, pending: PendingSignature) -> str:
        """The confirmation link for a pending signature: it expires with the signature."""
        signature = pending.signature
        claim = ConfirmClaim(pending.id, signature.pledge_id, _epoch(signature.created_at))
        return f"{self._settings.public_url}/confirm/{self._tokens.confirm_token(claim)}"

    def email(self, pending: PendingSignature, pledge: Pledge, *, remind: bool = False) -> Mail:
        """The confirmation (or reminder) email, as sent: plain text and a simple HTML alternative.

        The email package takes milliseconds to build one message, and a surge sends thousands: so
        each pledge's email is built once with stand-ins for what differs (the address, the link,
        the date, the Message-ID), kept, and each message is that with the stand-ins replaced.
        What replaces them can hold no line break (an address as signform checked it, in ASCII;
        a link of URL-safe characters; a date and an id made here), so no header can be added.
        An address outside that (a non-ASCII local part) is built whole by the email package.
        """
        signature = pending.signature
        address = _to_address(signature.email)
        link = self.link(pending)
        date = format_datetime(datetime.fromtimestamp(self._clock(), UTC))
        message_id = make_msgid(domain=_domain_of(self._settings.mail_from))
        template = self._template(pledge, remind) if _PLAIN_ADDRESS.fullmatch(address) else None
        if template is None:
            whole = self._build(pledge, remind, address, link, date, message_id)
            return Mail(_envelope_from(self._settings.mail_from), address, whole.as_bytes())
        data = (
            template.replace(_TO.encode(), address.encode())
            .replace(_LINK.encode(), link.encode())
            .replace(_DATE.encode(), date.encode())
            .replace(_MESSAGE_ID.encode(), message_id.encode())
        )
        return Mail(_envelope_from(self._settings.mail_from), address, data)

    def _template(self, pledge: Pledge, remind: bool) -> bytes | None:
        """The pledge's email with stand-ins, built once per pledge as staff last saved it; None
        when its text cannot go as 8-bit lines (a paragraph over 998 bytes): then each message is
        built whole."""
        key = (pledge.id, pledge.slug, pledge.title, pledge.statement_html, pledge.privacy_url, pledge.contact, remind)
        kept = self._templates.get(key)
        if kept is None:
            try:
                built = self._build(pledge, remind, _TO, _LINK, _DATE, _MESSAGE_ID, cte="8bit").as_bytes()
            except ValueError:
                built = b""
            kept = self._templates.put(key, built)
        return kept or None

    def _build(
        self,
        pledge: Pledge,
        remind: bool,
        address: str,
        link: str,
        date: str,
        message_id: str,
        cte: str | None = None,
    ) -> EmailMessage:
        subject = (messages.REMIND_SUBJECT if remind else messages.CONFIRM_SUBJECT).format(title=pledge.title)
        values = {
            "remind": remind,
            "subject": subject,
            "title": pledge.title,
            "link": link,
            "privacy_url": self._privacy_url(pledge),
            "contact": pledge.contact or "",
            "retention": duration(self._settings.confirm_retention_hours),
        }
        text = self._emails.get_template("confirm.txt").render(statement=plain_text(pledge.statement_html), **values)
        # Staff rich text, sanitised against the allowlist when it was saved (core/richtext.py).
        page = self._emails.get_template("confirm.html").render(statement_html=Markup(pledge.statement_html), **values)

        message = EmailMessage(policy=SMTP)
        message["Subject"] = header_text(subject)
        message["From"] = self._settings.mail_from
        # The address alone: the name typed into the form reaches no part of the email (anyone can
        # type anyone's address, and a "name" could carry a phishing line into their mailbox).
        message["To"] = address
        message["Date"] = date
        message["Message-ID"] = message_id
        # RFC 3834: written by a program, so autoresponders do not answer it.
        message["Auto-Submitted"] = "auto-generated"
        message.set_content(text, cte=cte)
        message.add_alternative(page, subtype="html", cte=cte)
        return message

    def _privacy_url(self, pledge: Pledge) -> str:
        """The privacy notice as a whole address: the pledge's own, or this service's page."""
        url = pledge.privacy_link
        return f"{self._settings.public_url}{url}" if url.startswith("/") else url

    # The web's side ----------------------------------------------------------------------------

    async def page(self, token: str) -> Pledge:
        """The pledge a link is for, to show its title and the one button; LinkExpired if the
        link cannot be followed. Confirms nothing (mail scanners fetch links)."""
        claim = self._claim(token)
        pledge = await self._store.pledge_by_id(claim.pledge_id)
        if pledge is None:
            raise LinkExpired()
        return pledge

    async def confirm(self, token: str) -> Confirmed:
        """Count the signature the link names (once, however often it is followed)."""
        claim = self._claim(token)
        pending = await self._store.pending_signature(claim.pending_id)
        if pending is not None and (
            pending.signature.pledge_id != claim.pledge_id or _epoch(pending.signature.created_at) != claim.signed_at
        ):
            raise LinkExpired()  # the id names another signature than the one the link was sent for
        result = await self._store.confirm_pending(claim.pending_id, iso_utc(self._clock()))
        if result.state not in ("confirmed", "already") or result.pledge_id != claim.pledge_id:
            raise LinkExpired()
        pledge = await self._store.pledge_by_id(claim.pledge_id)
        if pledge is None:
            raise LinkExpired()
        total: int | None = None
        if result.batch is not None:
            total = result.batch.totals.get(pledge.id)
            if self._on_commit is not None:
                try:
                    self._on_commit(result.batch)
                except Exception:  # a stale cache must not turn a counted signature into an error
                    log.exception("could not pass the new counts on")
        if total is None:
            total, _ = await self._store.counts(pledge.id)
        return Confirmed(result.state, pledge, total)

    def _claim(self, token: str) -> ConfirmClaim:
        try:
            claim = self._tokens.read_confirm_token(token)
        except Invalid:
            raise LinkExpired() from None
        if self._clock() - claim.signed_at > self._retention:
            raise LinkExpired()
        return claim


def duration(hours: float) -> str:
    """A retention period as the email says it: "14 days", "36 hours", "30 minutes"."""
    if hours >= 48 and hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} days"
    if hours >= 1:
        return f"{hours:g} hour{'s' if hours != 1 else ''}"
    minutes = max(1, round(hours * 60))
    return f"{minutes} minute{'s' if minutes != 1 else ''}"


def header_text(text: str) -> str:
    """Text for a header: one line, whatever it held (the email package refuses CR and LF; other
    line breaks are folded to spaces here, so no reader can see a header begin)."""
    return " ".join(_LINE_BREAKS.sub(" ", clean_text(text)).split())


def _to_address(email: str) -> str:
    """The signer's address as the To header and the envelope take it: the domain in ASCII
    (A-labels), so only a non-ASCII local part needs a server that takes SMTPUTF8."""
    local, _, domain = email.rpartition("@")
    return f"{local}@{ascii_domain(domain) or domain}"


def _envelope_from(mail_from: str) -> str:
    """The bare address of WIDGET_MAIL_FROM (settings.py checked it is one address)."""
    return parseaddr(mail_from)[1]


def _domain_of(mail_from: str) -> str:
    """The From address's domain, for the Message-ID (settings.py checked it is one address)."""
    return mail_from.rsplit("@", 1)[-1].rstrip(">").strip()


def _epoch(stamp: str) -> float:
    """A stored time ('2026-11-30T10:07:00Z') as whole seconds since the epoch."""
    return float(int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()))


class _PlainText(HTMLParser):
    """The statement's text: paragraphs and list items on lines of their own, links spelt out."""

    _BLOCKS = {"p", "blockquote", "ul", "ol"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._href: str | None = None
        self._link_text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BLOCKS:
            self.parts.append("\n\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "a":
            self._href = dict(attrs).get("href") or None
            self._link_text = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self._BLOCKS:
            self.parts.append("\n\n")
        elif tag == "a" and self._href is not None:
            # The address as written, never a redirect of ours: a link in the email is what it says.
            if self._href.rstrip("/") != "".join(self._link_text).strip().rstrip("/"):
                self.parts.append(f" ({self._href})")
            self._href = None

    def handle_data(self, data: str) -> None:
        self.parts.append(data)
        if self._href is not None:
            self._link_text.append(data)


def plain_text(statement_html: str) -> str:
    """The sanitised statement as plain text for the email's text part."""
    parser = _PlainText()
    parser.feed(statement_html)
    parser.close()
    lines = [" ".join(line.split()) for line in "".join(parser.parts).split("\n")]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
