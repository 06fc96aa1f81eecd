"""Confirmation in a real browser: signing in the partner's frame says "check your email" (with
and without JavaScript), the count does not move and the partner's page hears of no signature;
the emailed link opens a page whose one button counts the signature."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser_harness import CHROMIUM, Site, launch_options, page_html, widget_frame
from tests.confirmation.conftest import MAIL_FROM, SLUG, Inbox, SmtpServer
from tests.server_harness import WidgetServer

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.skip(f"browser tests need Debian's Chromium at {CHROMIUM}", allow_module_level=True)

FORM = ".pledge-widget:not([data-kind]) iframe"
PARTNER = "Riverside Migrant Support"


@dataclass
class World:
    server: WidgetServer
    partner: Site

    def counts(self) -> tuple[int, int]:
        stats = self.server.stats(SLUG)
        return stats["total"], stats["pending"]


@pytest.fixture
def world(tmp_path: Path, smtp_server: SmtpServer) -> Iterator[World]:
    with ExitStack() as cleanup:
        partner = Site({})
        cleanup.callback(partner.stop)
        server = WidgetServer.start(
            tmp_path / "server",
            WIDGET_MIN_FILL_SECONDS="0",
            WIDGET_SMTP_URL=smtp_server.url(),
            WIDGET_MAIL_FROM=MAIL_FROM,
        )
        cleanup.callback(server.stop)
        statement = tmp_path / "statement.html"
        statement.write_text("<p>We ask public services to keep personal data away from enforcement.</p>")
        server.cli(
            "pledge",
            "add",
            SLUG,
            "--title",
            "Keep our data safe",
            "--statement-file",
            str(statement),
            "--confirm-email",
            "on",
        )
        snippets = json.loads(server.cli("partner", "add", SLUG, "--name", PARTNER, "--origin", partner.url, "--json"))
        partner.pages.update(
            {
                "/": page_html("Why we signed", snippets["snippet"]),
                "/plain": page_html("Our website strips scripts", snippets["iframe_snippet"]),
            }
        )
        yield World(server, partner)


@pytest.fixture
def open_page() -> Iterator[Callable[..., Page]]:
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser: Browser = playwright.chromium.launch(**launch_options())

        def open(url: str, **options: Any) -> Page:
            page = browser.new_context(**options).new_page()
            page.on("pageerror", lambda error: errors.append(str(error)))
            page.goto(url)
            return page

        yield open
        browser.close()
    assert not errors, f"JavaScript errors: {errors}"


def test_signing_in_the_frame_asks_to_check_email_and_the_link_counts_it(
    world: World, open_page: Callable[..., Page], inbox: Inbox
) -> None:
    page = open_page(world.partner.url + "/")
    frame = widget_frame(page, FORM, "[data-sign-form]")
    page.evaluate(
        """() => { window.signedEvents = [];
          document.addEventListener("pledge:signed", (event) => window.signedEvents.push(event.detail)); }"""
    )
    frame.get_by_role("textbox", name="Your name").fill("Ana Teacher")
    frame.get_by_role("textbox", name="Your email address").fill("ana.teacher@example.org")
    frame.get_by_role("button", name="Sign the pledge").click()

    heading = frame.get_by_role("heading", name="Thank you. Please check your email.")
    expect(heading).to_be_visible()
    expect(heading).to_be_focused()
    expect(frame.get_by_role("heading", name="Thank you. You have signed.")).to_be_hidden()
    expect(frame.locator("[data-sign-form]")).to_be_hidden()
    expect(frame.locator("[data-tally] [data-count]")).to_have_text("0")  # the count has not moved
    assert world.counts() == (0, 1)
    assert page.evaluate("window.signedEvents") == []  # nothing counted, so no event for the partner

    link = inbox.wait_for(1)[0].link
    confirm = open_page(link)
    expect(confirm.get_by_role("heading", name="Keep our data safe")).to_be_visible()
    assert world.counts() == (0, 1)  # opening the page counts nothing
    confirm.get_by_role("button", name="Confirm my signature").click()
    expect(confirm.get_by_role("status")).to_have_text("Thank you, your signature now counts.")
    expect(confirm.locator("[data-count]")).to_have_text("1")
    assert world.counts() == (1, 0)


def test_without_javascript_the_plain_form_asks_to_check_email(
    world: World, open_page: Callable[..., Page], inbox: Inbox
) -> None:
    page = open_page(world.partner.url + "/plain", java_script_enabled=False)
    frame = page.frame_locator("iframe")
    frame.get_by_role("textbox", name="Your name").fill("Noor Plain")
    frame.get_by_role("textbox", name="Your email address").fill("noor.plain@example.org")
    frame.get_by_role("button", name="Sign the pledge").click()
    expect(frame.get_by_role("heading", name="Thank you, Noor Plain. Please check your email.")).to_be_visible()
    expect(frame.locator("[data-signed-total]")).to_have_count(0)
    assert inbox.wait_for(1)[0].rcpt_tos == ["noor.plain@example.org"]
    confirm = open_page(inbox.received[0].link, java_script_enabled=False)
    confirm.get_by_role("button", name="Confirm my signature").click()
    expect(confirm.get_by_role("status")).to_have_text("Thank you, your signature now counts.")
    assert world.counts() == (1, 0)
