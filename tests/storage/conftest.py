"""A Store for each engine (tests/engines.py): the contract tests run once per engine."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest

from tests.engines import ENGINES, fresh_postgres
from widget_server.storage.engines import open_store
from widget_server.storage.store import Store

T = TypeVar("T")


@pytest.fixture(params=ENGINES)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database of the engine under test."""
    if request.param == "postgres":
        with fresh_postgres() as url:
            yield url
    else:
        yield f"sqlite:///{tmp_path / 'widget.sqlite3'}"


@pytest.fixture
def with_store(store_url: str) -> Callable[[Callable[[Store], Awaitable[T]]], T]:
    """with_store(action) opens (and migrates) the test's store, runs `action(store)`, closes it."""

    def run(action: Callable[[Store], Awaitable[T]]) -> T:
        async def go() -> T:
            async with open_store(store_url) as store:
                return await action(store)

        return asyncio.run(go())

    return run
