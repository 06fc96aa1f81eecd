"""Refuse request bodies over a small limit with 413, before any parsing happens.

The middleware (`middleware.py`) applies it: a declared Content-Length over the limit is
refused before the body is read, and a body that turns out longer is cut off as it arrives.
"""

from __future__ import annotations

from starlette.types import Message, Receive, Scope

from widget_server.messages import TOO_LARGE
from widget_server.web.errors import PayloadTooLarge


def limited_receive(scope: Scope, receive: Receive, max_bytes: int) -> Receive:
    """`receive` as the app gets it: refusing a declared Content-Length over the limit (or one
    that is not a number) unread, cutting off a longer body as it arrives, and as it is for an
    HTTP/1 request that announces no body (no length and no transfer coding means none there),
    which most requests are: a counter or page view pays for no wrapper. Under any other
    protocol version a body needs no announcement, so every request is metered."""
    announced = scope.get("http_version") not in ("1.0", "1.1")
    for name, value in scope["headers"]:
        if name == b"content-length":
            if not value.isdigit() or int(value) > max_bytes:
                return refuse
            announced = True
        elif name == b"transfer-encoding":
            announced = True
    return limited(receive, max_bytes) if announced else receive


async def refuse() -> Message:
    """A receive for a request refused unread: the app's error handler answers the 413."""
    raise PayloadTooLarge(TOO_LARGE)


def limited(receive: Receive, max_bytes: int) -> Receive:
    """`receive`, raising PayloadTooLarge once more than `max_bytes` of body have arrived."""
    seen = 0

    async def receive_within_limit() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > max_bytes:
                raise PayloadTooLarge(TOO_LARGE)
        return message

    return receive_within_limit
