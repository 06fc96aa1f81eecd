"""The staff area in real Chromium against the real server: sign in, read the dashboard, create
a partner and copy its snippet onto its own page, revoke it and see its widget refused there;
axe-core on every staff page; the dashboard's screenshots (docs/screenshots, the README)."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.browser_harness import AXE, CHROMIUM, Site, launch_options, page_html
from tests.conftest import Signer
from tests.server_harness import WidgetServer
from tests.staff.screenshots import OWNER, PASSWORD, SLUG, fill_demo, sign_in, take_screenshots

pytestmark = pytest.mark.browser

if not CHROMIUM.exists():
    pytest.fail(f"the staff browser tests need Chromium at {CHROMIUM}", pytrace=False)


@dataclass
class World:
    server: WidgetServer
    partner_site: Site


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    data = tmp_path_factory.mktemp("staff-browser")
    with ExitStack() as cleanup:
        site = Site({})
        cleanup.callback(site.stop)
        server = WidgetServer.start(data / "server", WIDGET_MIN_FILL_SECONDS="0", WIDGET_RATE_LIMIT="off")
        cleanup.callback(server.stop)
        fill_demo(server)
        yield World(server, site)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(**launch_options())
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, bypass_csp=True)
    errors: list[str] = []
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def test_sign_in_and_read_the_dashboard(world: World, page: Page) -> None:
    sign_in(page, world.server.url)
    page.get_by_role("link", name="Keep our data safe").click()
    expect(page.get_by_role("heading", level=1)).to_contain_text("Keep our data safe")
    stats = world.server.stats(SLUG)
    expect(page.locator('[data-figure="total"]')).to_have_text(f"{stats['total']:,}")
    expect(page.locator('[data-count="direct"]')).to_have_text(f"{stats['direct']:,}")
    assert page.locator("svg.chart").count() == 2
    page.locator("summary", has_text="The chart per day as a table").click()
    expect(page.locator('[data-chart-table="days"]')).to_be_visible()


def test_create_a_partner_copy_its_snippet_then_revoke_it(world: World, browser: Browser) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=world.server.url)
    page = context.new_page()
    try:
        sign_in(page, world.server.url)
        page.goto(f"{world.server.url}/admin/pledges/{SLUG}/partners")
        page.get_by_label("Name").fill("Canal Street Tenants")
        page.get_by_label("Websites where the widget may appear").fill(world.partner_site.url)
        page.get_by_role("button", name="Add the partner").click()
        expect(page.get_by_role("status").first).to_contain_text("Canal Street Tenants is added")
        page.get_by_role("button", name="Copy the form").click()
        expect(page.locator('[data-copied="snippet"]')).to_have_text("Copied.")
        snippet = page.evaluate("() => navigator.clipboard.readText()")
        assert snippet == page.locator("#snippet").input_value()
        assert 'class="pledge-widget"' in snippet

        world.partner_site.pages["/canal"] = page_html("Canal Street Tenants", snippet)
        partner_page = context.new_page()
        partner_page.goto(world.partner_site.url + "/canal")
        frame = partner_page.frame_locator(".pledge-widget iframe")
        expect(frame.get_by_role("button", name="Sign the pledge")).to_be_visible()

        page.get_by_role("button", name="Revoke…").click()
        expect(page.get_by_text("The snippet on localhost")).to_contain_text("stops working at once")
        page.get_by_role("button", name="Revoke Canal Street Tenants").click()
        expect(page.get_by_role("status").first).to_contain_text("is revoked")

        partner_page.reload()
        expect(frame.locator("body")).to_contain_text("switched off")
        expect(frame.get_by_role("button", name="Sign the pledge")).to_have_count(0)
    finally:
        context.close()


STAFF_PAGES = [
    "/admin",
    f"/admin/pledges/{SLUG}",
    f"/admin/pledges/{SLUG}/partners",
    f"/admin/pledges/{SLUG}/partners/1",
    f"/admin/pledges/{SLUG}/edit",
    f"/admin/pledges/{SLUG}/organisations",
    f"/admin/pledges/{SLUG}/abuse?threshold=2",
    f"/admin/pledges/{SLUG}/export",
    "/admin/pledges/new",
    "/admin/people",
    "/admin/audit",
    "/admin/users",
    "/admin/account",
]


def serious_violations(page: Page) -> list[str]:
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("() => axe.run(document, {resultTypes: ['violations']})")
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at {[n['target'] for n in v['nodes']][:3]}"
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


def test_axe_finds_no_serious_or_critical_violation_on_any_staff_page(world: World, page: Page) -> None:
    assert AXE.exists(), "npm install puts axe-core in node_modules"
    page.goto(f"{world.server.url}/admin/login")
    assert serious_violations(page) == [], "/admin/login"
    sign_in(page, world.server.url)
    found = {}
    for path in STAFF_PAGES:
        page.goto(world.server.url + path)
        found[path] = serious_violations(page)
    page.goto(world.server.url + f"/admin/pledges/{SLUG}/partners/1")
    link = page.locator("#report_link").input_value()
    page.goto(link)
    found["partner report"] = serious_violations(page)
    assert {path: v for path, v in found.items() if v} == {}


def png_size(path: Path) -> tuple[int, int]:
    width, height = struct.unpack(">II", path.read_bytes()[16:24])
    return width, height


def test_the_dashboard_screenshots_are_made_by_a_command_that_keeps_working(
    world: World, browser: Browser, tmp_path: Path
) -> None:
    written = take_screenshots(browser, world.server.url, tmp_path)
    assert {p.name for p in written} == {"staff-dashboard-desktop.png", "staff-dashboard-tablet.png"}
    assert png_size(tmp_path / "staff-dashboard-desktop.png")[0] == 1280
    assert png_size(tmp_path / "staff-dashboard-tablet.png")[0] == 820


def test_signatures_reach_the_dashboard(world: World, page: Page) -> None:
    before = world.server.stats(SLUG)["total"]
    with httpx2.Client(base_url=world.server.url) as client:
        Signer(client).sign(email="late.arrival@example.org", occupation="Midwife")
    sign_in(page, world.server.url)
    page.goto(f"{world.server.url}/admin/pledges/{SLUG}")
    expect(page.locator('[data-figure="total"]')).to_have_text(f"{before + 1:,}")
    expect(page.locator("[data-occupations]")).to_contain_text("midwife")


_ = (OWNER, PASSWORD)
