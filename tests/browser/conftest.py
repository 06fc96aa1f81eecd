"""What the browser tests in this folder share: the widget server with a pledge and a partner,
the partner's site of difficult pages (hosts.py), and Chromium."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Page, sync_playwright

from tests.browser.hosts import LAYOUT_SHIFTS, HostSite
from tests.browser_harness import CHROMIUM, launch_options
from tests.server_harness import WidgetServer

SLUG = "data-firewall"
PARTNER = "Riverside Migrant Support"
STATEMENT = """<p>Public services hold our addresses, health records and school reports so that they
can help us. We ask them to keep that data away from immigration enforcement.</p>
<blockquote><p>“I ask every school, surgery and hospital to promise that the personal data it holds
will not be shared for immigration enforcement.”</p></blockquote>"""

if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(
        f"browser tests need Debian's Chromium at {CHROMIUM} (scripts/test installs it)", allow_module_level=True
    )


@dataclass
class Hosts:
    """The widget server and the partner's site of difficult pages it trusts."""

    server: WidgetServer
    site: HostSite
    snippets: dict[str, str]

    def total(self) -> int:
        return int(self.server.stats(SLUG)["total"])


@pytest.fixture(scope="package")
def hosts(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hosts]:
    data = tmp_path_factory.mktemp("hosts")
    with ExitStack() as cleanup:
        site = HostSite()
        cleanup.callback(site.stop)
        # Tests sign the moment the form appears; tests/test_sign.py covers the minimum fill time.
        server = WidgetServer.start(data / "server", WIDGET_MIN_FILL_SECONDS="0")
        cleanup.callback(server.stop)
        statement = data / "statement.html"
        statement.write_text(STATEMENT, encoding="utf-8")
        server.cli(
            "pledge", "add", SLUG, "--title", "Keep our data safe", "--statement-file", str(statement), "--goal", "1000"
        )
        server.cli("pledge", "add", "no-goal", "--title", "A pledge without a goal", "--statement-file", str(statement))
        snippets = json.loads(server.cli("partner", "add", SLUG, "--name", PARTNER, "--origin", site.url, "--json"))
        form, loader = snippets["snippet"].split("\n")
        counter = snippets["counter_snippet"].split("\n")[0]
        site.values.update(
            SERVER=server.url, FORM=form, COUNTER=counter, LOADER=loader, LOADER_URL=f"{server.url}/widget.js"
        )
        yield Hosts(server, site, snippets)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        yield browser
        browser.close()


@dataclass
class Opened:
    """A page in a fresh browser context, with what its console and its errors said."""

    page: Page
    console: list[ConsoleMessage] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def said(self, kind: str) -> list[str]:
        return [message.text for message in self.console if message.type == kind]


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Opened]]:
    """open_page(url, **context_options): the page, watched for layout shifts from its first moment
    (with no url, the test goes to one itself).

    Any uncaught JavaScript error, on the host page or in the widget, fails the test.
    """
    contexts = []
    opened: list[Opened] = []

    def open(url: str = "", **options: Any) -> Opened:
        context = browser.new_context(**options)
        contexts.append(context)
        context.add_init_script(LAYOUT_SHIFTS)  # in the page and in every frame
        page = context.new_page()
        watched = Opened(page)
        opened.append(watched)
        page.on("console", lambda message: watched.console.append(message))
        page.on("pageerror", lambda error: watched.errors.append(str(error)))
        if url:
            page.goto(url)
        return watched

    yield open
    for context in contexts:
        context.close()
    errors = [error for watched in opened for error in watched.errors]
    assert not errors, f"JavaScript errors: {errors}"
