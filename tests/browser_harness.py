"""The real parts that the browser tests (and scripts/screenshots.py) drive: the widget server in
a subprocess (tests/server_harness.py), partner sites on other origins, and Debian's Chromium
through Playwright.

Nothing here waits a fixed time: the server is ready when it answers over HTTP, and the partner
sites are served from sockets that are listening before their URLs are handed out.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Frame, Page

from tests.server_harness import ROOT

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
