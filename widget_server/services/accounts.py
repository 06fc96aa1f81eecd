"""Staff accounts and what each role may do; signing in, with failed attempts limited.

Roles: an owner does everything (staff accounts, data-protection requests, the audit log);
a campaigner runs pledges, partners, moderation, abuse and exports; a viewer reads dashboards.
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Callable

from widget_server import messages
from widget_server.core.signform import normalise_email
from widget_server.core.times import utc_now
from widget_server.errors import Conflict, Invalid, NotAllowed, NotFound, RateLimited
from widget_server.security import passwords
from widget_server.security.passwords import DEFAULT_COST, Cost
from widget_server.services.people import checked_email
from widget_server.storage.store import StaffUser, Store

ROLES = ("owner", "campaigner", "viewer")

# What each role may do. "read": the dashboards and one's own account; "campaign": pledges,
# partners, organisations, abuse and exports; "own": accounts, people and the audit log.
CAPABILITIES = {
    "owner": frozenset({"read", "campaign", "own"}),
    "campaigner": frozenset({"read", "campaign"}),
    "viewer": frozenset({"read"}),
}

# Failed sign-ins: at most this many in the window per account, and per client. A limit ends
# on its own once the failures are older than the window, so nobody can lock an account for
# longer than that after their last attempt; and while an account is held, nothing is checked,
# so guessing gains nothing.
ACCOUNT_FAILURES = 10
CLIENT_FAILURES = 30
FAILURE_WINDOW = 15 * 60.0


def can(role: str, capability: str) -> bool:
    return capability in CAPABILITIES.get(role, frozenset())


def checked_role(role: str) -> str:
    if role not in ROLES:
        raise Invalid(messages.STAFF_BAD_ROLE.format(role=role))
    return role


def checked_password(password: str) -> str:
    if len(password) < passwords.MIN_LENGTH:
        raise Invalid(messages.STAFF_PASSWORD_SHORT.format(length=passwords.MIN_LENGTH))
    if len(password) > passwords.MAX_LENGTH:
        raise Invalid(messages.STAFF_PASSWORD_SHORT.format(length=passwords.MIN_LENGTH))
    return password


async def hashed(password: str, cost: Cost) -> str:
    # On a worker thread: a slow KDF on the event loop would stall every widget request with it.
    return await asyncio.to_thread(passwords.hash_password, checked_password(password), cost)


async def find_user(store: Store, email: str) -> StaffUser:
    user = await store.staff_user_by_email(normalise_email(email))
    if user is None:
        raise NotFound(messages.STAFF_NO_ACCOUNT.format(email=email))
    return user


async def add_user(store: Store, email: str, role: str, password: str, cost: Cost = DEFAULT_COST) -> StaffUser:
    """A new account; Conflict if the email has one already."""
    address = checked_email(email)
    checked_role(role)
    password_hash = await hashed(password, cost)
    try:
        return await store.insert_staff_user(email=address, role=role, password_hash=password_hash, now=utc_now())
    except Conflict:
        raise Conflict(messages.STAFF_ACCOUNT_EXISTS.format(email=address)) from None


async def _other_owners(store: Store, user: StaffUser) -> bool:
    return any(u.role == "owner" and u.id != user.id for u in await store.staff_users())


async def remove_user(store: Store, email: str) -> StaffUser:
    """Delete an account (its sessions end with it); never the last owner."""
    user = await find_user(store, email)
    if user.role == "owner" and not await _other_owners(store, user):
        raise Invalid(messages.STAFF_LAST_OWNER)
    await store.delete_staff_user(user.id)
    return user


async def change_role(store: Store, email: str, role: str) -> StaffUser:
    user = await find_user(store, email)
    checked_role(role)
    if user.role == "owner" and role != "owner" and not await _other_owners(store, user):
        raise Invalid(messages.STAFF_LAST_OWNER)
    return await store.set_staff_role(user.id, role)


async def change_password(store: Store, email: str, password: str, cost: Cost = DEFAULT_COST) -> StaffUser:
    """A new password; every session of the account signed in before it ends."""
    user = await find_user(store, email)
    return await store.set_staff_password(user.id, await hashed(password, cost))


class FailureLimiter:
    """Failed attempts per key in a sliding window; bounded in the keys it remembers."""

    MAX_KEYS = 100_000

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self.limit = limit
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def wait(self, key: str) -> int:
        """Seconds until `key` may try again; 0 when it may now."""
        failures = self._recent(key)
        if len(failures) < self.limit:
            return 0
        return max(1, math.ceil(failures[0] + self.window - self._clock()))

    def failed(self, key: str) -> None:
        if len(self._failures) >= self.MAX_KEYS:
            now = self._clock()
            self._failures = {k: q for k, q in self._failures.items() if q and q[-1] > now - self.window}
        self._recent(key).append(self._clock())

    def succeeded(self, key: str) -> None:
        self._failures.pop(key, None)

    def _recent(self, key: str) -> deque[float]:
        failures = self._failures.setdefault(key, deque())
        cutoff = self._clock() - self.window
        while failures and failures[0] <= cutoff:
            failures.popleft()
        while len(failures) > self.limit:
            failures.popleft()
        return failures


class SignIn:
    """Checks an email and password against the accounts, limiting failures per account and
    per client; the same answer, and about the same time, whether or not the account exists."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self.accounts = FailureLimiter(ACCOUNT_FAILURES, FAILURE_WINDOW, clock)
        self.clients = FailureLimiter(CLIENT_FAILURES, FAILURE_WINDOW, clock)

    async def check(self, store: Store, email: str, password: str, client_key: str) -> StaffUser:
        """The account; NotAllowed for a wrong pair, RateLimited while failures are held."""
        address = normalise_email(email)
        account_key = f"account:{address}"
        wait = max(self.accounts.wait(account_key), self.clients.wait(client_key))
        if wait:
            minutes = math.ceil(wait / 60)
            text = f"{minutes} minute{'s' if minutes != 1 else ''}"
            raise RateLimited(messages.STAFF_LOGIN_LOCKED.format(minutes=text), wait)
        user = await store.staff_user_by_email(address)
        candidate = password[: passwords.MAX_LENGTH]
        if user is None:
            await asyncio.to_thread(passwords.waste_time_like_a_check, candidate)
            ok = False
        else:
            ok = await asyncio.to_thread(passwords.verify_password, candidate, user.password_hash)
        if not ok or user is None:
            self.accounts.failed(account_key)
            self.clients.failed(client_key)
            raise NotAllowed(messages.STAFF_LOGIN_FAILED)
        self.accounts.succeeded(account_key)
        return user
