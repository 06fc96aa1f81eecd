"""Webhook tests' parts: a real HTTP receiver on loopback that records every request and can answer
any status, hang, or be down; a TLS variant with its own test CA; a wall clock the tests can nudge;
and the factories for a pledge with a partner whose webhook points at the receiver."""

from __future__ import annotations

import asyncio
import datetime
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h11
import pytest
from standardwebhooks import Webhook

from tests.conftest import FakeClock, make_partner, make_pledge, on_db
from widget_server.core.models import NewSignature
from widget_server.core.times import iso_utc
from widget_server.services import webhooks
from widget_server.settings import Settings
from widget_server.storage.store import OutboxMessage, Store

# How long a test waits for something the worker does in the background before failing.
DEADLINE = 20.0


@dataclass(frozen=True)
class Request:
    """One request the receiver read whole: when, where, the headers (lower-case names), the body."""

    at: float
    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int | None  # what it was answered; None: not answered (hanging, or down mid-request)

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")


class Receiver:
    """An HTTP/1.1 server on 127.0.0.1 in a thread of its own: a partner's CRM, as the worker meets it.

    `status` is what it answers (200 unless set); `hang()` reads requests and never answers; `down()`
    stops listening (connections are refused) and `up()` listens again on the same port.
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.tls = tls
        self.requests: list[Request] = []
        self.status = 200
        self.hanging = False
        self.delay = 0.0  # seconds before each answer, as a busy CRM takes
        self.port = 0
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        self.up()

    # Control, from the test's thread.

    def up(self) -> None:
        asyncio.run_coroutine_threadsafe(self._listen(), self._loop).result(10)

    def down(self) -> None:
        asyncio.run_coroutine_threadsafe(self._stop_listening(), self._loop).result(10)

    def hang(self) -> None:
        self.hanging = True

    def answer(self, status: int) -> None:
        self.hanging = False
        self.status = status

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def url(self, path: str = "/hooks/pledge", host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls else "http"
        return f"{scheme}://{host}:{self.port}{path}"

    def answered(self) -> list[Request]:
        """Requests answered 2xx: the deliveries."""
        with self._lock:
            return [r for r in self.requests if r.status is not None and 200 <= r.status < 300]

    def all(self) -> list[Request]:
        with self._lock:
            return list(self.requests)

    def wait_for(self, count: int, answered: bool = True, deadline: float = DEADLINE) -> list[Request]:
        """The first `count` requests (answered 2xx ones only, by default), once there are that many."""
        end = time.monotonic() + deadline
        while True:
            found = self.answered() if answered else self.all()
            if len(found) >= count:
                return found
            if time.monotonic() > end:
                raise AssertionError(f"the receiver got {len(found)} requests, not {count}, within {deadline:g} s")
            time.sleep(0.02)

    # The server, in its own thread.

    async def _listen(self) -> None:
        if self._server is None:
            self._server = await asyncio.start_server(self._serve, "127.0.0.1", self.port, ssl=self.tls)
            self.port = self._server.sockets[0].getsockname()[1]

    async def _stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None

    async def _shutdown(self) -> None:
        await self._stop_listening()
        others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in others:
            task.cancel()
        await asyncio.gather(*others, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connection = h11.Connection(h11.SERVER)
        head: h11.Request | None = None
        body = b""
        try:
            while True:
                event = connection.next_event()
                if event is h11.NEED_DATA:
                    data = await reader.read(65536)
                    connection.receive_data(data)
                    if not data and head is None:
                        return
                    continue
                if isinstance(event, h11.Request):
                    head = event
                elif isinstance(event, h11.Data):
                    body += bytes(event.data)
                elif isinstance(event, h11.EndOfMessage):
                    break
                else:
                    return
            assert head is not None
            headers = {k.decode().lower(): v.decode() for k, v in head.headers}
            status = None if self.hanging else self.status
            with self._lock:
                self.requests.append(
                    Request(time.time(), head.method.decode(), head.target.decode(), headers, body, status)
                )
            if status is None:
                await asyncio.sleep(3600)  # until the client gives up, or the test ends
                return
            await asyncio.sleep(self.delay)
            writer.write(connection.send(h11.Response(status_code=status, headers=[("Content-Length", "2")])) or b"")
            writer.write(connection.send(h11.Data(data=b"ok")) or b"")
            writer.write(connection.send(h11.EndOfMessage()) or b"")
            await writer.drain()
        except (OSError, h11.ProtocolError, ssl.SSLError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    try:
        yield found
    finally:
        found.close()


@dataclass(frozen=True)
class CertificateAuthority:
    """A certificate authority made for one test, and a server context for `localhost` and 127.0.0.1."""

    ca_file: Path
    server: ssl.SSLContext

    def client(self) -> ssl.SSLContext:
        """A client context that trusts this CA only (and checks names, as the default does)."""
        return ssl.create_default_context(cafile=str(self.ca_file))


@pytest.fixture
def test_ca(tmp_path: Path) -> CertificateAuthority:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Webhook test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        # A name only: a client that connects to 127.0.0.1 must check "localhost" (server_hostname)
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_file = tmp_path / "ca.pem"
    ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_file = tmp_path / "server.pem"
    cert_file.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server.load_cert_chain(cert_file)
    return CertificateAuthority(ca_file, server)


@pytest.fixture
def tls_receiver(test_ca: CertificateAuthority) -> Iterator[Receiver]:
    found = Receiver(tls=test_ca.server)
    try:
        yield found
    finally:
        found.close()


class WallClock(FakeClock):
    """The real time, which a test may move on (a form must look filled in for a few seconds): webhook
    timestamps are checked against the receiver's own clock, so the app's clock must be real."""

    def __init__(self) -> None:
        super().__init__()
        self.offset = 0.0

    def __call__(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture
def clock() -> WallClock:  # overrides tests/conftest.py's fake clock for these tests
    return WallClock()


@pytest.fixture
def make_settings(tmp_path: Path, engine: str) -> Callable[..., Settings]:
    """As tests/conftest.py's, with webhooks to loopback allowed and retries within a second."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "db_path": engine,
            "data_dir": tmp_path / "data",
            "secret_key": "test-secret-key-of-at-least-32-bytes",
            "public_url": "http://testserver",
            "cache_seconds": 0.0,
            "min_fill_seconds": 0.0,
            "rate_limit": "off",
            "webhook_allow_local": "on",
            "outbox_first_retry_seconds": 0.2,
        }
        values.update(overrides)
        return Settings.from_env(environ={}, **values)

    return make


def verified(secret: str, request: Request) -> Any:
    """The request's JSON body, once standardwebhooks has checked its signature and timestamp."""
    return Webhook(secret).verify(request.body, request.headers)


def partner_with_webhook(settings: Settings, url: str, name: str = "Riverside") -> tuple[int, str, str]:
    """The test pledge (made if need be) and a partner whose webhook is `url`: (partner id, its token,
    the webhook's secret)."""
    if on_db(settings, lambda store: store.pledge_by_slug("data-firewall")) is None:
        make_pledge(settings)
    creds = make_partner(settings, name=name)
    done = on_db(settings, lambda store: webhooks.set_webhook(store, settings, "data-firewall", name, url))
    return creds.partner.id, creds.token, done.secret


def outbox(settings: Settings, dead_only: bool = False) -> list[OutboxMessage]:
    return on_db(settings, lambda store: store.outbox_messages(dead_only=dead_only, limit=10_000))


def wait_until(check: Callable[[], Any], deadline: float = DEADLINE, what: str = "the condition") -> Any:
    """Poll `check` until it returns something true; its value. Fails after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"{what} did not happen within {deadline:g} s")
        time.sleep(0.02)


def consenting(pledge_id: int, partner_id: int, email: str, at: float, **fields: Any) -> NewSignature:
    """A signature through a partner that agreed to hear from it."""
    values: dict[str, Any] = {
        "pledge_id": pledge_id,
        "partner_id": partner_id,
        "email": email,
        "name": "Ana Teacher",
        "opt_in_partner": True,
        "origin": "https://riverside.example",
        "created_at": iso_utc(at),
    }
    values.update(fields)
    return NewSignature(**values)


async def write(store: Store, *signatures: NewSignature) -> None:
    await store.write_signatures(list(signatures))
