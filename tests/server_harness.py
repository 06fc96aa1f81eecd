"""The widget server as a person runs it: `widget-server serve` (or `demo`) in a subprocess,
ready when it says so in its log, stopped with SIGTERM, and the CLI pointed at its database.

Shared by the browser tests, the real-server security test and scripts/screenshots.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
STARTUP_SECONDS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class WidgetServer:
    """`widget-server serve` on 127.0.0.1, its database, and the CLI pointed at the same file."""

    url: str
    db: Path
    env: dict[str, str]
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)
    reader: threading.Thread | None = None

    @classmethod
    def start(cls, data_dir: Path, **settings: str) -> WidgetServer:
        """`widget-server serve`; `settings` are WIDGET_* variables, e.g. WIDGET_MIN_FILL_SECONDS="0"."""
        port = free_port()
        args = ["serve", "--host", "127.0.0.1", "--port", str(port)]
        return cls._launch(data_dir, port, args, "Uvicorn running on", settings)

    @classmethod
    def demo(cls, data_dir: Path, partner_port: int, **settings: str) -> WidgetServer:
        """`widget-server demo`: the widget server, plus the example partner page on `partner_port`."""
        port = free_port()
        args = ["demo", "--host", "127.0.0.1", "--port", str(port), "--partner-port", str(partner_port)]
        return cls._launch(data_dir, port, args, "Partner's page:", settings)

    @classmethod
    def _launch(
        cls, data_dir: Path, port: int, args: list[str], ready_line: str, settings: dict[str, str]
    ) -> WidgetServer:
        data_dir.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "WIDGET_DATA_DIR": str(data_dir),
            "WIDGET_SECRET_KEY": "browser-test-secret",
            "WIDGET_PUBLIC_URL": url,
            "WIDGET_CACHE_SECONDS": "0",
            **settings,
        }
        env.pop("WIDGET_DB", None)
        db = data_dir / "widget.sqlite3"
        process = subprocess.Popen(
            [sys.executable, "-m", "widget_server.cli", *args, "--db", str(db)],
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        server = cls(url, db, env, process)
        ready = threading.Event()

        def read_log() -> None:
            # Also drains the pipe for the server's whole life, so it never blocks on a full pipe.
            assert process.stdout is not None
            for line in process.stdout:
                server.log.append(line)
                if ready_line in line:
                    ready.set()
            ready.set()  # exited: let _launch() report it instead of waiting out the deadline

        server.reader = threading.Thread(target=read_log, daemon=True)
        server.reader.start()
        if not ready.wait(STARTUP_SECONDS) or process.poll() is not None:
            server.stop()
            raise RuntimeError(f"widget-server {args[0]} did not start:\n" + "".join(server.log[-20:]))
        return server

    def cli(self, *args: str) -> str:
        """Run `widget-server ARGS --db DB` against this server's database; returns stdout."""
        done = subprocess.run(
            [sys.executable, "-m", "widget_server.cli", *args, "--db", str(self.db)],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
        )
        if done.returncode != 0:
            raise RuntimeError(f"widget-server {' '.join(args)} failed: {done.stderr.strip()}")
        return done.stdout

    def stats(self, slug: str) -> dict[str, Any]:
        return json.loads(self.cli("stats", slug, "--json"))  # type: ignore[no-any-return]

    def exported(self, slug: str, email: str) -> dict[str, str]:
        """The CSV export's row for one signer."""
        rows = [row for row in csv.DictReader(io.StringIO(self.cli("export", slug))) if row["email"] == email]
        assert len(rows) == 1, f"expected one row for {email}, found {len(rows)}"
        return rows[0]

    def stop(self) -> None:
        """SIGTERM: the server drains requests and commits what it queued, then exits."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.reader is not None:
            self.reader.join()
        if self.process.stdout is not None:
            self.process.stdout.close()
