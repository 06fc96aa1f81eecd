"""What a visitor's browser receives from the widget server for a first view of a partner page:
bytes on the wire per answer (headers and body, as transferred), from a fresh browser profile.

    python -m tests.browser.firstview http://localhost:8001/ http://127.0.0.1:8000

measures a page already served (e.g. by `widget-server demo`), and the same page cut down to its
sign form's snippet alone; BENCHMARKS.md gives the figures.
"""

from __future__ import annotations

import re
import sys
import urllib.request
from dataclasses import dataclass, field

from playwright.sync_api import Browser, Request, sync_playwright

from tests.browser_harness import launch_options


@dataclass
class FirstView:
    responses: dict[str, int] = field(default_factory=dict)  # kind of answer → bytes transferred
    encodings: dict[str, str] = field(default_factory=dict)

    @property
    def total(self) -> int:
        return sum(self.responses.values())


def _kind(url: str) -> str:
    path = url.split("?", 1)[0]
    if path.endswith("/widget.js"):
        return "loader"
    if path.endswith(".css"):
        return "css"
    if path.endswith(".js"):
        return "script"
    return "counter" if path.endswith("/counter") else "document"


def first_view(browser: Browser, page_url: str, server: str, page_html: str | None = None) -> FirstView:
    """Open `page_url` (or `page_html` served at that address) in a fresh profile, wait for the
    widget's frames to load, and add up what came from `server`."""
    view = FirstView()
    context = browser.new_context(viewport={"width": 360, "height": 740})
    page = context.new_page()
    if page_html is not None:
        page.route(page_url, lambda route: route.fulfill(body=page_html, content_type="text/html; charset=utf-8"))

    def finished(request: Request) -> None:
        if not request.url.startswith(server + "/"):
            return
        response = request.response()
        sizes = request.sizes()
        kind = _kind(request.url)
        view.responses[kind] = view.responses.get(kind, 0) + sizes["responseHeadersSize"] + sizes["responseBodySize"]
        view.encodings[kind] = response.headers.get("content-encoding", "none") if response else "none"

    page.on("requestfinished", finished)
    page.goto(page_url, wait_until="load")
    page.frame_locator("iframe[src*='/embed/']").first.locator("main").wait_for()
    page.wait_for_load_state("networkidle")
    context.close()
    return view


def main(page_url: str, server: str) -> None:
    with urllib.request.urlopen(page_url) as answer:  # noqa: S310 (a URL the person gave)
        whole = answer.read().decode()
    placeholder = re.search(r'<div class="pledge-widget" data-pledge=[^>]*></div>', whole)
    loader = re.search(r'<script async src="[^"]+/widget.js"></script>', whole)
    assert placeholder and loader, "no sign form snippet on that page"
    form_only = f"<!doctype html><title>Form only</title>{placeholder.group(0)}{loader.group(0)}"
    options = launch_options()
    # The cut-down page is served by the browser itself, which Chromium counts as a public page
    # that may not reach a loopback server; the measured page is served for real.
    options["args"] = [*options["args"], "--disable-features=LocalNetworkAccessChecks"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**options)
        for label, html in (("the page as served", None), ("the sign form's snippet alone", form_only)):
            url = page_url if html is None else page_url.rstrip("/") + "/form-only"
            view = first_view(browser, url, server, html)
            parts = ", ".join(
                f"{kind} {size:,} ({view.encodings[kind]})" for kind, size in sorted(view.responses.items())
            )
            print(f"{label}: {view.total:,} bytes from {server}: {parts}")
        browser.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
