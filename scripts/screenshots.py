"""Screenshots of the widget as a partner's visitors see it, for the README.

    python scripts/screenshots.py [--out docs/screenshots]

Starts the real server on a throw-away database holding the demo pledge, serves a partner's
page from another origin, and drives Debian's Chromium (/usr/bin/chromium) through Playwright.
Writes embed-phone.png (360 px wide), embed-desktop.png (1280 px), embed-thanks-phone.png and
counter-desktop.png.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import Browser, Frame, Page, ViewportSize, sync_playwright

ROOT = Path(__file__).resolve().parent.parent
# Run as a script from anywhere: the harnesses are the ones the tests (and benchmarks) use.
sys.path.insert(0, str(ROOT))

from tests.browser_harness import (  # noqa: E402
    Site,
    launch_options,
    wait_sized_to_content,
    widget_frame,
)
from tests.server_harness import WidgetServer  # noqa: E402
from widget_server import demo  # noqa: E402
from widget_server.settings import Settings  # noqa: E402

OUT = ROOT / "docs" / "screenshots"
PHONE: ViewportSize = {"width": 360, "height": 740}
DESKTOP: ViewportSize = {"width": 1280, "height": 800}
FORM = ".pledge-widget:not([data-kind]) iframe"
COUNTER = ".pledge-widget[data-kind=counter] iframe"

PARTNER_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Sign the data firewall pledge · Riverside Migrant Support</title>
<style>
  body {{ margin: 0; font-family: Georgia, "Times New Roman", serif; color: #222; background: #f6f3ee; }}
  header {{ background: #5b2a86; color: #fff; padding: .9rem 1.25rem; font-weight: bold; }}
  article {{ max-width: 44rem; margin: 0 auto; padding: .5rem 0 1rem; background: #fff; }}
  article > p, article > h1 {{ margin-left: 1.25rem; margin-right: 1.25rem; }}
  h1 {{ font-size: 1.6rem; line-height: 1.2; color: #5b2a86; }}
  aside {{ max-width: 44rem; margin: 1rem auto; }}
</style>
</head>
<body>
<header>Riverside Migrant Support</header>
<article>
  <h1>Add your name to the data firewall pledge</h1>
  <p>We have joined a national campaign. It takes less than a minute, and the campaign will know
  that you signed through Riverside.</p>
  {snippet}
</article>
<aside>{counter}</aside>
</body>
</html>
"""


def full_page_shot(page: Page, viewport: ViewportSize, path: Path) -> None:
    """The whole page. The viewport grows to the page first: Chromium paints cross-origin
    frames only where they are on screen."""
    page.set_viewport_size(viewport)
    height = page.evaluate("document.documentElement.scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": height})
    page.screenshot(path=path, full_page=True)
    page.set_viewport_size(viewport)


def shown(page: Page, selector: str, ready: str = "main") -> Frame:
    """The widget's frame, once it shows its content and the page has sized it to fit."""
    frame = widget_frame(page, selector, ready)
    wait_sized_to_content(page, selector, frame)
    return frame


def capture(browser: Browser, page_url: str, out: Path) -> list[Path]:
    """Screenshot the partner page at `page_url`: its form and counter badge, then a thank-you."""
    out.mkdir(parents=True, exist_ok=True)
    shots = {name: out / name for name in ("embed-phone.png", "embed-desktop.png", "counter-desktop.png")}
    for name, viewport in (("embed-phone.png", PHONE), ("embed-desktop.png", DESKTOP)):
        context = browser.new_context(viewport=viewport, device_scale_factor=1)
        page = context.new_page()
        page.goto(page_url)
        shown(page, FORM)
        shown(page, COUNTER)
        full_page_shot(page, viewport, shots[name])
        if viewport is DESKTOP:
            page.locator(COUNTER).screenshot(path=shots["counter-desktop.png"])
        context.close()

    context = browser.new_context(viewport=PHONE, device_scale_factor=1)
    page = context.new_page()
    page.goto(page_url)
    frame = shown(page, FORM)
    frame.get_by_role("textbox", name="Your name").fill("Sam Okafor")
    frame.get_by_role("textbox", name="Your email address").fill("sam@example.org")
    frame.get_by_role("textbox", name="Your occupation").fill("School nurse")
    frame.get_by_role("button", name="Sign the pledge").click()
    shown(page, FORM, ready="[data-thanks-heading]")
    shots["embed-thanks-phone.png"] = out / "embed-thanks-phone.png"
    full_page_shot(page, PHONE, shots["embed-thanks-phone.png"])
    context.close()
    return list(shots.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=OUT, help="folder for the PNG files (default: %(default)s)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        site = Site({})
        # Signing at once is fine here: the screenshots are of a person, not of the bot check.
        server = WidgetServer.start(Path(tmp), WIDGET_MIN_FILL_SECONDS="0")
        try:
            settings = Settings.from_env(
                environ={}, db_path=str(server.db), secret_key=server.env["WIDGET_SECRET_KEY"], public_url=server.url
            )
            creds = asyncio.run(demo.prepare(settings, site.url))
            site.pages["/"] = PARTNER_PAGE.format(
                snippet=creds.snippets["snippet"], counter=creds.snippets["counter_snippet"]
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**launch_options())
                try:
                    for path in capture(browser, site.url + "/", args.out):
                        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
                finally:
                    browser.close()
        finally:
            server.stop()
            site.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
