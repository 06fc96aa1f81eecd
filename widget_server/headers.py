"""Security headers on every response, and the Content-Security-Policy each page needs.

Views choose who may frame them (`csp(frame_ancestors)`); everything else gets the strict
default: no framing at all, scripts and styles from this origin only, no inline script.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BASE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'"
)
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# An exact origin and nothing else: no wildcard, space or semicolon can widen the policy, even
# from a partner row written before origins were validated as strictly as they are now.
_ORIGIN = re.compile(r"^https?://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$")
SERVER_ERROR = "Sorry, something went wrong on our side. Please try again in a moment."


def csp(frame_ancestors: Iterable[str] = ()) -> str:
    """The page policy, framable by exactly these origins ('none' when there are none)."""
    ancestors = " ".join(o for o in frame_ancestors if _ORIGIN.match(o)) or "'none'"
    return f"{_BASE_CSP}; frame-ancestors {ancestors}"


DEFAULT_CSP = csp()


def _server_error(scope: Scope) -> tuple[bytes, bytes]:
    """A 500 body in the shape of every other error: JSON for the API, a sentence otherwise."""
    accept = dict(scope.get("headers", [])).get(b"accept", b"")
    if scope.get("path", "").startswith("/api/") or b"application/json" in accept:
        body = json.dumps({"error": {"status": 500, "message": SERVER_ERROR}})
        return body.encode(), b"application/json"
    page = f'<!doctype html><html lang="en"><title>Sorry</title><p role="alert">{SERVER_ERROR}</p></html>'
    return page.encode(), b"text/html; charset=utf-8"


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                policy = next((v for n, v in headers if n.lower() == b"content-security-policy"), None)
                if policy is None:
                    policy = DEFAULT_CSP.encode()
                    headers.append((b"content-security-policy", policy))
                if b"frame-ancestors 'none'" in policy and b"x-frame-options" not in present:
                    headers.append((b"x-frame-options", b"DENY"))
                headers += [
                    (b"x-content-type-options", b"nosniff"),
                    (b"referrer-policy", b"no-referrer"),
                    (b"permissions-policy", PERMISSIONS.encode()),
                    (b"cross-origin-opener-policy", b"same-origin-allow-popups"),
                ]
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:
            # Starlette's own 500 is written outside this middleware, without these headers;
            # answer here instead, then re-raise so the server still logs the bug.
            if not started:
                body, media_type = _server_error(scope)
                await send_with_headers(
                    {
                        "type": "http.response.start",
                        "status": 500,
                        "headers": [
                            (b"content-type", media_type),
                            (b"content-length", str(len(body)).encode()),
                            (b"cache-control", b"no-store"),
                        ],
                    }
                )
                await send_with_headers({"type": "http.response.body", "body": body})
            raise
