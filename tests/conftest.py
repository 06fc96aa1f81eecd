"""Factories shared by the tests: apps with overrides, pledges, partners, a fake clock, and a
signer that walks the real embed → sign path. Every test gets its own SQLite file."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, TypeVar

import httpx2
import pytest
from starlette.testclient import TestClient

from tests.engines import ENGINES, fresh_postgres
from widget_server.core.models import Pledge
from widget_server.services import partners, pledges, reports
from widget_server.settings import Settings
from widget_server.storage.engines import open_store
from widget_server.storage.store import Store
from widget_server.web.app import create_app

T = TypeVar("T")

PARTNER_ORIGIN = "https://riverside.example"
STATEMENT = "<p>We ask public services to keep personal data <strong>away</strong> from enforcement.</p>"


class FakeClock:
    """Wall-clock seconds that move only when a test says so."""

    def __init__(self, start: float = 1_790_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests in a module marked `both_engines` run once per storage engine (tests/engines.py);
    every other test runs on SQLite."""
    if "engine" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_engines") is not None
        metafunc.parametrize("engine", ENGINES if both else ["sqlite"], indirect=True)


@pytest.fixture
def engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test's database: a SQLite file in its folder, or a fresh PostgreSQL database."""
    if request.param == "postgres":
        with fresh_postgres() as url:
            yield url
    else:
        yield str(tmp_path / "data" / "widget.sqlite3")


@pytest.fixture
def make_settings(tmp_path: Path, engine: str) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "db_path": engine,
            "data_dir": tmp_path / "data",
            "secret_key": "test-secret-key-of-at-least-32-bytes",
            "public_url": "http://testserver",
            "cache_seconds": 0.0,
        }
        values.update(overrides)
        return Settings.from_env(environ={}, **values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


def on_db(settings: Settings, action: Callable[[Store], Awaitable[T]]) -> T:
    """Run one staff action on the test's store, as a CLI command would."""

    async def go() -> T:
        async with open_store(settings.database) as store:
            return await action(store)

    return asyncio.run(go())


def make_pledge(settings: Settings, **overrides: Any) -> Pledge:
    values: dict[str, Any] = {
        "slug": "data-firewall",
        "title": "Keep our data safe",
        "statement_html": STATEMENT,
        "goal": 1000,
    }
    values.update(overrides)
    return on_db(settings, lambda store: pledges.add_pledge(store, **values))


def make_partner(
    settings: Settings,
    slug: str = "data-firewall",
    name: str = "Riverside",
    origins: tuple[str, ...] = (PARTNER_ORIGIN,),
) -> partners.PartnerCredentials:
    return on_db(settings, lambda store: partners.add_partner(store, settings, slug, name, list(origins)))


def stats(settings: Settings, slug: str = "data-firewall") -> dict[str, Any]:
    return on_db(settings, lambda store: reports.stats(store, slug))


def rows(settings: Settings, sql: str = "SELECT * FROM signatures ORDER BY id") -> list[Any]:
    """Rows straight from the database, as another process would see them. On PostgreSQL, times
    read as the SQLite engine stores them (2026-11-30T10:00:00Z) and booleans as 0/1, so one
    assertion holds for both engines."""
    if isinstance(settings.database, str):
        return asyncio.run(_postgres_rows(settings.database, sql))
    conn = sqlite3.connect(settings.database)
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


async def _postgres_rows(url: str, sql: str) -> list[dict[str, Any]]:
    import asyncpg

    conn = await asyncpg.connect(url)
    try:
        found = []
        for record in await conn.fetch(sql):
            row: dict[str, Any] = {}
            for key, value in record.items():
                if isinstance(value, datetime):
                    value = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
                elif isinstance(value, bool):
                    value = int(value)
                row[key] = value
            found.append(row)
        return found
    finally:
        await conn.close()


class FormFields(HTMLParser):
    """The attributes of a page's form controls, by name."""

    def __init__(self) -> None:
        super().__init__()
        self.inputs: dict[str, dict[str, str | None]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = dict(attrs)
        if tag == "input" and attributes.get("name"):
            self.inputs[str(attributes["name"])] = attributes


def fields_of(html: str) -> dict[str, dict[str, str | None]]:
    parser = FormFields()
    parser.feed(html)
    return parser.inputs


FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


def form_token_of(html: str) -> str:
    match = FORM_TOKEN.search(html)
    assert match, "the page has no sign form"
    return match.group(1)


@dataclass
class Signer:
    """Drives the real pages: render the embed, wait like a person, post the form.

    The one way the tests sign. `client` is a TestClient, or (for a real server) an httpx2.Client
    with the server's base URL, httpx2 being what TestClient is built on; a real server has no
    fake clock, so it runs with WIDGET_MIN_FILL_SECONDS=0 and its Signer gets none. `form()` and
    `post()` are the two halves of `sign()`, for the tests that forge, replay, delay or redirect
    a post themselves.
    """

    client: httpx2.Client
    clock: FakeClock | None = None
    slug: str = "data-firewall"
    token: str = ""
    parent: str = ""
    query: dict[str, str] = field(default_factory=dict)

    def embed(self, **headers: str) -> httpx2.Response:
        params = dict(self.query)
        if self.token:
            params["token"] = self.token
        if self.parent:
            params["parent"] = self.parent
        return self.client.get(f"/embed/{self.slug}", params=params, headers=headers)

    def form(self, **headers: str) -> str:
        """Render the sign form as the loader would; returns its form token."""
        page = self.embed(**headers)
        assert page.status_code == 200, page.text
        return form_token_of(page.text)

    def post(
        self, form_token: str, json: bool = False, headers: dict[str, str] | None = None, **fields: str | None
    ) -> httpx2.Response:
        """Post the sign form with `form_token`: Ana's name and email unless `fields` say otherwise,
        and a field given as None left out, as a hand-made post would."""
        data = {"name": "Ana Teacher", "email": "ana@example.org", "form_token": form_token, **fields}
        sent = {"Accept": "application/json"} if json else {}
        sent.update(headers or {})
        posted = {name: value for name, value in data.items() if value is not None}
        return self.client.post(f"/embed/{self.slug}/sign", data=posted, headers=sent)

    def sign(self, json: bool = False, wait: float = 5.0, **fields: str) -> httpx2.Response:
        """Render, wait `wait` seconds on the fake clock, post."""
        form_token = self.form()
        if self.clock is not None:
            self.clock.advance(wait)
        return self.post(form_token, json=json, headers=None, **fields)


@pytest.fixture
def make_client(make_settings: Callable[..., Settings], clock: FakeClock) -> Iterator[Callable[..., TestClient]]:
    """make_client(settings or **setting_overrides, host=client address) → a TestClient whose
    lifespan has run."""
    opened: list[TestClient] = []

    def make(
        settings: Settings | None = None,
        host: str = "testclient",
        client_options: dict[str, Any] | None = None,
        **overrides: Any,
    ) -> TestClient:
        app = create_app(settings or make_settings(**overrides), clock=clock)
        client = TestClient(app, client=(host, 40000), **(client_options or {}))
        client.__enter__()
        opened.append(client)
        return client

    yield make
    for client in reversed(opened):
        client.__exit__(None, None, None)
