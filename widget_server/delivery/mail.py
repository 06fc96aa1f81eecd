"""Sending email over SMTP, as WIDGET_SMTP_URL says: smtp:// (plain, for a relay on this network),
smtp+starttls:// (STARTTLS required, refused if the server does not offer it) or smtps:// (TLS from
the first byte), with an optional user and password (percent-encoded in the URL).

Certificates are checked against the system's trust store (`ssl.create_default_context`, which
also reads SSL_CERT_FILE). smtplib blocks, so each exchange runs on a worker thread; one
connection at a time is kept open for a short while after a message, because a surge of
signatures sends many, and it is opened again when the server has dropped it.

A failure raises `DeliveryFailed` with a reason that names no recipient: a server's own reply
text may quote the address, so only its status code is kept. Nothing here logs a recipient or a
body.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from widget_server import messages
from widget_server.delivery.errors import DeliveryFailed
from widget_server.settings import SMTP_SCHEMES

log = logging.getLogger(__name__)

#: How long a connection stays open after a message, waiting for the next one.
KEEP_OPEN_SECONDS = 15.0
#: How long one step of an exchange with the server (connect, a command, the message) may take:
#: well inside the outbox worker's limit for a whole send (delivery/worker.py, SEND_TIMEOUT).
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Mail:
    """One message ready to go: the envelope's sender and recipient, and the message's bytes
    (CRLF line ends), as services/confirmation.py builds them."""

    sender: str
    recipient: str
    data: bytes


@dataclass(frozen=True)
class SmtpTarget:
    """Where and how to send, read from WIDGET_SMTP_URL (settings.py has checked it)."""

    scheme: str  # one of settings.SMTP_SCHEMES
    host: str
    port: int
    user: str
    password: str

    @classmethod
    def from_url(cls, url: str) -> SmtpTarget:
        parts = urlsplit(url)
        return cls(
            scheme=parts.scheme,
            host=parts.hostname or "",
            port=parts.port or SMTP_SCHEMES[parts.scheme],
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
        )


class Mailer:
    """Sends messages one at a time over one kept connection; `close()` when done."""

    def __init__(
        self,
        smtp_url: str,
        *,
        keep_open: float = KEEP_OPEN_SECONDS,
        timeout: float = TIMEOUT_SECONDS,
        local_hostname: str | None = None,
    ) -> None:
        self._target = SmtpTarget.from_url(smtp_url)
        self._keep_open = keep_open
        self._timeout = timeout
        self._local_hostname = local_hostname
        self._connection: smtplib.SMTP | None = None
        self._lock = asyncio.Lock()
        self._idle: asyncio.TimerHandle | None = None
        self._closing: asyncio.Task[None] | None = None
        self._abandoned: asyncio.Future[None] | None = None

    async def send(self, message: Mail) -> None:
        """Send `message` to its To address; DeliveryFailed (no address in it) if it did not go.

        Cancelled (the outbox worker gave up waiting), the exchange still runs to its end on its
        thread: the connection and the lock stay its own until then, so no other send uses (or
        drops) the connection under it."""
        await self._lock.acquire()
        if self._idle is not None:
            self._idle.cancel()
        exchange = asyncio.ensure_future(asyncio.to_thread(self._send, message))
        try:
            await asyncio.shield(exchange)
        except asyncio.CancelledError:
            self._abandoned = asyncio.ensure_future(self._release_after(exchange))
            raise
        except BaseException:
            await self._release_after(exchange)
            raise
        self._idle = asyncio.get_running_loop().call_later(self._keep_open, self._close_when_idle)
        self._lock.release()

    async def _release_after(self, exchange: asyncio.Future[None]) -> None:
        """Once a failed or abandoned exchange has ended: drop its connection (its state is
        unknown) and let the next send in."""
        try:
            with contextlib.suppress(BaseException):
                await exchange
            await asyncio.to_thread(self._drop)
        finally:
            self._lock.release()

    async def close(self) -> None:
        """Close the kept connection (politely: QUIT), if there is one."""
        if self._idle is not None:
            self._idle.cancel()
        async with self._lock:
            await asyncio.to_thread(self._quit)

    def _close_when_idle(self) -> None:
        self._closing = asyncio.ensure_future(self.close())

    # On the worker thread ---------------------------------------------------------------------

    def _send(self, message: Mail) -> None:
        reused = self._connection is not None
        try:
            try:
                self._deliver(message)
            except (smtplib.SMTPServerDisconnected, ConnectionError) as exc:
                if not reused:
                    raise
                # The server closed the connection we kept (its idle timeout, or a cap on messages
                # per connection): open a new one and send once more. Should the server have taken
                # the message just before the drop, the supporter gets it twice, which is harmless.
                log.info("the mail server had closed the connection (%s); reconnecting", type(exc).__name__)
                self._drop()
                self._deliver(message)
        except smtplib.SMTPRecipientsRefused as exc:
            codes = sorted({code for code, _ in exc.recipients.values()})
            reason = messages.MAIL_REFUSED_RECIPIENT.format(codes=", ".join(map(str, codes)))
            # 5xx: the server will not take mail for this address (no such mailbox): for good.
            raise DeliveryFailed(reason, permanent=all(500 <= code < 600 for code in codes)) from None
        except smtplib.SMTPSenderRefused as exc:
            raise DeliveryFailed(messages.MAIL_REFUSED_SENDER.format(code=exc.smtp_code)) from None
        except smtplib.SMTPDataError as exc:
            raise DeliveryFailed(messages.MAIL_REFUSED_MESSAGE.format(code=exc.smtp_code)) from None
        except smtplib.SMTPAuthenticationError as exc:
            raise DeliveryFailed(messages.MAIL_REFUSED_LOGIN.format(code=exc.smtp_code)) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise DeliveryFailed(messages.MAIL_UNSUPPORTED.format(what=exc)) from None
        except smtplib.SMTPResponseException as exc:
            raise DeliveryFailed(messages.MAIL_ANSWERED.format(code=exc.smtp_code)) from None
        except smtplib.SMTPServerDisconnected:
            raise DeliveryFailed(messages.MAIL_DISCONNECTED) from None
        except ssl.SSLCertVerificationError as exc:
            raise DeliveryFailed(messages.MAIL_UNTRUSTED.format(why=exc.verify_message)) from None
        except ssl.SSLError as exc:
            raise DeliveryFailed(messages.MAIL_TLS_FAILED.format(why=exc.reason or type(exc).__name__)) from None
        except TimeoutError:
            raise DeliveryFailed(messages.MAIL_TIMEOUT) from None
        except OSError as exc:
            raise DeliveryFailed(messages.MAIL_UNREACHABLE.format(why=exc.strerror or type(exc).__name__)) from None
        except smtplib.SMTPException as exc:
            raise DeliveryFailed(messages.MAIL_FAILED.format(what=type(exc).__name__)) from None

    def _deliver(self, message: Mail) -> None:
        connection = self._connection or self._connect()
        # SMTPUTF8 only for an address that needs it (smtplib asks the server, and says if not).
        options = [] if message.recipient.isascii() else ["SMTPUTF8"]
        if not message.data.isascii() and connection.has_extn("8bitmime"):
            options.append("BODY=8BITMIME")
        refused = connection.sendmail(message.sender, [message.recipient], message.data, mail_options=options)
        if refused:  # only when there are several recipients, and we send to one
            raise DeliveryFailed(messages.MAIL_REFUSED_RECIPIENT.format(codes="?"))

    def _connect(self) -> smtplib.SMTP:
        target = self._target
        context = ssl.create_default_context()
        connection: smtplib.SMTP
        if target.scheme == "smtps":
            connection = smtplib.SMTP_SSL(
                target.host, target.port, self._local_hostname, timeout=self._timeout, context=context
            )
        else:
            connection = smtplib.SMTP(target.host, target.port, self._local_hostname, timeout=self._timeout)
        try:
            connection.ehlo()
            if target.scheme == "smtp+starttls":
                if not connection.has_extn("starttls"):
                    # Sending anyway would put the password and the message on the wire in clear.
                    raise DeliveryFailed(messages.MAIL_NO_STARTTLS)
                connection.starttls(context=context)
                connection.ehlo()
            if target.user:
                connection.login(target.user, target.password)
        except BaseException:
            _abandon(connection)
            raise
        self._connection = connection
        return connection

    def _quit(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.quit()
            except (smtplib.SMTPException, OSError):
                _abandon(connection)

    def _drop(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            _abandon(connection)


def _abandon(connection: smtplib.SMTP) -> None:
    """Close without a word to the server: its state is unknown."""
    with contextlib.suppress(OSError):
        connection.close()
