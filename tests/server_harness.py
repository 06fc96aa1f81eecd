"""Real servers in subprocesses, as a person runs them: started with --host/--port on 127.0.0.1,
their output in a log file, ready when they answer over HTTP, stopped with SIGTERM.

The one harness for real servers, shared by the tests (WidgetServer: `widget-server serve` or
`demo`, with the CLI pointed at its database), the benchmarks (benchmarks/harness.py starts our
server and the ceiling through `Server.launch`) and scripts/screenshots.py. It imports no browser
and no test framework, so `python -m benchmarks.run` can use it.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_SECONDS = 60
# How often a starting server is asked whether it answers yet.
POLL_SECONDS = 0.05


class ServerError(RuntimeError):
    """A server did not start; the message says which, and where its log is."""


def free_port() -> int:
    """A port nobody listens on right now (the server binds it a moment later)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def fetch(
    url: str, data: bytes | None = None, headers: dict[str, str] | None = None, timeout: float = 5.0
) -> tuple[int, list[tuple[str, str]], bytes]:
    """(status, response headers, body) of one GET, or POST when `data` is given; no redirects."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST" if data else "GET")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, response.getheaders(), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, list(exc.headers.items()), exc.read()


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    status, _, body = fetch(url, headers=headers, timeout=timeout)
    return status, body


@dataclass
class Server:
    """A server process on 127.0.0.1:port whose output goes to a log file."""

    name: str
    process: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @classmethod
    def launch(
        cls,
        name: str,
        args: Sequence[str],
        environ: dict[str, str],
        log_dir: Path,
        *,
        port: int | None = None,
        ready: Sequence[str] = ("/healthz",),
        timeout: float = 30.0,
        cwd: Path = ROOT,
        **fields: Any,
    ) -> Self:
        """Start `python args… --host 127.0.0.1 --port PORT` in `cwd` with exactly `environ`, its output
        appended to `log_dir/NAME.log`; return once every one of `ready` (a path on this server, or
        a whole URL) answers 200. `fields` are a subclass's own."""
        port = port or free_port()
        log_path = log_dir / f"{name}.log"
        with open(log_path, "ab") as log:
            process = subprocess.Popen(
                [sys.executable, *args, "--host", HOST, "--port", str(port)],
                cwd=cwd,
                env=environ,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: a Ctrl-C meant for the harness leaves the graceful stop to stop().
                start_new_session=True,
            )
        server = cls(name, process, port, log_path, **fields)
        server._wait_until_ready([url if "://" in url else server.url + url for url in ready], timeout)
        return server

    def _wait_until_ready(self, urls: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        waiting = list(urls)
        while waiting:
            if self.process.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.process.returncode} at start; see {self.log_path}{self._tail()}"
                )
            with contextlib.suppress(OSError):
                if http_get(waiting[0], timeout=1.0)[0] == 200:
                    waiting.pop(0)
                    continue
            if time.monotonic() >= deadline:
                self.stop(5)
                raise ServerError(
                    f"{self.name} did not answer within {timeout:.0f} s; see {self.log_path}{self._tail()}"
                )
            time.sleep(POLL_SECONDS)

    def _tail(self, lines: int = 20) -> str:
        return "".join(f"\n  {line}" for line in self.log().splitlines()[-lines:])

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log(self) -> str:
        """Everything the process has written so far."""
        return self.log_path.read_text(errors="replace")

    def log_errors(self) -> list[str]:
        """Lines of its log that report an error or a lock, or are not our JSON at all."""
        return [
            line
            for line in self.log().splitlines()
            if '"level": "error"' in line
            or '"level": "critical"' in line
            or "database is locked" in line
            or not line.startswith("{")
        ]

    def rss_kib(self) -> dict[str, int]:
        """VmRSS and VmHWM (peak) of the server process, in KiB, from /proc."""
        found = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    found[key] = int(value.split()[0])
        return found

    def cpu_seconds(self) -> float:
        """User + system CPU the server has used so far (all its threads, and its worker processes
        when it has them), from /proc."""
        pids = [self.process.pid]
        with contextlib.suppress(OSError):
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children").read_text()
            pids += [int(pid) for pid in children.split()]
        total = 0
        for pid in pids:
            with contextlib.suppress(OSError):
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
        return total / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM (the graceful stop: requests drain, queued signatures commit), then SIGKILL if
        it does not end in time; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        return int(self.process.returncode)


@dataclass
class WidgetServer(Server):
    """`widget-server serve` (or `demo`), its database, and the CLI pointed at the same file."""

    db: Path
    env: dict[str, str]

    @classmethod
    def start(cls, data_dir: Path, log_dir: Path | None = None, **settings: str) -> WidgetServer:
        """`widget-server serve` with its database in `data_dir` and its log there too (or in
        `log_dir`); `settings` are WIDGET_* variables, e.g. WIDGET_MIN_FILL_SECONDS="0"."""
        return cls._widget("serve", data_dir, log_dir, [], [], settings)

    @classmethod
    def demo(cls, data_dir: Path, partner_port: int, log_dir: Path | None = None, **settings: str) -> WidgetServer:
        """`widget-server demo`: the widget server, plus the example partner page on `partner_port`."""
        partner_page = f"http://{HOST}:{partner_port}/"
        return cls._widget("demo", data_dir, log_dir, ["--partner-port", str(partner_port)], [partner_page], settings)

    @classmethod
    def _widget(
        cls,
        command: str,
        data_dir: Path,
        log_dir: Path | None,
        args: list[str],
        also_ready: list[str],
        settings: dict[str, str],
    ) -> WidgetServer:
        data_dir.mkdir(parents=True, exist_ok=True)
        port = free_port()
        env = {
            **os.environ,
            "WIDGET_DATA_DIR": str(data_dir),
            "WIDGET_SECRET_KEY": "browser-test-secret-of-at-least-32-bytes",
            "WIDGET_PUBLIC_URL": f"http://{HOST}:{port}",
            "WIDGET_CACHE_SECONDS": "0",
            **settings,
        }
        env.pop("WIDGET_DB", None)
        db = data_dir / "widget.sqlite3"
        return cls.launch(
            command,
            ["-m", "widget_server.cli", command, *args, "--db", str(db)],
            env,
            log_dir or data_dir,
            port=port,
            ready=["/healthz", *also_ready],
            timeout=STARTUP_SECONDS,
            db=db,
            env=env,
        )

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
        return json.loads(self.cli("stats", slug, "--json"))

    def exported(self, slug: str, email: str) -> dict[str, str]:
        """The CSV export's row for one signer."""
        rows = [row for row in csv.DictReader(io.StringIO(self.cli("export", slug))) if row["email"] == email]
        assert len(rows) == 1, f"expected one row for {email}, found {len(rows)}"
        return rows[0]
