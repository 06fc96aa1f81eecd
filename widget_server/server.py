"""Running the app under uvicorn, with a graceful stop that loses nothing.

On SIGTERM or Ctrl-C uvicorn stops accepting connections, lets in-flight requests finish,
then runs the lifespan shutdown, which commits every queued signature before the process exits 0.
"""

from __future__ import annotations

import uvicorn

from . import logs
from .app import create_app
from .settings import Settings


def config(settings: Settings, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(
        create_app(settings),
        host=host,
        port=port,
        # Forwarded headers are judged by our own middleware against WIDGET_TRUSTED_PROXIES.
        proxy_headers=False,
        server_header=False,
        # uvicorn's access log holds client IPs; ours (logs.AccessLogMiddleware) does not.
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=30,
    )


def serve(settings: Settings, host: str, port: int) -> None:
    logs.configure()
    uvicorn.Server(config(settings, host, port)).run()
