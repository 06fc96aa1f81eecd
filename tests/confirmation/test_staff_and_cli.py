"""Switching confirmation on for a pledge: refused, with a sentence naming the two settings,
without a mail server (the services, the staff form, the CLI); audited like the other settings
when it works; and the dashboard's pending signatures and confirmation rate per partner."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.confirmation.conftest import MAIL_FROM, SLUG, Inbox, SmtpServer, confirming_pledge
from tests.conftest import PARTNER_ORIGIN, FakeClock, Signer, make_partner, make_pledge, on_db
from tests.staff.conftest import staff_client  # noqa: F401  (a fixture)
from tests.staff.test_staff_pages import audit_actions, pledge_row
from widget_server import messages
from widget_server.cli import main
from widget_server.errors import Invalid
from widget_server.services import pledges
from widget_server.services.pledge_settings import edit_pledge
from widget_server.settings import Settings

pytestmark = pytest.mark.both_engines

FORM = {"title": "Keep our data safe", "statement": "<p>We ask.</p>", "status": "open"}


@pytest.fixture
def settings(
    request: pytest.FixtureRequest, make_settings: Callable[..., Settings], smtp_server: SmtpServer
) -> Settings:
    """Mail configured, unless a test asks for `settings` False (indirectly)."""
    if getattr(request, "param", True):
        return make_settings(smtp_url=smtp_server.url(), mail_from=MAIL_FROM)
    return make_settings()


def test_the_services_refuse_to_switch_it_on_without_a_mail_server(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    for attempt in (
        lambda store: pledges.add_pledge(
            store, slug="other", title="T", statement_html="<p>S</p>", confirm_email=True, settings=settings
        ),
        lambda store: pledges.add_pledge(store, slug="other", title="T", statement_html="<p>S</p>", confirm_email=True),
    ):
        with pytest.raises(Invalid) as caught:
            on_db(settings, attempt)
        assert "WIDGET_SMTP_URL" in caught.value.message and "WIDGET_MAIL_FROM" in caught.value.message
    make_pledge(settings)
    with pytest.raises(Invalid, match="WIDGET_SMTP_URL and WIDGET_MAIL_FROM"):
        on_db(settings, lambda store: edit_pledge(store, SLUG, confirm_email=True, settings=settings))
    assert not pledge_row(settings).confirm_email
    # Switching it off, or editing anything else, needs no mail server.
    saved, changed = on_db(settings, lambda store: edit_pledge(store, SLUG, confirm_email=False, goal=5))
    assert changed == ["goal"] and not saved.confirm_email


@pytest.mark.parametrize("settings", [False], indirect=True)
def test_the_staff_form_says_why_it_cannot_be_switched_on(staff_client, settings: Settings) -> None:  # noqa: F811
    make_pledge(settings)
    staff = staff_client("campaigner")
    page = staff.get(f"/admin/pledges/{SLUG}/edit")
    assert 'name="confirm_email"' in page.text and "cannot send email yet" in page.text
    refused = staff.post(f"/admin/pledges/{SLUG}/edit", {**FORM, "confirm_email": "yes"})
    assert refused.status_code == 400
    assert messages.CONFIRM_NEEDS_MAIL in refused.text.replace("&#39;", "'")
    assert not pledge_row(settings).confirm_email
    made = staff.post("/admin/pledges", {**FORM, "slug": "second", "confirm_email": "yes"})
    assert made.status_code == 400 and "WIDGET_SMTP_URL" in made.text
    assert on_db(settings, lambda store: store.pledge_by_slug("second")) is None


def test_the_staff_form_switches_it_on_and_off_audited(staff_client, settings: Settings) -> None:  # noqa: F811
    make_pledge(settings)
    staff = staff_client("campaigner")
    assert "cannot send email yet" not in staff.get(f"/admin/pledges/{SLUG}/edit").text
    saved = staff.post(f"/admin/pledges/{SLUG}/edit", {**FORM, "confirm_email": "yes"})
    assert saved.status_code == 200 and "Saved" in saved.text
    assert pledge_row(settings).confirm_email
    assert re.search(r'name="confirm_email" value="yes"[^>]* checked', saved.text)
    staff.post(f"/admin/pledges/{SLUG}/edit", FORM)
    assert not pledge_row(settings).confirm_email
    edited = [detail for detail in audit_details(settings) if "email confirmation" in detail]
    assert len(edited) == 2
    made = staff.post("/admin/pledges", {**FORM, "slug": "second", "confirm_email": "yes"})
    assert made.status_code == 303 and pledge_row(settings, "second").confirm_email
    assert ("pledge created", "second") in [(a, p) for _, a, p, _ in audit_actions(settings)]


def audit_details(settings: Settings) -> list[str]:
    from tests.conftest import rows

    return [r["detail"] for r in rows(settings, "SELECT * FROM audit_log WHERE action = 'pledge edited' ORDER BY id")]


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, settings: Settings) -> Settings:
    for name, value in settings.as_environment().items():
        monkeypatch.setenv(name, value)
    return settings


def test_the_cli_refuses_without_mail_settings_and_says_which(
    cli_env: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    statement = tmp_path / "statement.html"
    statement.write_text("<p>We ask.</p>")
    add = ["pledge", "add", SLUG, "--title", "Keep our data safe", "--statement-file", str(statement)]
    monkeypatch.delenv("WIDGET_SMTP_URL")
    monkeypatch.delenv("WIDGET_MAIL_FROM")
    assert main([*add, "--confirm-email", "on"]) == 1
    error = capsys.readouterr().err
    assert error.strip() == f"widget-server: {messages.CONFIRM_NEEDS_MAIL}" and "Traceback" not in error
    assert main(add) == 0
    assert main(["pledge", "edit", SLUG, "--confirm-email", "on"]) == 1
    assert messages.CONFIRM_NEEDS_MAIL in capsys.readouterr().err
    assert not pledge_row(cli_env).confirm_email

    monkeypatch.setenv("WIDGET_SMTP_URL", cli_env.smtp_url)
    monkeypatch.setenv("WIDGET_MAIL_FROM", cli_env.mail_from)
    assert main(["pledge", "edit", SLUG, "--confirm-email", "on"]) == 0
    assert pledge_row(cli_env).confirm_email
    assert "email confirmation" in capsys.readouterr().out
    assert main(["pledge", "edit", SLUG, "--confirm-email", "off"]) == 0
    assert not pledge_row(cli_env).confirm_email
    assert sum("email confirmation" in d for d in audit_details(cli_env)) == 2


def test_the_dashboard_shows_pending_and_the_confirmation_rate_per_partner(
    staff_client,  # noqa: F811
    settings: Settings,
    make_client: Callable[..., TestClient],
    clock: FakeClock,
    inbox: Inbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    confirming_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    partner = Signer(client, clock, token=creds.token, parent=PARTNER_ORIGIN)
    for n in range(4):
        partner.sign(email=f"p{n}@example.org")
    Signer(client, clock).sign(email="d0@example.org")
    emails = {got.rcpt_tos[0]: got for got in inbox.wait_for(5)}
    client.post(emails["p0@example.org"].link.replace("http://testserver", ""))

    page = staff_client("viewer").get(f"/admin/pledges/{SLUG}").text
    assert figure(page, 'data-figure="pending-signatures"') == "4"
    assert figure(page, 'data-figure="confirmation-rate"') == "20.0%"
    assert figure(page, f'data-pending="{creds.partner.id}"') == "3"
    assert figure(page, f'data-confirmation-rate="{creds.partner.id}"') == "25.0%"
    assert figure(page, 'data-pending="direct"') == "1"
    assert figure(page, 'data-confirmation-rate="direct"') == "0.0%"
    assert figure(page, 'data-figure="total"') == "1"

    # `widget-server stats` says the same in words.
    for name, value in settings.as_environment().items():
        monkeypatch.setenv(name, value)
    assert main(["stats", SLUG]) == 0
    printed = capsys.readouterr().out
    assert "waiting for confirmation: 4 (20% confirmed)" in printed
    assert "(3 waiting, 25% confirmed)" in printed


def test_the_dashboard_of_a_pledge_without_confirmation_is_as_before(
    staff_client,  # noqa: F811
    settings: Settings,
) -> None:
    make_pledge(settings)
    page = staff_client("viewer").get(f"/admin/pledges/{SLUG}").text
    assert "Waiting for confirmation" not in page and "data-pending=" not in page


def figure(page: str, attribute: str) -> Any:
    found = re.search(re.escape(attribute) + r">([^<]*)<", page)
    assert found, attribute
    return found.group(1).strip()


def test_the_people_page_shows_a_waiting_signature_and_erasure_removes_it_with_its_email(
    staff_client,  # noqa: F811
    settings: Settings,
    make_client: Callable[..., TestClient],
    clock: FakeClock,
    inbox: Inbox,
) -> None:
    confirming_pledge(settings)
    Signer(make_client(settings), clock).sign(email="wait@example.org")
    inbox.wait_for(1)
    staff = staff_client("owner")
    found = staff.post("/admin/people/find", {"email": "wait@example.org"}).text
    assert re.search(r"<td data-status>waiting for confirmation</td>", found)
    done = staff.post("/admin/people/erase", {"email": "wait@example.org", "confirmed": "yes"})
    assert "Erased 1 signature" in done.text

    async def left(store: Any) -> tuple[int, int]:
        pledge = await store.pledge_by_slug(SLUG)
        return sum((await store.pending_counts(pledge.id)).values()), len(await store.outbox_messages())

    assert on_db(settings, left) == (0, 0)
