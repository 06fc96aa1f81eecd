"""Staff-area factories: accounts (with a cheap KDF cost, so a sign-in takes milliseconds),
a client signed in as a role, the CSRF token of a page, and signatures made through the store."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import FakeClock, make_pledge, on_db
from widget_server.core.models import NewSignature
from widget_server.core.times import iso_utc
from widget_server.security.passwords import Cost
from widget_server.services import accounts
from widget_server.settings import Settings
from widget_server.storage.engines import open_store
from widget_server.storage.store import Store

CHEAP = Cost(n=2**10, r=8, p=1)
PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    match = CSRF.search(html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def add_user(settings: Settings, email: str, role: str, password: str = PASSWORD) -> None:
    on_db(settings, lambda store: accounts.add_user(store, email, role, password, CHEAP))


@dataclass
class StaffClient:
    """A TestClient with a signed-in staff member; `post` sends the session's CSRF token."""

    client: TestClient
    email: str
    csrf: str = ""

    def get(self, url: str, **kwargs: Any) -> Any:
        return self.client.get(url, **kwargs)

    def post(self, url: str, data: dict[str, str] | None = None, csrf: str | None = None, **kwargs: Any) -> Any:
        sent = dict(data or {})
        token = self.csrf if csrf is None else csrf
        if token:
            sent["csrf"] = token
        return self.client.post(url, data=sent, follow_redirects=False, **kwargs)

    def refresh_csrf(self, url: str = "/admin") -> None:
        self.csrf = csrf_of(self.get(url).text)


def log_in(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    page = client.get("/admin/login")
    return client.post(
        "/admin/login",
        data={"email": email, "password": password, "csrf": csrf_of(page.text), "next": "/admin"},
        follow_redirects=False,
    )


@pytest.fixture
def staff_client(make_client: Callable[..., TestClient], settings: Settings) -> Callable[..., StaffClient]:
    """staff_client(role) → a fresh client signed in as a new account with that role."""
    made: dict[str, int] = {}

    def make(role: str = "owner", email: str | None = None, **overrides: Any) -> StaffClient:
        made[role] = made.get(role, 0) + 1
        address = email or f"{role}{made[role]}@campaign.example"
        add_user(settings, address, role)
        client = make_client(settings, **overrides)
        client.app.state.staff_password_cost = CHEAP  # type: ignore[attr-defined]
        answer = log_in(client, address)
        assert answer.status_code == 303, answer.text
        staff = StaffClient(client, address)
        staff.refresh_csrf()
        return staff

    return make


@pytest.fixture
def pledge(settings: Settings) -> Any:
    return make_pledge(settings)


def write(settings: Settings, signatures: Sequence[NewSignature]) -> None:
    """Signatures through the store's own batch write: every kept count moves as the writer's."""

    async def go(store: Store) -> None:
        await store.write_signatures(list(signatures))

    on_db(settings, go)


def signature(pledge_id: int, email: str, at: float, partner_id: int | None = None, **fields: Any) -> NewSignature:
    return NewSignature(
        pledge_id=pledge_id, partner_id=partner_id, email=email, name="A Signer", created_at=iso_utc(at), **fields
    )


def integrity(settings: Settings) -> list[str]:
    async def go() -> list[str]:
        async with open_store(settings.database) as store:
            return await store.integrity()

    return asyncio.run(go())


__all__ = ["FakeClock", "StaffClient", "add_user", "csrf_of", "integrity", "log_in", "signature", "write"]
