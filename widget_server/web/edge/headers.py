"""Security headers on every response, and the Content-Security-Policy each page needs.

Views choose who may frame them (`csp(frame_ancestors)`); everything else gets the strict
default: no framing at all, scripts and styles from this origin only, no inline script.
The middleware (`middleware.py`) adds `SecurityHeaders.added(...)` to every response; the
hot views build theirs once with `secured(...)`, and the middleware then only adds HSTS.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable

from starlette.types import Scope

from widget_server.memo import BoundedMemo
from widget_server.messages import SERVER_ERROR
from widget_server.web.fast.responses import RawHeaders

_BASE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
    " connect-src 'self'; form-action 'self'; base-uri 'none'"
)
PERMISSIONS = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
# An exact origin and nothing else: no wildcard, space or semicolon can widen the policy, even
# from a partner row written before origins were validated as strictly as they are now.
_ORIGIN = re.compile(r"^https?://(?:[a-z0-9-]+(?:\.[a-z0-9-]+)*|\[[0-9a-f:.]+\])(?::[0-9]{1,5})?$")

# Every embed page view asks for its partner's policy, and the answer for a set of origins never
# changes. The origins come from partner tokens, so the memo is bounded.
_policies: BoundedMemo[tuple[str, ...], str] = BoundedMemo(1024, 1024 * 1024)


def csp(frame_ancestors: Iterable[str] = ()) -> str:
    """The page policy, framable by exactly these origins ('none' when there are none)."""
    ancestors = tuple(frame_ancestors)
    policy = _policies.get(ancestors)
    if policy is None:
        policy = _policies.put(ancestors, _policy(ancestors))
    return policy


def _policy(frame_ancestors: tuple[str, ...]) -> str:
    ancestors = " ".join(o for o in frame_ancestors if _ORIGIN.match(o)) or "'none'"
    return f"{_BASE_CSP}; frame-ancestors {ancestors}"


DEFAULT_CSP = csp()

_ALWAYS: RawHeaders = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", PERMISSIONS.encode()),
    (b"cross-origin-opener-policy", b"same-origin-allow-popups"),
]
_HSTS = (b"strict-transport-security", b"max-age=31536000")


class Secured(list[tuple[bytes, bytes]]):
    """A response's header list that already holds every security header but HSTS (`secured`).

    The hot answers (the counter, the sign form, the thank-you page, widget.js) build their
    headers once; marked so, the middleware has nothing to look for in them per request.
    """


class SecuredAsIs(Secured):
    """A `Secured` list of an answer the edge sends as it is: too small to be worth compressing
    (the count API's), already compressed, or without a body (a stored asset's gzip and 304). The
    edge asks nothing more of it, neither security headers nor whether to gzip it
    (`web.edge.encoding.compressible`)."""


def secured(headers: RawHeaders) -> Secured:
    """`headers` with the security headers the middleware would add over plain http."""
    return Secured([*headers, *SecurityHeaders._build(*_policy_and_framing(headers), https=False)])


class SecurityHeaders:
    """The headers to append to a response, worked out once per distinct (policy, framing, https)."""

    MAX_ENTRIES = 1024
    MAX_BYTES = 1024 * 1024  # a policy names partners' origins: bounded in bytes too

    def __init__(self) -> None:
        self._added: BoundedMemo[tuple[bytes | None, bool, bool], RawHeaders] = BoundedMemo(
            self.MAX_ENTRIES, self.MAX_BYTES
        )

    def added(self, headers: Iterable[tuple[bytes, bytes]], https: bool) -> RawHeaders:
        """What to append to a response that already has `headers` (never changed in place)."""
        if isinstance(headers, Secured):
            return [_HSTS] if https else []
        key = (*_policy_and_framing(headers), https)
        extra = self._added.get(key)
        if extra is None:
            extra = self._added.put(key, self._build(*key))
        return extra

    @staticmethod
    def _build(policy: bytes | None, framing_set: bool, https: bool) -> RawHeaders:
        extra: RawHeaders = []
        if policy is None:
            policy = DEFAULT_CSP.encode()
            extra.append((b"content-security-policy", policy))
        if b"frame-ancestors 'none'" in policy and not framing_set:
            extra.append((b"x-frame-options", b"DENY"))
        extra += _ALWAYS
        if https:
            extra.append(_HSTS)
        return extra


def _policy_and_framing(headers: Iterable[tuple[bytes, bytes]]) -> tuple[bytes | None, bool]:
    """The response's own Content-Security-Policy (the first) and whether it set X-Frame-Options."""
    policy = None
    framing_set = False
    for name, value in headers:
        name = name.lower()
        if name == b"content-security-policy":
            if policy is None:
                policy = value
        elif name == b"x-frame-options":
            framing_set = True
    return policy, framing_set


def server_error(scope: Scope) -> tuple[bytes, bytes]:
    """A 500 body in the shape of every other error: JSON for the API, a sentence otherwise."""
    accept = dict(scope.get("headers", [])).get(b"accept", b"")
    if scope.get("path", "").startswith("/api/") or b"application/json" in accept:
        body = json.dumps({"error": {"status": 500, "message": SERVER_ERROR}})
        return body.encode(), b"application/json"
    page = f'<!doctype html><html lang="en"><title>Sorry</title><p role="alert">{SERVER_ERROR}</p></html>'
    return page.encode(), b"text/html; charset=utf-8"
