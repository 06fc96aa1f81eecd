"""The one middleware every request passes through: proxy check, body limit, security headers,
compression and the access log, in a single pass.

They were four middlewares, each wrapping `send` or `receive` and each re-reading the request's
headers (what that cost is in BENCHMARKS.md). Here there is one
`send` wrapper, the added security headers are ready-made byte pairs (worked out once per
distinct policy, `headers.SecurityHeaders`, or already in a hot view's `headers.Secured` list),
and `receive` is wrapped only for a request that announces a body.
Each rule still lives in its own module; this one only decides the order they apply in:
proxies first (the scheme decides HSTS), then the body limit, then the app, whose answer gets
the security headers and, when the client accepts it and the answer is worth it, gzip
(`web.fast.compressed`, which makes it cheap), then the log line.
"""

from __future__ import annotations

import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from widget_server import logs
from widget_server.web.edge.bodylimit import limited_receive
from widget_server.web.edge.encoding import compressible, gzip_wanted, with_gzip
from widget_server.web.edge.headers import SecurityHeaders, server_error
from widget_server.web.edge.proxies import TrustedProxies


class EdgeMiddleware:
    def __init__(
        self, app: ASGIApp, trusted: tuple[str, ...] = (), max_bytes: int = 16 * 1024, access_log: bool = True
    ) -> None:
        self.app = app
        self.proxies = TrustedProxies(trusted)
        self.max_bytes = max_bytes
        self.access_log = access_log
        self.security = SecurityHeaders()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started_at = time.perf_counter()
        if self.proxies.networks:
            scope = self.proxies.resolve(scope)
        https = scope.get("scheme") == "https"
        # A refusal is answered by the app's error handler, so the 413 looks like every other error.
        receive = limited_receive(scope, receive, self.max_bytes)
        added = self.security.added
        status = 0
        held: Message | None = None

        async def send_secured(message: Message) -> None:
            nonlocal status, held
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = message.get("headers", ())
                extra = added(headers, https)
                if extra:
                    headers = message["headers"] = [*headers, *extra]
                # Whether the client takes gzip matters only for an answer worth compressing,
                # so most answers (small JSON, redirects, stored gzipped assets) never look for it.
                if compressible(headers):
                    if gzip_wanted(scope):
                        held = message  # sent with the body, once its encoding is known
                        return
                    message["headers"] = [*headers, (b"vary", b"accept-encoding")]
            elif held is not None:
                start, held = held, None
                if not message.get("more_body", False):
                    start, message = with_gzip(start, message)
                await send(start)
            await send(message)

        try:
            await self.app(scope, receive, send_secured)
        except Exception:
            # Starlette's own 500 is written outside this middleware, without these headers;
            # answer here instead, then re-raise so the server still logs the bug.
            if not status:
                body, media_type = server_error(scope)
                headers = [
                    (b"content-type", media_type),
                    (b"content-length", str(len(body)).encode()),
                    (b"cache-control", b"no-store"),
                ]
                await send_secured({"type": "http.response.start", "status": 500, "headers": headers})
                await send_secured({"type": "http.response.body", "body": body})
            raise
        finally:
            if self.access_log:
                logs.access(scope["method"], scope["path"], status or 500, started_at)
