"""Security headers on every response, and the Content-Security-Policy each page needs.

Views choose who may frame them (`csp(frame_ancestors)`); everything else gets the strict
default: no framing at all, scripts and styles from this origin only, no inline script.
"""

from __future__ import annotations

from collections.abc import Iterable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

_BASE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'"
)
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"


def csp(frame_ancestors: Iterable[str] = ()) -> str:
    """The page policy, framable by exactly these origins ('none' when there are none)."""
    ancestors = " ".join(frame_ancestors) or "'none'"
    return f"{_BASE_CSP}; frame-ancestors {ancestors}"


DEFAULT_CSP = csp()


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
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

        await self.app(scope, receive, send_with_headers)
