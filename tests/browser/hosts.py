"""Host pages for the browser tests in this folder, and what the tests measure on them.

Each kind of difficult partner page is one small HTML file in pages/, served from its own
origin by `HostSite`. A page names the headers it is sent with in comments at its top
(`<!-- header: Name: value -->`, removed before serving) and holds placeholders that the site
fills in: {{SERVER}} (the widget server's origin), {{FORM}} and {{COUNTER}} (the snippets as
`widget-server partner add` prints them, without their <script>), {{LOADER}} (the <script>
tag) and {{LOADER_URL}}.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from playwright.sync_api import Frame, Page

PAGES = Path(__file__).resolve().parent / "pages"
_HEADER = re.compile(r"<!-- header: ([A-Za-z-]+): (.*?) -->\n")

# Installed before any script of a page or frame runs: every layout shift, as the Layout
# Instability API reports it, and the time the page finished loading.
LAYOUT_SHIFTS = """
window.__layoutShifts = [];
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    // What moved, from where to where: a failing test says so.
    const moved = (entry.sources || []).map((source) => [
      source.node ? source.node.nodeName + "." + source.node.className : "?",
      [source.previousRect.x, source.previousRect.y, source.previousRect.width, source.previousRect.height],
      [source.currentRect.x, source.currentRect.y, source.currentRect.width, source.currentRect.height],
    ]);
    window.__layoutShifts.push({value: entry.value, at: entry.startTime, input: entry.hadRecentInput, moved});
  }
}).observe({type: "layout-shift", buffered: true});
window.__firstPaint = Infinity;
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    if (entry.name === "first-paint") window.__firstPaint = entry.startTime;
  }
}).observe({type: "paint", buffered: true});
"""
# Cumulative layout shift as Chromium scores it: shifts within 500 ms of input do not count.
CUMULATIVE_SHIFT = "() => window.__layoutShifts.filter((s) => !s.input).reduce((sum, s) => sum + s.value, 0)"
# The same, counting only what moved after the document first painted. A frame on another site
# is sometimes laid out once before its stylesheet arrives (never painted so: its first paint
# comes after the styled layout) and Chromium reports the difference as a shift of content that
# nobody saw; this leaves those out.
SEEN_SHIFT = (
    "() => window.__layoutShifts.filter((s) => !s.input && s.at >= window.__firstPaint)"
    ".reduce((sum, s) => sum + s.value, 0)"
)
# True once the page finished loading `ms` milliseconds ago, by the page's own clock.
LOADED_FOR = """(ms) => {
  const navigation = performance.getEntriesByType("navigation")[0];
  return navigation.loadEventEnd > 0 && performance.now() - navigation.loadEventEnd >= ms;
}"""


def page_text(name: str, values: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """pages/`name`.html with its placeholders filled, and the headers it asks for."""
    text = (PAGES / f"{name}.html").read_text(encoding="utf-8")
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    headers = {found.group(1): found.group(2) for found in _HEADER.finditer(text)}
    return _HEADER.sub("", text), headers


class HostSite:
    """A partner's website made of the pages in pages/, on its own origin (host `localhost`)."""

    def __init__(self, values: Mapping[str, str] | None = None) -> None:
        self.values: dict[str, str] = dict(values or {})
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
                name = self.path.split("?", 1)[0].strip("/")
                if not re.fullmatch(r"[a-z0-9-]+", name) or not (PAGES / f"{name}.html").exists():
                    self.send_response(404)
                    self.end_headers()
                    return
                body, headers = page_text(name, site.values)
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Cache-Control", "no-store")
                for header, value in headers.items():
                    self.send_header(header, value)
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass  # keep the test output to what failed

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://localhost:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


def frame_of(page: Page, index: int = 0, ready: str = "main") -> Frame:
    """The `index`th widget frame on the page (open shadow roots included), once `ready` shows."""
    locator = page.locator("iframe").nth(index)
    locator.wait_for(state="attached")
    page.frame_locator("iframe").nth(index).locator(ready).wait_for()
    frame = locator.element_handle().content_frame()
    assert frame is not None
    return frame


def wait_sized(page: Page, frame: Frame, index: int = 0) -> int:
    """Wait until the `index`th iframe (shadow roots included) is exactly as tall as its content."""
    height = int(frame.evaluate("() => Math.ceil(document.body.getBoundingClientRect().height)"))
    page.locator("iframe").nth(index).evaluate(
        """(iframe, height) => new Promise((done) => {
          const check = () => (iframe.clientHeight === height ? done() : requestAnimationFrame(check));
          check();
        })""",
        height,
    )
    return height
