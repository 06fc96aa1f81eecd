"""Running the app under uvicorn, with a graceful stop that loses nothing.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, lets in-flight requests finish,
then runs the lifespan shutdown, which commits every queued signature before the process exits 0.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType
from typing import Any

import uvicorn

from widget_server import logs
from widget_server.settings import Settings
from widget_server.web.app import create_app


def uvicorn_options(host: str, port: int) -> dict[str, Any]:
    """The uvicorn settings we serve with; the benchmark's bare-Starlette ceiling uses the same."""
    return {
        "host": host,
        "port": port,
        # Forwarded headers are judged by our own middleware against WIDGET_TRUSTED_PROXIES.
        "proxy_headers": False,
        "server_header": False,
        # uvicorn's access log holds client IPs; ours (logs.AccessLogMiddleware) does not.
        "access_log": False,
        "log_config": None,
        "timeout_graceful_shutdown": 30,
        # A start-up failure (bad settings, unreadable database) stops the server instead of
        # leaving one that answers 500 to everything.
        "lifespan": "on",
    }


def config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(create_app(settings), **uvicorn_options(host, port))


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


def serve(settings: Settings, host: str, port: int) -> None:
    logs.configure()
    with graceful_sigterm():
        uvicorn.Server(config(settings, host, port)).run()
