"""Running the app under uvicorn, with a graceful stop that loses nothing.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, lets in-flight requests finish,
then runs the lifespan shutdown, which commits every queued signature before the process exits 0.

The HTTP layer is uvicorn's httptools protocol with the limits it lacks (`LimitedHttpProtocol`):
a bounded request head, deadlines for the head and the body, and the security headers on the
answers it gives itself. SECURITY.md lists the matching reverse-proxy settings.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType
from typing import Any

import httptools
import uvicorn
from starlette.applications import Starlette
from uvicorn.protocols.http.flow_control import service_unavailable
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol, RequestResponseCycle
from uvicorn.server import ServerState
from uvicorn.supervisors import Multiprocess

from widget_server import logs, messages
from widget_server.settings import Settings
from widget_server.web.app import create_app
from widget_server.web.edge.headers import secured

# Header fields in one request head; a browser sends fewer than twenty. Apache's default is 100 too.
MAX_HEADER_FIELDS = 100


@dataclass(frozen=True)
class Limits:
    """What one connection may make the server hold, and for how long."""

    max_head_bytes: int
    max_header_fields: int
    header_timeout: float
    body_timeout: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            settings.max_header_bytes, MAX_HEADER_FIELDS, settings.header_timeout_seconds, settings.body_timeout_seconds
        )


class _HeadTooLarge(Exception):
    """Raised inside a parser callback to refuse a head with too many fields."""


def _plain_answer(status: int, text: str) -> bytes:
    """A whole plain-text response that closes the connection, with our security headers."""
    body = text.encode()
    headers = secured(
        [
            (b"content-type", b"text/plain; charset=utf-8"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
    )
    return b"".join([STATUS_LINE[status], *(name + b": " + value + b"\r\n" for name, value in headers), b"\r\n", body])


async def _unavailable(scope: Any, receive: Any, send: Any) -> None:
    """uvicorn's answer beyond `limit_concurrency`, with our headers and sentence."""
    body = messages.SERVER_BUSY.encode()
    headers = secured([(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())])
    await send({"type": "http.response.start", "status": 503, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class LimitedHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with limits on what a client can make the server hold.

    httptools accepts a request head of any size, and uvicorn waits for a head or a body as long
    as the client likes: one client could make the server hold megabytes per connection, or
    thousands of connections by sending a byte now and then. Here a head over `max_head_bytes`
    or `max_header_fields` is answered 431 and the connection closed; a head must be complete
    within `header_timeout` (of the connection opening, or of its first byte on a kept-alive
    connection) and a body within `body_timeout` of its head, or the connection is closed.
    The answers uvicorn gives itself (400, 431, 503) carry the app's security headers.
    """

    def __init__(
        self,
        config: uvicorn.Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
        *,
        limits: Limits,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.limits = limits

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_bytes = 0
        self._body_pending = False
        self._deadline: asyncio.TimerHandle | None = None
        # uvicorn sets no timer before the first request: a client that connects and says
        # nothing would hold its connection for ever.
        self._arm(self.limits.header_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        # uvicorn's data_received, plus the head's size, the 431 and the deadlines. Bytes are
        # counted whole chunks at a time (a chunk that starts between requests or inside a head)
        # and judged after parsing: a count still standing then belongs to a head not yet complete
        # (a completed head sets it back to 0).
        if not self._body_pending:
            self._head_bytes += len(data)
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if isinstance(exc.__context__, _HeadTooLarge):
                self._answer_and_close(431, messages.HEADERS_TOO_LARGE)
            else:
                self._malformed()
            return
        except httptools.HttpParserError:
            self._malformed()
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            # Otherwise (ws="none") the request was answered as the plain request it also is.
            # uvicorn would log two warnings here, for a request any web page can make its
            # visitors' browsers send.
            return
        if self._head_bytes:
            if self._head_bytes > self.limits.max_head_bytes:
                self._answer_and_close(431, messages.HEADERS_TOO_LARGE)
            elif self._deadline is None:
                self._arm(self.limits.header_timeout)
        elif self._body_pending and self._deadline is None:
            self._arm(self.limits.body_timeout)

    def on_headers_complete(self) -> None:
        # The fields are counted once they are all in: their bytes were already bounded.
        if len(self.headers) > self.limits.max_header_fields:
            raise _HeadTooLarge
        self._head_bytes = 0
        self._body_pending = True
        if self._deadline is not None:
            self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        self._body_pending = False
        if self._deadline is not None:
            self._disarm()
        super().on_message_complete()

    def send_400_response(self, msg: str) -> None:
        self._answer_and_close(400, messages.MALFORMED_REQUEST)

    def _start_asgi_task(self, cycle: RequestResponseCycle, app: Any) -> None:
        super()._start_asgi_task(cycle, _unavailable if app is service_unavailable else app)

    def _malformed(self) -> None:
        self.logger.warning("Invalid HTTP request received.")
        self._answer_and_close(400, messages.MALFORMED_REQUEST)

    def _answer_and_close(self, status: int, text: str) -> None:
        self._disarm()
        if not self.transport.is_closing():
            self.transport.write(_plain_answer(status, text))
            self.transport.close()

    def _arm(self, seconds: float) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(seconds, self._too_slow, seconds)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self, seconds: float) -> None:
        self._deadline = None
        if self.flow.read_paused:
            # We stopped reading (a pipelined request waits its turn): not the client's delay.
            self._arm(seconds)
        elif not self.transport.is_closing():
            self.transport.close()


def uvicorn_options(host: str, port: int, settings: Settings | None = None) -> dict[str, Any]:
    """The uvicorn settings we serve with; the benchmark's bare-Starlette ceiling uses the same."""
    settings = settings or Settings()
    return {
        "host": host,
        "port": port,
        # A partial rather than a class made for these limits: it pickles, for worker processes.
        "http": functools.partial(LimitedHttpProtocol, limits=Limits.of(settings)),
        # The service speaks no WebSocket. With the protocol off, an upgrade request is answered
        # as plain HTTP, and uvicorn's WebSocket log lines, which print the client's address
        # and port, cannot happen.
        "ws": "none",
        # Forwarded headers are judged by our own middleware against WIDGET_TRUSTED_PROXIES.
        "proxy_headers": False,
        "server_header": False,
        # uvicorn's access log holds client IPs; ours (logs.AccessLogMiddleware) does not.
        "access_log": False,
        "log_config": None,
        # An idle kept-alive connection is closed after this; the head and body deadlines are
        # LimitedHttpProtocol's.
        "timeout_keep_alive": 5,
        # Connections (or requests in progress) beyond which uvicorn answers 503; by default
        # below the usual 1,024 open files, so a flood meets that answer, not refused accepts.
        "limit_concurrency": settings.max_connections,
        "timeout_graceful_shutdown": 30,
        # A start-up failure (bad settings, unreadable database) stops the server instead of
        # leaving one that answers 500 to everything.
        "lifespan": "on",
    }


def config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    # The address we listen on may appear in uvicorn's own lines ("running on"); no other may.
    logs.hide_client_addresses(listening=(host, port))
    return uvicorn.Config(create_app(settings), **uvicorn_options(host, port, settings))


def _stopped(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


@contextlib.contextmanager
def graceful_sigterm() -> Iterator[None]:
    """Exit 0 after uvicorn's graceful stop on SIGTERM.

    uvicorn handles SIGTERM itself while it runs, then restores the previous handler and
    re-raises the signal. With the default handler the process would die with status -15 after
    a clean stop; a stop that committed everything is a success: 0.
    """
    previous = signal.signal(signal.SIGTERM, _stopped)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        logs.flush()


def serve(settings: Settings, host: str, port: int, workers: int = 1) -> None:
    """Serve until SIGTERM or Ctrl-C: in this process, or in `workers` processes on one socket."""
    logs.configure()
    with graceful_sigterm():
        if workers == 1:
            uvicorn.Server(config(settings, host, port)).run()
            return
        # Worker processes start afresh and build their own app (`worker_app`) from the
        # environment: every setting goes there, the key read or made once, here.
        os.environ.update(settings.as_environment())
        logs.hide_client_addresses(listening=(host, port))
        options = uvicorn_options(host, port, settings)
        shared = uvicorn.Config("widget_server.server:worker_app", factory=True, workers=workers, **options)
        Multiprocess(shared, sockets=[shared.bind_socket()]).run()


def worker_app() -> Starlette:
    """One worker process's app (`serve --workers`): logging as `serve` sets it, settings from
    the environment `serve` filled."""
    logs.configure()
    logs.hide_client_addresses()
    return create_app(Settings.from_env())
