"""A loader that survives its host: on every kind of difficult partner page (one file each in
pages/), the widget appears, is sized to its content, and signs; or, where it cannot work, it
says why once in the console and never throws into the page."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Frame, Page, expect

from tests.browser.conftest import PARTNER, SLUG, Hosts, Opened
from tests.browser.hosts import frame_of, wait_sized

pytestmark = pytest.mark.browser

FORM_READY = "[data-sign-form]"
# Records the loader's DOM event as a partner's script would, without any method a hostile page
# may have replaced.
LISTEN = """() => {
  window.signedEvents = [];
  document.addEventListener("pledge:signed", function (event) {
    window.signedEvents[window.signedEvents.length] = event.detail.total;
  });
}"""


def sign(page: Page, frame: Frame, email: str) -> None:
    frame.get_by_role("textbox", name="Your name").fill("Host Tester")
    frame.get_by_role("textbox", name="Your email address").fill(email)
    frame.get_by_role("button", name="Sign the pledge").click()
    expect(frame.get_by_role("heading", name="Thank you. You have signed.")).to_be_visible()


def works(hosts: Hosts, opened: Opened, email: str, frames: int = 1, records_itself: bool = False) -> Frame:
    """The widget appeared, is exactly as tall as its form, signs, and tells the page once.

    Nothing here runs script in the page's own world unless asked (a page that broke the
    built-ins breaks that too, and then `records_itself` what the loader tells it).
    """
    page = opened.page
    frame = frame_of(page, 0, FORM_READY)
    expect(page.locator("iframe")).to_have_count(frames)
    height = int(frame.evaluate("() => Math.ceil(document.body.getBoundingClientRect().height)"))
    assert height > 800, "the form is squashed"
    iframe = page.locator("iframe").first
    expect(iframe).to_have_attribute("style", re.compile(rf"(^|; )height: {height}px !important;"))
    box = iframe.bounding_box()
    assert box is not None and box["width"] >= 300 and box["height"] == height, box
    total = hosts.total()
    if not records_itself:
        page.evaluate(LISTEN)
    sign(page, frame, email)
    if records_itself:
        expect(page.locator("html")).to_have_attribute("data-signed", str(total + 1))
    else:
        page.wait_for_function("window.signedEvents.length > 0")
        assert page.evaluate("window.signedEvents") == [total + 1]
    assert hosts.total() == total + 1
    assert opened.said("error") == [], "the console reported errors"
    return frame


def test_a_page_that_replaced_built_ins_and_wrapped_others(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/prototypes")
    works(hosts, opened, "prototypes@example.org", records_itself=True)
    # The page's wrappers were in the loader's way, and let everything through.
    html = opened.page.locator("html")
    for wrapped in ("append-child", "add-event-listener"):
        assert int(html.get_attribute(f"data-{wrapped}") or 0) >= 1, wrapped
    assert opened.said("warning") == []


def test_a_page_whose_own_script_uses_the_global_name(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/global-name")
    works(hosts, opened, "global-name@example.org")
    assert opened.page.evaluate("window.PledgeWidget.version") == "the page's own"  # left alone
    [said] = opened.said("warning")
    assert "already uses window.PledgeWidget" in said and "pledge-widget:scan" in said


def test_a_page_with_an_element_whose_id_is_the_global_name(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/element-id")
    works(hosts, opened, "element-id@example.org")
    assert opened.page.evaluate("window.PledgeWidget === document.getElementById('PledgeWidget')")


def test_a_placeholder_in_an_open_shadow_root_mounts_with_scan(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/shadow-open")
    works(hosts, opened, "shadow-open@example.org")
    assert opened.page.evaluate("document.querySelectorAll('iframe').length") == 0  # it is in the shadow root
    assert opened.said("warning") == []


def test_a_placeholder_in_a_closed_shadow_root_is_explained_once(
    hosts: Hosts, open_page: Callable[..., Opened]
) -> None:
    opened = open_page()
    page = opened.page
    with page.expect_console_message(lambda message: message.type == "warning") as said:
        page.goto(hosts.site.url + "/shadow-closed")
    page.wait_for_function("document.readyState === 'complete'")
    assert "PledgeWidget.scan(root)" in said.value.text and "closed shadow root" in said.value.text
    assert len(opened.said("warning")) == 1
    assert opened.said("error") == []
    expect(page.locator("iframe")).to_have_count(0)


def test_a_page_that_forces_frame_sizes_and_display_with_important_rules(
    hosts: Hosts, open_page: Callable[..., Opened]
) -> None:
    opened = open_page(hosts.site.url + "/important", viewport={"width": 800, "height": 900})
    works(hosts, opened, "important@example.org")
    placeholder = opened.page.locator(".pledge-widget").bounding_box()
    frame = opened.page.locator("iframe").bounding_box()
    assert placeholder is not None and frame is not None
    assert (frame["x"], frame["width"]) == (placeholder["x"], placeholder["width"])


def test_the_snippet_pasted_twice(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/twice")
    page = opened.page
    second = frame_of(page, 1, FORM_READY)
    wait_sized(page, second, 1)
    works(hosts, opened, "twice@example.org", frames=2)
    # One loader ran, so the page heard of the signature once, and the other form shows the count.
    assert len(page.evaluate("window.signedEvents")) == 1
    total = hosts.total()
    expect(second.locator("[data-tally] [data-count]")).to_have_text(f"{total:,}")


def test_a_snippet_added_by_a_tag_manager(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    works(hosts, open_page(hosts.site.url + "/tag-manager"), "tag-manager@example.org")


def test_a_snippet_added_after_the_page_has_loaded(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    works(hosts, open_page(hosts.site.url + "/after-load"), "after-load@example.org")


def test_a_page_in_quirks_mode(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/quirks")
    assert opened.page.evaluate("document.compatMode") == "BackCompat"
    works(hosts, opened, "quirks@example.org")


def test_a_right_to_left_page(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/rtl")
    frame = works(hosts, opened, "rtl@example.org")
    assert frame.evaluate("getComputedStyle(document.body).direction") == "ltr"  # the widget keeps its own


def test_a_strict_content_security_policy_and_no_referrer(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/strict-csp")
    works(hosts, opened, "strict-csp@example.org")
    assert not [text for text in opened.said("error") if "Content Security Policy" in text]
    # With no Referer, the loader's word (checked against the token) still credits the partner.
    row = hosts.server.exported(SLUG, "strict-csp@example.org")
    assert (row["partner"], row["origin"]) == (PARTNER, hosts.site.url)


def test_a_page_that_requires_trusted_types(hosts: Hosts, open_page: Callable[..., Opened]) -> None:
    opened = open_page(hosts.site.url + "/trusted-types")
    works(hosts, opened, "trusted-types@example.org")
