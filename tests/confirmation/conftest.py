"""What the confirmation tests share: a real SMTP server on loopback (aiosmtpd) that keeps what it
receives, a certificate authority made for the test (for smtp+starttls:// and smtps://), settings
with mail configured, a pledge that asks for confirmation, and an email's link."""

from __future__ import annotations

import datetime
import email
import email.policy
import ipaddress
import re
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import STATEMENT, on_db
from tests.server_harness import free_port
from widget_server.core.models import Pledge
from widget_server.services import pledges
from widget_server.settings import Settings
from widget_server.storage.store import OutboxMessage

SLUG = "data-firewall"
MAIL_FROM = "Keep our data safe <pledge@campaign.example>"
LINK = re.compile(r"https?://[^\s<>\"]+/confirm/[A-Za-z0-9_.-]+")
WAIT_SECONDS = 15.0


@dataclass
class Received:
    """One message as the SMTP server got it: the envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    raw: bytes

    def part(self, subtype: str) -> str:
        body = self.message.get_body(preferencelist=(subtype,))
        assert body is not None and body.get_content_subtype() == subtype, f"no text/{subtype} part"
        return str(body.get_content())

    @property
    def link(self) -> str:
        links = set(LINK.findall(self.part("plain")))
        assert len(links) == 1, links
        return links.pop()


@dataclass
class Inbox:
    """aiosmtpd's handler: keeps every message, and how many connections said EHLO or HELO."""

    received: list[Received] = field(default_factory=list)
    greetings: int = 0
    refuse_rcpt: str = ""  # e.g. "550 5.1.1 <ana@example.org>: no such user"
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_EHLO(
        self, server: SMTP, session: Session, envelope: Envelope, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        with self.lock:
            self.greetings += 1
        return responses

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.refuse_rcpt:
            return self.refuse_rcpt
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        parsed = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.lock:
            self.received.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), parsed, raw))
        return "250 OK: queued"

    def wait_for(self, count: int, timeout: float = WAIT_SECONDS) -> list[Received]:
        """The first `count` messages, once that many have arrived (polled, with a deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if len(self.received) >= count:
                    return list(self.received[:count])
            if time.monotonic() > deadline:
                raise AssertionError(f"{len(self.received)} emails arrived within {timeout:g} s, not {count}")
            time.sleep(0.01)

    def settle(self, seconds: float = 0.3) -> int:
        """How many messages have arrived once `seconds` have passed (for "no more arrive")."""
        time.sleep(seconds)
        with self.lock:
            return len(self.received)


class SmtpServer:
    """An aiosmtpd server on 127.0.0.1 and a port of its own; stop() and start() keep the port."""

    def __init__(self, inbox: Inbox, **options: Any) -> None:
        self.inbox = inbox
        self.port = free_port()
        self.options = options
        self.controller: Controller | None = None

    def start(self) -> None:
        self.controller = Controller(
            self.inbox, hostname="127.0.0.1", port=self.port, server_hostname="localhost", **self.options
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def url(self, scheme: str = "smtp", credentials: str = "") -> str:
        host = "localhost" if scheme != "smtp" else "127.0.0.1"
        return f"{scheme}://{credentials + '@' if credentials else ''}{host}:{self.port}"


@pytest.fixture
def inbox() -> Inbox:
    return Inbox()


@pytest.fixture
def smtp_server(inbox: Inbox) -> Iterator[SmtpServer]:
    """A plain SMTP server (no TLS) that keeps what it receives in `inbox`."""
    server = SmtpServer(inbox)
    server.start()
    yield server
    server.stop()


# A certificate authority of the test's own, and a certificate for localhost signed by it -------


@dataclass(frozen=True)
class LoopbackCA:
    ca_file: Path  # trust this (SSL_CERT_FILE) to accept the server
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> LoopbackCA:
    folder = tmp_path_factory.mktemp("ca")
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Widget test CA"))
        .issuer_name(_name("Widget test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    ca_file.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return LoopbackCA(ca_file, cert_file, key_file)


USER, PASSWORD = "pledge-mailer", "p@ss:w/rd%"


def check_login(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    """aiosmtpd's authenticator: only USER with PASSWORD."""
    ok = isinstance(data, LoginPassword) and data.login == USER.encode() and data.password == PASSWORD.encode()
    return AuthResult(success=ok, handled=False)


# Settings, a pledge that asks for confirmation, and what the outbox holds ----------------------


@pytest.fixture
def mail_settings(make_settings: Callable[..., Settings], smtp_server: SmtpServer) -> Callable[..., Settings]:
    """Settings with mail going to the test's SMTP server (overrides on top)."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"smtp_url": smtp_server.url(), "mail_from": MAIL_FROM}
        values.update(overrides)
        return make_settings(**values)

    return make


@pytest.fixture
def settings(mail_settings: Callable[..., Settings]) -> Settings:
    return mail_settings()


def confirming_pledge(settings: Settings, **overrides: Any) -> Pledge:
    """The tests' pledge, asking signers to confirm (mail is configured in `settings`)."""
    values: dict[str, Any] = {
        "slug": SLUG,
        "title": "Keep our data safe",
        "statement_html": STATEMENT,
        "goal": 1000,
        "confirm_email": True,
        **overrides,
    }
    return on_db(settings, lambda store: pledges.add_pledge(store, settings=settings, **values))


def outbox(settings: Settings, dead_only: bool = False) -> list[OutboxMessage]:
    return on_db(settings, lambda store: store.outbox_messages(dead_only=dead_only, limit=1000))
