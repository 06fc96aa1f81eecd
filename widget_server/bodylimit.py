"""Refuse request bodies over a small limit with 413, before any parsing happens."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import PayloadTooLarge

TOO_LARGE = "That form was too large to accept. Please shorten what you typed and try again."


class BodyLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit() or int(value) > self.max_bytes:
                    scope = {**scope, "body_too_large": True}
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise PayloadTooLarge(TOO_LARGE)
            return message

        if scope.get("body_too_large"):
            # Answered by the app's error handler, so the 413 looks like every other error.
            async def refuse() -> Message:
                raise PayloadTooLarge(TOO_LARGE)

            await self.app(scope, refuse, send)
            return
        await self.app(scope, limited_receive, send)
