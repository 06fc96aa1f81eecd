"""The real parts that the browser tests (and scripts/screenshots.py) drive: the widget server in
a subprocess, partner sites on other origins, and Debian's Chromium through Playwright.

Nothing here waits by the clock: the server is ready when it says so on stderr, and the partner
sites are served from sockets that are listening before their URLs are handed out.
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
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Frame, Page

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# No downloads, no background traffic: the browser talks only to the servers a test starts.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
STARTUP_SECONDS = 60


def launch_options() -> dict[str, Any]:
    """Keyword arguments for `playwright.chromium.launch`."""
    return {"executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


def widget_frame(page: Page, selector: str, ready: str = "main") -> Frame:
    """The frame of the iframe at `selector`, once `ready` shows inside it."""
    page.frame_locator(selector).locator(ready).wait_for()
    frame = page.locator(selector).element_handle().content_frame()
    assert frame is not None, f"{selector} has no frame"
    return frame


def wait_sized_to_content(page: Page, selector: str, frame: Frame) -> int:
    """Wait until the partner page has set the iframe at `selector` to its content's height.

    Measured on both sides rather than with the frame's own innerHeight: Chromium does not tell
    an off-screen cross-origin frame its new size until it is scrolled into view.
    """
    height = int(frame.evaluate("() => Math.ceil(document.body.getBoundingClientRect().height)"))
    page.wait_for_function(
        "([selector, height]) => document.querySelector(selector).clientHeight === height", arg=[selector, height]
    )
    return height


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


class Site:
    """A partner's (or a stranger's) website: fixed HTML pages on its own origin.

    Listens on 127.0.0.1 but is addressed by `host` (e.g. "localhost"), so its origin differs
    from the widget server's in host name as well as in port.
    """

    def __init__(self, pages: Mapping[str, str], host: str = "localhost") -> None:
        self.pages = dict(pages)
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                body = site.pages.get(self.path.split("?", 1)[0])
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                self.end_headers()
                self.wfile.write((body or "Not found").encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output to what failed

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def page_html(title: str, body: str, head: str = "") -> str:
    """A small, well-formed partner page around pasted snippets."""
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
{head}
<title>{title}</title>
<style>
  body {{ margin: 0; font-family: Georgia, serif; background: #f6f3ee; color: #222; }}
  main {{ max-width: 44rem; margin: 0 auto; padding: 1rem; background: #fff; }}
</style>
</head>
<body>
<main>
<h1>{title}</h1>
<p>We have joined the campaign. Please add your name below: it takes less than a minute.</p>
{body}
</main>
</body>
</html>
"""
