"""No layout shift: the partner's page does not move when the widget arrives. The snippet
reserves the frame's height on its placeholder, the loader starts the frame at exactly that
height, and the frame reports its own before it first paints.

Measured as the issue asks: a PerformanceObserver for `layout-shift` from navigation until 3 s
after the load event, on the demo partner page (as `widget-server demo` serves it) and on a bare
partner page, at 360 and 1280 px: the page itself, and each of the widget's frames from its
first paint (hosts.SEEN_SHIFT says why from then).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

import pytest
from playwright.sync_api import Page

from tests.browser.conftest import Hosts, Opened
from tests.browser.hosts import CUMULATIVE_SHIFT, LOADED_FOR, SEEN_SHIFT, frame_of, wait_sized
from tests.server_harness import WidgetServer, free_port
from widget_server import demo
from widget_server.core import snippets
from widget_server.files import EXAMPLE_PAGE

pytestmark = pytest.mark.browser

GOOD = 0.05
WINDOWS = [{"width": 360, "height": 740}, {"width": 1280, "height": 800}]


@pytest.fixture(scope="module")
def demo_page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    partner_port = free_port()
    server = WidgetServer.demo(tmp_path_factory.mktemp("demo"), partner_port)
    yield f"http://localhost:{partner_port}/"
    server.stop()


# Every widget has reported its own height (the loader then drops the snippet's reservation).
SIZED = """(widgets) => {
  const mounted = document.querySelectorAll(".pledge-widget[data-pledge-mounted]");
  return mounted.length === widgets && [...mounted].every((el) => el.style.minHeight === "");
}"""


def settled_shift(page: Page, widgets: int) -> dict[str, float]:
    """Once every widget is sized to its content and the page loaded 3 s ago: the cumulative
    layout shift of the page and of each frame.

    The frames are not looked into before then: asking a frame about its layout while its
    stylesheet is on the way lays it out unstyled, which the browser then counts as a shift.
    """
    page.wait_for_function(SIZED, arg=widgets, timeout=60_000)
    page.wait_for_function(LOADED_FOR, arg=3000, timeout=60_000)
    for index in range(widgets):
        wait_sized(page, frame_of(page, index), index)
    shifts = {"page": page.evaluate(CUMULATIVE_SHIFT)}
    for index in range(widgets):
        frame = frame_of(page, index)
        shifts[f"frame {index}"] = frame.evaluate(SEEN_SHIFT)
        if shifts[f"frame {index}"] >= GOOD:
            print(f"frame {index}: {frame.evaluate('window.__layoutShifts')}")
    if shifts["page"] >= GOOD:
        print(f"page: {page.evaluate('window.__layoutShifts')}")
    return shifts


@pytest.mark.parametrize("window", WINDOWS, ids=["360px", "1280px"])
def test_the_demo_partner_page_does_not_shift(
    demo_page: str, open_page: Callable[..., Opened], window: dict[str, int]
) -> None:
    opened = open_page(demo_page, viewport=window)
    shifts = settled_shift(opened.page, widgets=2)  # the badge and the form; the plain frame is lazy
    assert all(value < GOOD for value in shifts.values()), shifts


@pytest.mark.parametrize("window", WINDOWS, ids=["360px", "1280px"])
def test_a_bare_partner_page_does_not_shift(
    hosts: Hosts, open_page: Callable[..., Opened], window: dict[str, int]
) -> None:
    opened = open_page(hosts.site.url + "/bare", viewport=window)
    shifts = settled_shift(opened.page, widgets=1)
    assert all(value < GOOD for value in shifts.values()), shifts
    # Once the frame has its own height, the snippet's reservation is dropped: no gap below.
    reserved = opened.page.evaluate("document.querySelector('.pledge-widget').style.minHeight")
    assert reserved == "", "the reservation stays after the frame has its height"


@pytest.mark.parametrize("width", [260, 360, 800])
@pytest.mark.parametrize("goal", [True, False], ids=["goal", "no-goal"])
def test_the_badge_is_exactly_as_tall_as_its_snippet_reserves(
    hosts: Hosts, open_page: Callable[..., Opened], width: int, goal: bool
) -> None:
    slug = "data-firewall" if goal else "no-goal"
    url = f"{hosts.server.url}/embed/{slug}/counter"
    opened = open_page(url, viewport={"width": width, "height": 600})
    height = opened.page.evaluate("Math.ceil(document.body.getBoundingClientRect().height)")
    assert height == snippets.BADGE_HEIGHT[goal]


@pytest.mark.parametrize(("width", "size"), [(360, "narrow"), (1280, "wide")])
def test_the_form_is_near_the_height_its_snippet_reserves(
    hosts: Hosts, open_page: Callable[..., Opened], width: int, size: str
) -> None:
    opened = open_page(f"{hosts.server.url}/pledge/data-firewall", viewport={"width": width, "height": 800})
    height = opened.page.evaluate("Math.ceil(document.body.getBoundingClientRect().height)")
    statement = opened.page.evaluate("document.querySelector('.statement').innerHTML")
    expected = snippets.form_heights(statement)[size]
    assert height <= expected <= height * 1.1, (height, expected)


def test_the_demo_page_pastes_the_snippets_the_server_prints() -> None:
    """examples/embed.html reserves what `widget-server partner add` would print for the demo pledge."""
    page = EXAMPLE_PAGE.read_text(encoding="utf-8")
    printed = snippets.all_snippets(demo.EXAMPLE_SERVER, demo.SLUG, demo.EXAMPLE_TOKEN, demo.GOAL, demo.STATEMENT)
    for key in ("snippet", "counter_snippet"):
        placeholder = printed[key].split("\n")[0]
        assert placeholder in page, key
    assert re.search(r"\?token=[^\"]*&amp;source=", page)
