"""What the PostgreSQL system tests share: a fresh database, a real server with several workers
in front of it, a signer that walks the real embed → sign path over HTTP, and a TCP proxy between
the server and PostgreSQL that a test can cut and restore, as a network or database outage would."""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest

from tests.engines import POSTGRES_URL, fresh_postgres
from tests.server_harness import Server, fetch
from widget_server.services import partners, pledges
from widget_server.settings import Settings
from widget_server.storage.engines import open_store

SECRET = "postgres-system-test-secret-key-0123456789"
SLUG = "data-firewall"
ORIGIN = "https://riverside.example"
FORM_TOKEN = re.compile(r'name="form_token" value="([^"]+)"')


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh database on the test server. PostgreSQL is part of the product: these tests fail,
    rather than skip, when there is none (scripts/test starts it and sets WIDGET_TEST_POSTGRES_URL)."""
    if not POSTGRES_URL:
        pytest.fail("PostgreSQL is needed: set WIDGET_TEST_POSTGRES_URL (scripts/test does).")
    with fresh_postgres() as url:
        yield url


def settings_for(url: str, data_dir: Path) -> Settings:
    return Settings.from_env(environ={}, db_path=url, data_dir=data_dir, secret_key=SECRET)


def prepare(url: str, data_dir: Path) -> str:
    """The test pledge and one partner in the database at `url`; returns the partner's token."""
    settings = settings_for(url, data_dir)

    async def go() -> str:
        async with open_store(url) as store:
            await pledges.add_pledge(store, slug=SLUG, title="Keep our data safe", statement_html="<p>We ask.</p>")
            creds = await partners.add_partner(store, settings, SLUG, "Riverside", [ORIGIN])
            return creds.token

    return asyncio.run(go())


def start(url: str, tmp_path: Path, workers: int = 2, **settings: str) -> Server:
    env = {
        **os.environ,
        "WIDGET_DATA_DIR": str(tmp_path / "data"),
        "WIDGET_SECRET_KEY": SECRET,
        "WIDGET_MIN_FILL_SECONDS": "0",
        "WIDGET_RATE_LIMIT": "off",
        "WIDGET_PARTNER_RATE_LIMIT": "off",
        "WIDGET_CACHE_SECONDS": "1",
        **settings,
    }
    env.pop("WIDGET_DB", None)
    return Server.launch(
        "serve",
        ["-m", "widget_server.cli", "serve", "--db", url, "--workers", str(workers)],
        env,
        tmp_path,
        timeout=60,
    )


def sign(server: Server, token: str, email: str, timeout: float = 10.0) -> tuple[int, dict[str, object]]:
    """Open the partner's form, then post it as the enhanced form does; (status, JSON answer)."""
    query = urlencode({"token": token, "parent": ORIGIN})
    status, _, page = fetch(f"{server.url}/embed/{SLUG}?{query}", timeout=timeout)
    if status != 200:
        return status, {}
    match = FORM_TOKEN.search(page.decode())
    assert match, "the embed page has no form"
    body = urlencode({"name": "Ana Teacher", "email": email, "form_token": match.group(1)}).encode()
    status, _, answer = fetch(
        f"{server.url}/embed/{SLUG}/sign",
        data=body,
        timeout=timeout,
        headers={"Accept": "application/json", "Content-Type": "application/x-www-form-urlencoded"},
    )
    return status, json.loads(answer or b"{}")


def worker_pids(server: Server) -> list[int]:
    """The worker processes uvicorn's supervisor started (its children)."""
    children = Path(f"/proc/{server.process.pid}/task/{server.process.pid}/children")
    pids = [int(pid) for pid in children.read_text().split()]
    # multiprocessing's resource tracker is a child too, but serves nobody.
    return [pid for pid in pids if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()]


def counts_and_problems(url: str) -> tuple[int, int, list[str]]:
    """(kept total, signature rows, integrity problems) as the database has them now."""

    async def go() -> tuple[int, int, list[str]]:
        async with open_store(url) as store:
            pledge = await store.pledge_by_slug(SLUG)
            assert pledge is not None
            total, _ = await store.counts(pledge.id)
            rows = 0
            async with store.read_table("signatures") as chunks:
                async for chunk in chunks:
                    rows += len(chunk)
            return total, rows, await store.integrity()

    return asyncio.run(go())


class CuttableProxy:
    """A TCP proxy on 127.0.0.1 in front of PostgreSQL; `cut()` drops every connection and refuses new
    ones until `restore()`, as an outage would."""

    def __init__(self, target_url: str) -> None:
        parts = urlsplit(target_url)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        self.url = urlunsplit(parts._replace(netloc=f"{parts.username or 'postgres'}@127.0.0.1:{self.port}"))
        self._open = threading.Event()
        self._open.set()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._stopped:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._open.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def cut(self) -> None:
        self._open.clear()
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def restore(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._stopped = True
        self.cut()
        self._listener.close()


@contextmanager
def proxy_to(url: str) -> Iterator[CuttableProxy]:
    proxy = CuttableProxy(url)
    try:
        yield proxy
    finally:
        proxy.close()
