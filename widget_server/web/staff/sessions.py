"""Staff session cookies: signed, HttpOnly, SameSite=Lax, Secure over HTTPS, path /admin.

A session names its account and the account's session epoch (a password change moves it, so
every older session ends), when it began (the absolute lifetime) and when it was last used
(the idle timeout), and carries the random CSRF secret its forms must echo. Nothing is kept on
the server; the signature makes it unforgeable and the epoch makes it revocable.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer
from starlette.requests import Request
from starlette.responses import Response

from widget_server.settings import Settings
from widget_server.storage.store import StaffUser

COOKIE = "staff_session"
LOGIN_COOKIE = "staff_login"  # the sign-in form's own CSRF secret, before there is a session
PATH = "/admin"
REFRESH_AFTER = 60.0  # re-issue the cookie (moving "last used") at most once a minute


@dataclass(frozen=True)
class Session:
    user_id: int
    epoch: int
    started: float
    seen: float
    csrf: str

    def valid_for(self, user: StaffUser | None) -> bool:
        return user is not None and user.id == self.user_id and user.session_epoch == self.epoch

    def current(self, now: float, settings: Settings) -> bool:
        """Within the absolute lifetime and the idle timeout at `now`."""
        return (
            self.started <= now + 60
            and now - self.started <= settings.staff_session_hours * 3600
            and now - self.seen <= settings.staff_idle_minutes * 60
        )


class Sessions:
    def __init__(self, keys: list[str]) -> None:
        kwargs = {"digest_method": hashlib.sha256}
        self._session = URLSafeSerializer(keys, salt="staff-session", signer_kwargs=kwargs)
        self._login = URLSafeSerializer(keys, salt="staff-login", signer_kwargs=kwargs)

    def new(self, user: StaffUser, now: float) -> Session:
        return Session(user.id, user.session_epoch, now, now, secrets.token_urlsafe(24))

    def dumps(self, session: Session) -> str:
        data = {"u": session.user_id, "e": session.epoch, "s": session.started, "t": session.seen, "c": session.csrf}
        return str(self._session.dumps(data))

    def loads(self, text: str) -> Session | None:
        try:
            data: Any = self._session.loads(text)
            return Session(int(data["u"]), int(data["e"]), float(data["s"]), float(data["t"]), str(data["c"]))
        except (BadSignature, KeyError, TypeError, ValueError):
            return None

    def touched(self, session: Session, now: float) -> Session | None:
        """The session with "last used" moved to `now`, or None when the cookie can stay as it is."""
        return replace(session, seen=now) if now - session.seen >= REFRESH_AFTER else None

    def login_secret(self, request: Request) -> str | None:
        try:
            return str(self._login.loads(request.cookies.get(LOGIN_COOKIE, "")))
        except BadSignature:
            return None

    def new_login_secret(self) -> tuple[str, str]:
        """(the secret for the form, the cookie value that carries it signed)."""
        secret = secrets.token_urlsafe(24)
        return secret, str(self._login.dumps(secret))


def same_secret(sent: str, expected: str) -> bool:
    return bool(sent) and bool(expected) and hmac.compare_digest(sent.encode(), expected.encode())


def set_cookie(response: Response, request: Request, name: str, value: str, max_age: int | None) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )


def clear_cookie(response: Response, request: Request, name: str) -> None:
    response.delete_cookie(name, path=PATH, httponly=True, samesite="lax", secure=request.url.scheme == "https")
