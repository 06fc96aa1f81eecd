"""The widget in a real browser: embedded on a partner's site (another origin), refused on a
stranger's, resized, signed with and without JavaScript, by keyboard, and checked with axe-core.

Real parts only: `widget-server serve` in a subprocess on 127.0.0.1, partner pages on
`localhost` (another host name and port), Debian's Chromium, a SQLite file. One server, one
browser and one pledge per module; each test signs with its own email and compares counts with
what they were when it began, so the tests do not depend on each other's order.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Frame, Locator, Page, expect, sync_playwright

from tests.browser_harness import (
    AXE,
    CHROMIUM,
    Site,
    launch_options,
    page_html,
    wait_sized_to_content,
    widget_frame,
)
from tests.server_harness import ROOT, WidgetServer, free_port
from widget_server import demo

pytestmark = pytest.mark.browser

SLUG = "data-firewall"
TITLE = "Keep our data safe"
PARTNER = "Riverside Migrant Support"
GOAL = 1000
STATEMENT = """<p>Public services hold our addresses, health records and school reports so that they
can help us. We ask them to keep that data away from immigration enforcement.</p>
<blockquote><p>“I ask every school, surgery and hospital to promise that the personal data it holds
will not be shared for immigration enforcement.”</p></blockquote>"""

FORM = ".pledge-widget:not([data-kind]) iframe"
COUNTER = ".pledge-widget[data-kind=counter] iframe"
# Run inside an on-screen frame: it is exactly as tall as its content (no inner scrollbar, no gap).
FITS_CONTENT = "() => Math.abs(innerHeight - document.body.getBoundingClientRect().height) <= 1"
NAME_ERROR = "Please enter your name."
EMAIL_ERROR = "Please enter an email address like name@example.org."


def _required(path: Path, why: str) -> None:
    """Skip where a browser-test tool is missing, except in CI, where that is a failure."""
    if path.exists():
        return
    if os.environ.get("CI"):
        pytest.fail(f"CI must run the browser tests, but {path} is missing ({why}).")
    pytest.skip(f"browser tests need {path} ({why}); scripts/test installs it")


# One skip for the whole module where there is no browser; in CI the fixture below fails instead.
if not CHROMIUM.exists() and not os.environ.get("CI"):
    pytest.skip(
        f"browser tests need Debian's Chromium at {CHROMIUM} (apt-get install chromium; scripts/test does it)",
        allow_module_level=True,
    )


@pytest.fixture(scope="module", autouse=True)
def chromium() -> None:
    _required(CHROMIUM, "apt-get install chromium")


@dataclass
class World:
    """The widget server, the partner's site it trusts, and a stranger's site it does not."""

    server: WidgetServer
    partner: Site
    stranger: Site

    def counts(self) -> tuple[int, int]:
        """(all signatures, the partner's), from `widget-server stats --json`."""
        stats = self.server.stats(SLUG)
        return stats["total"], next(p["count"] for p in stats["partners"] if p["name"] == PARTNER)

    def total(self) -> int:
        return self.counts()[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("browser")
    with ExitStack() as cleanup:
        partner = Site({})
        cleanup.callback(partner.stop)
        stranger = Site({})
        cleanup.callback(stranger.stop)
        # Tests sign the moment the form appears; test_sign.py covers the minimum fill time.
        server = WidgetServer.start(data / "server", WIDGET_MIN_FILL_SECONDS="0")
        cleanup.callback(server.stop)

        statement = data / "statement.html"
        statement.write_text(STATEMENT, encoding="utf-8")
        server.cli("pledge", "add", SLUG, "--title", TITLE, "--statement-file", str(statement), "--goal", str(GOAL))
        # Exactly what staff hand to the partner, pasted unchanged into its pages.
        added = server.cli("partner", "add", SLUG, "--name", PARTNER, "--origin", partner.url, "--json")
        snippets = json.loads(added)
        snippet, counter, plain = (snippets[k] for k in ("snippet", "counter_snippet", "iframe_snippet"))
        partner.pages.update(
            {
                "/": page_html("Why we signed", snippet),
                "/two": page_html("Two widgets", f"{counter}\n<p>Read on, then sign.</p>\n{snippet}"),
                "/plain": page_html("Our website strips scripts", plain),
            }
        )
        # A stranger copies the partner's snippets onto a site of its own.
        stranger.pages.update(
            {
                "/": page_html("Copied", snippet),
                # With no Referer the server cannot tell who frames it: only the browser can refuse.
                "/plain": page_html("Copied", plain, head='<meta name="referrer" content="no-referrer">'),
            }
        )
        yield World(server, partner, stranger)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        yield browser
        browser.close()


@pytest.fixture
def open_page(browser: Browser) -> Iterator[Callable[..., Page]]:
    """open_page(url, **context_options) → a page in a fresh context (no shared state).

    Any uncaught JavaScript error, on the partner's page or in the widget, fails the test.
    """
    contexts = []
    errors: list[str] = []

    def open(url: str = "", **options: Any) -> Page:
        context = browser.new_context(**options)
        contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: errors.append(str(error)))
        if url:
            page.goto(url)
        return page

    yield open
    for context in contexts:
        context.close()
    assert not errors, f"JavaScript errors: {errors}"


def frame_of(page: Page, selector: str = FORM, ready: str = "[data-sign-form]") -> Frame:
    """The widget's frame, once `ready` shows inside it."""
    return widget_frame(page, selector, ready)


def fill(frame: Frame, name: str, email: str, occupation: str = "") -> None:
    frame.get_by_role("textbox", name="Your name").fill(name)
    frame.get_by_role("textbox", name="Your email address").fill(email)
    if occupation:
        frame.get_by_role("textbox", name="Your occupation").fill(occupation)


def sign_button(frame: Frame) -> Locator:
    return frame.get_by_role("button", name="Sign the pledge")


def listen_for_signatures(page: Page) -> None:
    """Record `pledge:signed` as a partner's own script would, and mark the page so a reload shows."""
    page.evaluate(
        """() => {
          window.signedEvents = [];
          window.pageMarker = "never reloaded";
          document.addEventListener("pledge:signed", (event) => window.signedEvents.push({
            pledge: event.detail.pledge, total: event.detail.total, kind: event.target.dataset.kind || "form"
          }));
        }"""
    )


# 1. The partner's page loads the widget, sized to its content.


@pytest.mark.parametrize("width", [360, 1280])
def test_the_partner_page_shows_the_form_sized_to_its_content(
    world: World, open_page: Callable[..., Page], width: int
) -> None:
    page = open_page(world.partner.url + "/", viewport={"width": width, "height": 800})
    frame = frame_of(page)
    wait_sized_to_content(page, FORM, frame)
    frame.wait_for_function(FITS_CONTENT)  # and the frame itself knows it: nothing to scroll

    iframe = page.locator(FORM).evaluate("el => ({height: el.clientHeight, width: el.clientWidth})")
    inside = frame.evaluate(
        "() => ({height: document.documentElement.scrollHeight,"
        " width: document.documentElement.scrollWidth, viewport: innerWidth})"
    )
    assert inside["height"] <= iframe["height"] + 1, "the form scrolls inside its frame"
    assert inside["width"] <= inside["viewport"], "the form is wider than its frame"
    assert iframe["width"] == page.locator(".pledge-widget").evaluate("el => el.clientWidth")
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "the partner page scrolls sideways"
    expect(page.locator(FORM)).to_have_attribute("title", "Sign the pledge")


# 2. Signing inside the frame: thanks, the new count, an event for the page, credit for the partner.


def test_signing_in_the_frame_thanks_without_reloading_and_credits_the_partner(
    world: World, open_page: Callable[..., Page]
) -> None:
    total, credited = world.counts()
    page = open_page(world.partner.url + "/?source=newsletter&utm_medium=email")
    frame = frame_of(page)
    listen_for_signatures(page)

    fill(frame, "Ana Teacher", "ana.teacher@example.org", occupation="Teacher")
    frame.get_by_role("checkbox", name="Send me occasional updates about this campaign").check()
    sign_button(frame).click()

    heading = frame.get_by_role("heading", name="Thank you. You have signed.")
    expect(heading).to_be_visible()
    expect(heading).to_be_focused()
    expect(frame.locator("[data-sign-form]")).to_be_hidden()
    expect(frame.locator("[data-thanks] [data-count]")).to_have_text(f"{total + 1:,}")
    expect(frame.locator("[data-tally]")).to_be_hidden()  # one count on screen, the new one
    page.wait_for_function("window.signedEvents.length > 0")
    assert page.evaluate("window.signedEvents") == [{"pledge": SLUG, "total": total + 1, "kind": "form"}]
    assert page.evaluate("window.pageMarker") == "never reloaded"
    wait_sized_to_content(page, FORM, frame)  # the frame follows the shorter thank-you

    assert world.counts() == (total + 1, credited + 1)
    row = world.server.exported(SLUG, "ana.teacher@example.org")
    assert (row["partner"], row["origin"]) == (PARTNER, world.partner.url)
    assert (row["source"], row["utm_medium"], row["occupation"]) == ("newsletter", "email", "Teacher")
    assert (row["opt_in_updates"], row["opt_in_partner"]) == ("1", "0")


# 3. Invalid input: each error announced with its field, focus on the first.


def test_invalid_input_is_announced_with_each_field_and_focus_moves_to_the_first(
    world: World, open_page: Callable[..., Page]
) -> None:
    total = world.total()
    page = open_page(world.partner.url + "/")
    frame = frame_of(page)
    name = frame.get_by_role("textbox", name="Your name")
    email = frame.get_by_role("textbox", name="Your email address")
    occupation = frame.get_by_role("textbox", name="Your occupation")

    email.fill("ana.example.org")
    sign_button(frame).click()

    expect(name).to_be_focused()
    expect(frame.get_by_role("alert")).to_have_text("Please check the fields marked below.")
    for field, error in ((name, NAME_ERROR), (email, EMAIL_ERROR)):
        expect(field).to_have_attribute("aria-invalid", "true")
        expect(field).to_have_accessible_description(error)
        # Next to its field: the message is the element right after the input.
        assert field.evaluate("el => el.nextElementSibling.textContent") == error
    expect(occupation).not_to_have_attribute("aria-invalid", "true")
    expect(email).to_have_value("ana.example.org")  # nothing the person typed is lost

    name.fill("Ana")
    sign_button(frame).click()
    expect(email).to_be_focused()
    expect(name).not_to_have_attribute("aria-invalid", "true")
    expect(name).to_have_accessible_description("")
    expect(email).to_have_accessible_description(EMAIL_ERROR)
    assert world.total() == total


# 4. A stranger's site: the browser refuses to show the form.


@pytest.mark.parametrize("path", ["/", "/plain"], ids=["script-snippet", "plain-iframe-without-referrer"])
def test_a_site_the_token_does_not_allow_cannot_show_the_form(
    world: World, open_page: Callable[..., Page], path: str
) -> None:
    page = open_page()
    with (
        page.expect_response(lambda response: "/embed/" in response.url) as answer,
        page.expect_console_message(lambda message: "frame-ancestors" in message.text) as refusal,
        page.expect_event("framenavigated", lambda frame: frame.url.startswith("chrome-error://")),
    ):
        page.goto(world.stranger.url + path)

    policy = answer.value.headers["content-security-policy"]
    assert world.stranger.url not in policy
    if path == "/plain":
        # The server could not tell, and rendered the form: Chromium alone refused it.
        assert answer.value.status == 200
        assert policy.endswith(f"frame-ancestors {world.partner.url}")
    else:
        assert answer.value.status == 403  # the loader named the page, and the server said no
    assert "blocked" in refusal.value.text
    frame = page.locator("iframe").element_handle().content_frame()
    assert frame is not None and frame.url.startswith("chrome-error://")
    expect(page.frame_locator("iframe").locator("form, input, [data-count]")).to_have_count(0)


# 5. JavaScript off: the plain form signs and shows the thank-you page.


def test_without_javascript_the_plain_form_signs_and_thanks(world: World, open_page: Callable[..., Page]) -> None:
    total, credited = world.counts()
    page = open_page(world.partner.url + "/plain", java_script_enabled=False)
    frame = page.frame_locator("iframe")
    expect(frame.locator("[data-form-message]")).not_to_have_attribute("tabindex", "-1")  # frame.js never ran
    name = frame.get_by_role("textbox", name="Your name")
    email = frame.get_by_role("textbox", name="Your email address")

    name.fill("Noor Plain")
    email.fill("noor.plain@")
    frame.get_by_role("button", name="Sign the pledge").click()
    expect(frame.get_by_role("alert")).to_have_text("Please check the field marked below.")
    expect(email).to_have_attribute("aria-invalid", "true")
    expect(email).to_have_accessible_description(EMAIL_ERROR)
    expect(name).to_have_value("Noor Plain")

    email.fill("noor.plain@example.org")
    frame.get_by_role("button", name="Sign the pledge").click()
    expect(frame.get_by_role("heading", name="Thank you, Noor Plain. You have signed.")).to_be_visible()
    expect(frame.locator("[data-count]")).to_have_text(f"{total + 1:,}")
    assert page.frames[1].url.endswith(f"/embed/{SLUG}/sign")  # a real form post, answered in HTML
    assert world.counts() == (total + 1, credited + 1)


# 6. Two widgets on one page; the counter badge; the plain <iframe> snippet.


def test_two_widgets_on_one_page_resize_and_report_on_their_own(world: World, open_page: Callable[..., Page]) -> None:
    total = world.total()
    page = open_page(world.partner.url + "/two")
    form, counter = frame_of(page), frame_of(page, COUNTER, ready=".count")
    # Each frame gets its own height, though both load from one script (pasted twice).
    heights = wait_sized_to_content(page, COUNTER, counter), wait_sized_to_content(page, FORM, form)
    assert heights[0] < heights[1]
    expect(page.locator("iframe")).to_have_count(2)
    expect(page.locator(COUNTER)).to_have_attribute("title", "Pledge signatures so far")
    # The loader's one global, whatever the number of widgets and <script> tags.
    assert page.evaluate(
        """() => {
          const blank = document.createElement("iframe");
          document.body.appendChild(blank);
          const builtIn = new Set(Object.getOwnPropertyNames(blank.contentWindow));
          blank.remove();
          // Numbered names are the page's frames (window[0], window[1]), not globals.
          return Object.getOwnPropertyNames(window).filter((name) => !builtIn.has(name) && !/^\\d+$/.test(name));
        }"""
    ) == ["PledgeWidget"]

    listen_for_signatures(page)
    fill(form, "Two Widgets", "two.widgets@example.org")
    sign_button(form).click()
    expect(form.get_by_role("heading", name="Thank you. You have signed.")).to_be_visible()
    page.wait_for_function("window.signedEvents.length > 0")
    assert page.evaluate("window.signedEvents") == [{"pledge": SLUG, "total": total + 1, "kind": "form"}]
    # The badge on the same page shows the new count too.
    expect(counter.locator("[data-count]")).to_have_text(f"{total + 1:,}")


def test_the_counter_badge_shows_the_count_and_progress_toward_the_goal(
    world: World, open_page: Callable[..., Page]
) -> None:
    total = world.total()
    page = open_page(world.partner.url + "/two", viewport={"width": 360, "height": 800})
    counter = frame_of(page, COUNTER, ready=".count")
    wait_sized_to_content(page, COUNTER, counter)
    expect(counter.locator("[data-count]")).to_have_text(f"{total:,}")
    bar = counter.get_by_role("progressbar", name=f"Progress toward {GOAL:,} signatures")
    expect(bar).to_have_attribute("max", str(GOAL))
    expect(bar).to_have_js_property("value", min(total, GOAL))
    expect(counter.get_by_text(f"Goal: {GOAL:,} signatures")).to_be_visible()
    expect(counter.locator("form")).to_have_count(0)
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


def test_the_counter_badge_stays_live_while_it_is_on_screen(world: World, open_page: Callable[..., Page]) -> None:
    """A signature made elsewhere shows on the badge at its next 30-second look (a fake clock)."""
    total = world.total()
    badge_page = open_page()
    badge_page.clock.install()
    badge_page.goto(world.partner.url + "/two")
    counter = frame_of(badge_page, COUNTER, ready=".count")
    expect(counter.locator("[data-count]")).to_have_text(f"{total:,}")
    expect(counter.locator(".count")).not_to_have_attribute("aria-live", "polite")  # ticking is not announced

    elsewhere = open_page(world.partner.url + "/")
    form = frame_of(elsewhere)
    fill(form, "Badge Watcher", "badge.watcher@example.org")
    sign_button(form).click()
    expect(form.get_by_role("heading", name="Thank you. You have signed.")).to_be_visible()

    expect(counter.locator("[data-count]")).to_have_text(f"{total:,}")  # not before its next look
    badge_page.clock.fast_forward(31_000)
    expect(counter.locator("[data-count]")).to_have_text(f"{total + 1:,}")


def test_the_plain_iframe_snippet_signs_for_the_partner(world: World, open_page: Callable[..., Page]) -> None:
    total, credited = world.counts()
    page = open_page(world.partner.url + "/plain")
    frame = frame_of(page, "iframe")
    fill(frame, "Pat Plain", "pat.plain@example.org")
    sign_button(frame).click()
    expect(frame.get_by_role("heading", name="Thank you. You have signed.")).to_be_visible()
    assert world.counts() == (total + 1, credited + 1)
    # No loader to name the page: the browser's Referer told the server who framed the form, and
    # the snippet's own `source=` in the frame's address which of the partner's pages it was.
    row = world.server.exported(SLUG, "pat.plain@example.org")
    assert (row["origin"], row["source"]) == (world.partner.url, "website")


def test_the_demo_partner_page_collects_a_signature_for_its_partner(
    open_page: Callable[..., Page], tmp_path: Path
) -> None:
    """`widget-server demo` serves examples/embed.html with all three snippets: the README's promise."""
    partner_port = free_port()
    server = WidgetServer.demo(tmp_path, partner_port, WIDGET_MIN_FILL_SECONDS="0")
    try:
        page = open_page(f"http://localhost:{partner_port}/", viewport={"width": 360, "height": 740})
        form, counter = frame_of(page), frame_of(page, COUNTER, ready=".count")
        wait_sized_to_content(page, FORM, form)
        assert page.evaluate("document.documentElement.scrollWidth <= innerWidth"), "the example scrolls sideways"
        plain = "article > iframe"
        page.locator(plain).scroll_into_view_if_needed()  # it is loading="lazy"
        frame_of(page, plain)

        fill(form, "Demo Visitor", "demo.visitor@example.org")
        sign_button(form).click()
        expect(form.get_by_role("heading", name="Thank you. You have signed.")).to_be_visible()
        expect(counter.locator("[data-count]")).to_have_text("1")
        partners = {p["name"]: p["count"] for p in server.stats(demo.SLUG)["partners"]}
        assert partners[demo.PARTNERS[0]] == 1
    finally:
        server.stop()


# 7. Keyboard only.


def test_keyboard_alone_reaches_every_field_and_signs(world: World, open_page: Callable[..., Page]) -> None:
    page = open_page(world.partner.url + "/")
    frame = frame_of(page)
    keyboard = page.keyboard
    steps = [
        ("#f-name", "Kay Board"),
        ("#f-email", "kay.board@example.org"),
        ("#f-occupation", "Nurse"),
        ("#f-organisation", "Riverside Clinic"),
        ("#f-opt_in_updates", "Space"),
        ("#f-opt_in_partner", "Space"),
        ("[data-sign-button]", "Enter"),
    ]
    # The partner's page has nothing to focus before the widget: the first Tab enters the form.
    for selector, action in steps:
        keyboard.press("Tab")
        expect(frame.locator(selector)).to_be_focused()
        if action == "Space":
            keyboard.press("Space")
            expect(frame.locator(selector)).to_be_checked()
        elif action == "Enter":
            keyboard.press("Enter")
        else:
            keyboard.type(action)

    expect(frame.get_by_role("heading", name="Thank you. You have signed.")).to_be_focused()
    row = world.server.exported(SLUG, "kay.board@example.org")
    assert (row["name"], row["occupation"], row["organisation"]) == ("Kay Board", "Nurse", "Riverside Clinic")
    assert (row["opt_in_updates"], row["opt_in_partner"], row["partner"]) == ("1", "1", PARTNER)


# 8. axe-core: no serious or critical violation in any state a signer sees.


def serious_violations(frame: Frame) -> list[str]:
    frame.add_script_tag(path=str(AXE))
    result = frame.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[node['target'] for node in v['nodes']]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def _submit_without_script(frame: Frame) -> None:
    """A plain form post, as with JavaScript off (form.submit() skips the enhanced handler)."""
    with frame.expect_navigation(url=f"**/embed/{SLUG}/sign"):
        frame.evaluate("() => document.querySelector('[data-sign-form]').submit()")


@pytest.mark.parametrize("state", ["form", "errors", "thanks", "plain-errors", "plain-thanks", "counter"])
def test_axe_finds_no_serious_or_critical_violation(world: World, open_page: Callable[..., Page], state: str) -> None:
    _required(AXE, "npm install")
    # Only here: axe is injected as an inline script, which the frame's CSP rightly forbids.
    page = open_page(world.partner.url + ("/two" if state == "counter" else "/"), bypass_csp=True)
    frame = frame_of(page, COUNTER, ready=".count") if state == "counter" else frame_of(page)
    email = f"axe.{state}@example.org"
    if state == "errors":
        sign_button(frame).click()
        expect(frame.get_by_role("textbox", name="Your name")).to_have_attribute("aria-invalid", "true")
    elif state == "thanks":
        fill(frame, "Axe Thanks", email)
        sign_button(frame).click()
        expect(frame.locator("[data-thanks-heading]")).to_be_focused()
    elif state == "plain-errors":
        _submit_without_script(frame)
        expect(frame.get_by_role("textbox", name="Your name")).to_have_attribute("aria-invalid", "true")
    elif state == "plain-thanks":
        fill(frame, "Axe Plain", email)
        _submit_without_script(frame)
        expect(frame.locator("[data-thanks-heading]")).to_be_visible()
    assert serious_violations(frame) == []


# 9. The screenshots in the README come from a command that keeps working.


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_the_screenshot_command_writes_phone_and_desktop_images(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "scripts/screenshots.py", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    sizes = {path.name: png_size(path) for path in tmp_path.glob("*.png")}
    assert sizes.keys() == {"embed-phone.png", "embed-desktop.png", "embed-thanks-phone.png", "counter-desktop.png"}
    assert sizes["embed-phone.png"][0] == sizes["embed-thanks-phone.png"][0] == 360
    assert sizes["embed-desktop.png"][0] == 1280
    assert all(height > 150 for _, height in sizes.values())
