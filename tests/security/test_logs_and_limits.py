"""SECURITY.md, threats 6 and 8, against the real server: no client address in any log line (the
WebSocket upgrade path that printed one is off, and uvicorn's records are scrubbed), a request
head is bounded in size and fields, a head or a body that arrives too slowly is cut off, and the
answers the HTTP layer gives itself (400, 431, 503) carry the security headers."""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import make_pledge
from tests.server_harness import HOST, WidgetServer, http_get
from widget_server import logs
from widget_server.messages import HEADERS_TOO_LARGE, MALFORMED_REQUEST, SERVER_BUSY
from widget_server.settings import Settings

# Generous: a deadline of one second has long passed by then, however busy the machine.
CLOSED_BOUND_SECONDS = 30
PROXY_CLIENT = "198.51.100.77"
SECURITY_HEADERS = (
    b"content-security-policy: default-src 'none'",
    b"frame-ancestors 'none'",
    b"x-frame-options: DENY",
    b"x-content-type-options: nosniff",
    b"referrer-policy: no-referrer",
    b"permissions-policy: camera=()",
)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WidgetServer]:
    """One server with one-second deadlines, trusting 127.0.0.1 as its proxy so that a forwarded
    client address is one it knows (and could log), and a pledge whose form it reads."""
    data = tmp_path_factory.mktemp("limits") / "data"
    make_pledge(Settings.from_env(environ={}, data_dir=data))
    started = WidgetServer.start(
        data,
        WIDGET_HEADER_TIMEOUT_SECONDS="1",
        WIDGET_BODY_TIMEOUT_SECONDS="1",
        WIDGET_TRUSTED_PROXIES="127.0.0.1",
    )
    yield started
    started.stop()


class Client:
    """A raw TCP connection to the server, remembering the address and port it came from."""

    def __init__(self, server: WidgetServer) -> None:
        self.sock = socket.create_connection((HOST, server.port), timeout=CLOSED_BOUND_SECONDS)
        host, port = self.sock.getsockname()[:2]
        self.address = f"{host}:{port}"
        self.sent = 0

    def send(self, data: bytes) -> bool:
        """False once the server has stopped reading (reset or closed the connection)."""
        try:
            self.sock.sendall(data)
        except OSError:
            return False
        self.sent += len(data)
        return True

    def answer(self) -> bytes:
        """Everything the server sends until it closes the connection (fails if it never does)."""
        received = b""
        while True:
            try:
                data = self.sock.recv(65536)
            except ConnectionResetError:
                return received
            except TimeoutError:
                pytest.fail(f"the connection was still open after {CLOSED_BOUND_SECONDS} s: {received[:200]!r}")
            if not data:
                return received
            received += data

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def clients(server: WidgetServer) -> Iterator[list[Client]]:
    """Connections made by a test; their addresses must never be in the server's log."""
    made: list[Client] = []
    yield made
    for client in made:
        client.close()
    log = server.log()
    for client in made:
        assert client.address not in log, client.address


def connect(server: WidgetServer, clients: list[Client]) -> Client:
    client = Client(server)
    clients.append(client)
    return client


def assert_secured(answer: bytes) -> None:
    head = answer.split(b"\r\n\r\n", 1)[0]
    for header in SECURITY_HEADERS:
        assert header in head, header


def test_a_websocket_upgrade_is_answered_as_plain_http_and_logs_no_address(
    server: WidgetServer, clients: list[Client]
) -> None:
    client = connect(server, clients)
    client.send(
        b"GET /any/path HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, close\r\nUpgrade: websocket\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        b"X-Forwarded-For: " + PROXY_CLIENT.encode() + b"\r\n\r\n"
    )
    answer = client.answer()
    assert answer.startswith(b"HTTP/1.1 404 "), answer[:100]
    assert b"sec-websocket-accept" not in answer.lower()
    assert_secured(answer)
    log = server.log()
    assert "WebSocket" not in log
    assert PROXY_CLIENT not in log


def test_malformed_http_gets_a_secured_400_and_logs_no_address(server: WidgetServer, clients: list[Client]) -> None:
    client = connect(server, clients)
    client.send(b"NOT HTTP AT ALL\r\n\r\n")
    answer = client.answer()
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert answer.endswith(MALFORMED_REQUEST.encode())
    assert_secured(answer)


def test_a_32_mb_header_is_refused_long_before_it_is_read(server: WidgetServer, clients: list[Client]) -> None:
    client = connect(server, clients)
    client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: ")
    chunk = b"a" * 65536
    while client.sent < 32 * 1024 * 1024 and client.send(chunk):
        pass
    assert client.sent < 32 * 1024 * 1024  # the server stopped reading, and closed
    answer = client.answer()
    # The 431 is written before the close; a reset may overtake it, but never a 200.
    if answer:
        assert answer.startswith(b"HTTP/1.1 431 "), answer[:100]
        assert_secured(answer)
    assert http_get(server.url + "/healthz")[0] == 200


def test_a_head_with_more_fields_than_allowed_gets_431(server: WidgetServer, clients: list[Client]) -> None:
    client = connect(server, clients)
    fields = b"".join(b"X-Field-%d: x\r\n" % n for n in range(150))
    client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n" + fields + b"\r\n")
    answer = client.answer()
    assert answer.startswith(b"HTTP/1.1 431 ")
    assert answer.endswith(HEADERS_TOO_LARGE.encode())
    assert_secured(answer)


def test_a_half_sent_head_is_closed_within_the_header_timeout(server: WidgetServer, clients: list[Client]) -> None:
    client = connect(server, clients)
    client.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: still typing")
    assert client.answer() == b""


def test_a_connection_that_sends_nothing_is_closed_too(server: WidgetServer, clients: list[Client]) -> None:
    assert connect(server, clients).answer() == b""


def test_a_half_sent_body_is_closed_within_the_body_timeout(server: WidgetServer, clients: list[Client]) -> None:
    """The pledge exists, so the sign view waits for the form: only the deadline ends the wait."""
    client = connect(server, clients)
    client.send(
        b"POST /embed/data-firewall/sign HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\nname=Ana"
    )
    assert b"200 OK" not in client.answer()


def test_a_kept_alive_connection_serves_requests_before_its_deadlines(
    server: WidgetServer, clients: list[Client]
) -> None:
    client = connect(server, clients)
    client.send(
        b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    assert client.answer().count(b"HTTP/1.1 200 OK") == 2


def test_a_token_in_the_path_is_not_logged(server: WidgetServer) -> None:
    """A confirmation link and a partner's report link carry their token in the path: whoever
    reads the log must not be able to follow them."""
    secret = "TOKENTOKENTOKEN.abcdef.ghijkl"
    for path in (f"/confirm/{secret}", f"/partner-report/{secret}"):
        http_get(server.url + path)
    deadline = time.monotonic() + CLOSED_BOUND_SECONDS  # access lines are written in batches
    while "/partner-report/" not in server.log() and time.monotonic() < deadline:
        time.sleep(0.05)
    paths = [json.loads(line).get("path") for line in server.log().splitlines() if line.startswith("{")]
    assert "/confirm/…" in paths
    assert "/partner-report/…" in paths
    assert secret not in server.log()


def test_the_server_logged_no_client_address_and_stops_cleanly(server: WidgetServer) -> None:
    log = server.log()
    assert f"Uvicorn running on {server.url}" in log  # our own address stays
    assert "127.0.0.1:" not in log.replace(f"127.0.0.1:{server.port}", "")
    assert PROXY_CLIENT not in log
    assert server.log_errors() == []


def test_beyond_max_connections_the_503_carries_the_security_headers(tmp_path: Path) -> None:
    server = WidgetServer.start(tmp_path / "data", WIDGET_MAX_CONNECTIONS="3", WIDGET_HEADER_TIMEOUT_SECONDS="600")
    made: list[Client] = []
    try:
        for _ in range(3):
            connect(server, made)
        busy = connect(server, made)
        busy.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = busy.answer()
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert answer.endswith(SERVER_BUSY.encode())
        assert_secured(answer)
    finally:
        for client in made:
            client.close()
        assert server.stop() == 0


def test_library_records_are_scrubbed_of_addresses_but_the_one_we_listen_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The filter itself, on lines shaped as uvicorn writes them."""
    logs.hide_client_addresses(listening=("127.0.0.1", 8000))
    try:
        caplog.set_level(logging.INFO)
        uvicorn_log = logging.getLogger("uvicorn.error")
        uvicorn_log.info('%s - "WebSocket %s" %d', "203.0.113.9:51234", "/x", 403)
        uvicorn_log.info("%s:%d - HTTP connection made", "2001:db8::7", 40000)
        uvicorn_log.info("Uvicorn running on %s://%s:%d", "http", "127.0.0.1", 8000)
        logging.getLogger("asyncio").error("peer %s went away", ("198.51.100.4", 50000))
        messages = [record.getMessage() for record in caplog.records]
        assert messages == [
            '(address) - "WebSocket /x" 403',
            "(address) - HTTP connection made",
            "Uvicorn running on http://127.0.0.1:8000",
            "peer ('(address)', 50000) went away",
        ]
    finally:
        for name in logs.LIBRARY_LOGGERS:
            library = logging.getLogger(name)
            for found in [f for f in library.filters if isinstance(f, logs.ClientAddressFilter)]:
                library.removeFilter(found)
