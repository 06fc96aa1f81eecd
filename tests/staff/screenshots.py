"""The staff dashboard's screenshots for docs/screenshots and the README, from a real server.

    python -m tests.staff.screenshots            # writes docs/screenshots/staff-dashboard-*.png

Used by tests/staff/test_staff_browser.py too (into a temporary folder), so it keeps working.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import httpx2
from playwright.sync_api import Browser, Page, sync_playwright

from tests.browser_harness import launch_options
from tests.conftest import Signer
from tests.server_harness import ROOT, WidgetServer

SLUG = "data-firewall"
OWNER = "owner@campaign.example"
PASSWORD = "a long staff password"
STATEMENT = (
    "<p>We ask every school, surgery and hospital to keep the personal data it holds away from"
    " immigration enforcement.</p>"
)
PARTNERS = [
    (
        "Riverside Migrant Support",
        "https://riverside.example",
        ["Nurse", "nurse", "Teacher", "Social worker"],
        "newsletter",
    ),
    ("Hill Street Union", "https://hill.example", ["Teacher", "teacher ", "Lecturer"], "social"),
    ("Northgate Health Workers", "https://northgate.example", ["Doctor", "Nurse", "Midwife"], "email"),
]


def fill_demo(server: WidgetServer) -> None:
    """A pledge, an owner, three partners and some signatures through the real sign form."""
    statement = Path(server.db).parent / "statement.html"
    statement.write_text(STATEMENT, encoding="utf-8")
    server.cli(
        "pledge", "add", SLUG, "--title", "Keep our data safe", "--statement-file", str(statement), "--goal", "500"
    )
    server.env["WIDGET_PASSWORD"] = PASSWORD
    server.cli("user", "add", OWNER, "--role", "owner")
    with httpx2.Client(base_url=server.url) as client:
        for index, (name, origin, jobs, source) in enumerate(PARTNERS):
            token = json.loads(server.cli("partner", "add", SLUG, "--name", name, "--origin", origin, "--json"))[
                "token"
            ]
            for i in range(12 - 3 * index):
                signer = Signer(client, token=token, parent=origin, query={"source": source if i % 3 else "site"})
                signer.sign(
                    email=f"p{index}.{i}@example.org",
                    occupation=jobs[i % len(jobs)],
                    organisation="Hill School" if i == 1 else "",
                    opt_in_partner="yes" if i % 2 else "",
                )
        for i in range(4):
            Signer(client).sign(email=f"direct.{i}@example.org", occupation="Nurse")


def sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/admin/login")
    page.get_by_label("Email address").fill(OWNER)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"{url}/admin")


def take_screenshots(browser: Browser, url: str, out: Path) -> list[Path]:
    written = []
    for name, width in (("desktop", 1280), ("tablet", 820)):
        context = browser.new_context(viewport={"width": width, "height": 900})
        try:
            page = context.new_page()
            sign_in(page, url)
            page.goto(f"{url}/admin/pledges/{SLUG}")
            path = out / f"staff-dashboard-{name}.png"
            page.screenshot(path=str(path), full_page=True)
            written.append(path)
        finally:
            context.close()
    return written


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        server = WidgetServer.start(Path(data), WIDGET_MIN_FILL_SECONDS="0", WIDGET_RATE_LIMIT="off")
        try:
            fill_demo(server)
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(**launch_options())
                for path in take_screenshots(browser, server.url, args.out):
                    print(path)
                browser.close()
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
