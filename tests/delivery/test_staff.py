"""The staff area's side of webhooks and the outbox: the partner page's webhook form (the secret shown
once, never audited), the outbox page with retry and discard, and who may do what."""

from __future__ import annotations

import json

import pytest

from tests.conftest import make_partner, make_pledge, on_db, rows
from tests.delivery.conftest import Receiver, consenting, outbox, wait_until
from tests.staff.conftest import CHEAP, StaffClient, add_user, log_in, staff_client
from widget_server import messages
from widget_server.settings import Settings
from widget_server.storage.store import Store

__all__ = ["staff_client"]  # the fixture, from the staff area's tests

pytestmark = pytest.mark.both_engines

PARTNER = "/admin/pledges/data-firewall/partners/1"


@pytest.fixture
def partner(settings: Settings) -> None:
    make_pledge(settings)
    make_partner(settings)


def audit(settings: Settings) -> list[dict[str, str]]:
    return [dict(r) for r in rows(settings, "SELECT actor, action, pledge, subject, detail FROM audit_log ORDER BY id")]


def test_setting_a_webhook_shows_its_secret_once_and_audits_no_secret(
    staff_client, settings: Settings, partner: None, receiver: Receiver
) -> None:
    staff = staff_client("campaigner")
    page = staff.get(PARTNER)
    assert "No webhook is set" in page.text and 'name="url"' in page.text
    answer = staff.post(PARTNER + "/webhook", {"url": receiver.url("/hooks/t0ken")})
    assert answer.status_code == 200
    found = on_db(settings, lambda store: store.partner_webhook(1))
    assert found is not None
    url, secret = found
    assert url == receiver.url("/hooks/t0ken")
    assert secret in answer.text and "will not be shown again" in answer.text
    assert answer.headers["cache-control"] == "no-store"
    # Not on any later page.
    again = staff.get(PARTNER)
    assert secret not in again.text and "whsec_" not in again.text
    assert receiver.url("/hooks/t0ken") in again.text
    [entry] = [e for e in audit(settings) if e["action"] == "webhook set"]
    assert entry["subject"] == "Riverside" and entry["detail"] == f"http://127.0.0.1:{receiver.port}"
    assert secret not in json.dumps(audit(settings)) and "t0ken" not in json.dumps(audit(settings))


def test_a_bad_url_is_refused_with_its_rule(make_client, make_settings, partner: None) -> None:
    strict = make_settings(webhook_allow_local="off")
    add_user(strict, "cam@campaign.example", "campaigner")
    client = make_client(strict)
    client.app.state.staff_password_cost = CHEAP
    assert log_in(client, "cam@campaign.example").status_code == 303
    staff = StaffClient(client, "cam@campaign.example")
    staff.refresh_csrf()
    answer = staff.post(PARTNER + "/webhook", {"url": "http://crm.example.org/hook"})
    assert answer.status_code == 400
    assert messages.WEBHOOK_URL_NOT_HTTPS.replace("'", "&#39;") in answer.text
    assert 'value="http://crm.example.org/hook"' in answer.text  # kept, to correct
    answer = staff.post(PARTNER + "/webhook", {"url": "https://169.254.169.254/latest"})
    assert answer.status_code == 400 and "public server" in answer.text
    assert on_db(make_settings(), lambda store: store.partner_webhook(1)) is None


def test_replacing_or_switching_off_is_confirmed_first(staff_client, settings: Settings, partner: None) -> None:
    staff = staff_client("campaigner")
    staff.post(PARTNER + "/webhook", {"url": "https://crm.example.org/a"})
    first = on_db(settings, lambda store: store.partner_webhook(1))
    asked = staff.post(PARTNER + "/webhook", {"url": "https://crm.example.org/b"})
    assert "Replace Riverside&#39;s webhook?" in asked.text and "whsec_" not in asked.text
    assert on_db(settings, lambda store: store.partner_webhook(1)) == first
    done = staff.post(PARTNER + "/webhook", {"url": "https://crm.example.org/b", "confirmed": "yes"})
    now = on_db(settings, lambda store: store.partner_webhook(1))
    assert first is not None and now is not None
    url, secret = now
    assert url == "https://crm.example.org/b" and secret != first[1] and secret in done.text

    asked = staff.post(PARTNER + "/webhook", {"off": "yes"})
    assert "Switch off Riverside&#39;s webhook?" in asked.text
    assert on_db(settings, lambda store: store.partner_webhook(1)) is not None
    done = staff.post(PARTNER + "/webhook", {"off": "yes", "confirmed": "yes"})
    assert done.status_code == 200 and "switched off" in done.text
    assert on_db(settings, lambda store: store.partner_webhook(1)) is None
    assert [e["action"] for e in audit(settings) if "webhook" in e["action"]] == [
        "webhook set",
        "webhook set",
        "webhook removed",
    ]


def test_viewers_and_forged_posts_cannot_touch_webhooks_or_the_outbox(
    staff_client, settings: Settings, partner: None
) -> None:
    viewer = staff_client("viewer")
    assert viewer.post(PARTNER + "/webhook", {"url": "https://crm.example.org/a"}).status_code == 403
    assert viewer.get("/admin/outbox").status_code == 403
    assert viewer.post("/admin/outbox/retry", {"all": "yes"}).status_code == 403
    assert ">Outbox<" not in viewer.get("/admin").text
    campaigner = staff_client("campaigner")
    assert ">Outbox<" in campaigner.get("/admin").text
    assert campaigner.post(PARTNER + "/webhook", {"url": "https://crm.example.org/a"}, csrf="forged").status_code == 403
    assert campaigner.post("/admin/outbox/discard", {"id": "1", "confirmed": "yes"}, csrf="").status_code == 403
    assert on_db(settings, lambda store: store.partner_webhook(1)) is None


def _dead(settings: Settings, url: str) -> int:
    async def go(store: Store) -> int:
        await store.set_partner_webhook(1, url, "whsec_" + "A" * 44)
        await store.write_signatures([consenting(1, 1, "ana@example.org", 1_790_000_000.0)])
        [message] = await store.outbox_messages()
        await store.outbox_failed(message.id, messages.DELIVERY_CONNECT.format(problem="Connection refused"), None)
        return message.id

    return on_db(settings, go)


def test_the_outbox_page_lists_dead_messages_and_retries_them(
    staff_client, settings: Settings, partner: None, receiver: Receiver
) -> None:
    staff = staff_client("campaigner")
    assert "No dead messages." in staff.get("/admin/outbox").text
    receiver.answer(503)  # so the retried message stays queued while the page is read
    message_id = _dead(settings, receiver.url())
    page = staff.get("/admin/outbox").text
    assert f'<th scope="row">{message_id}</th>' in page
    assert "could not connect to the webhook&#39;s host (Connection refused)" in page and "Riverside" in page
    assert "ana@example.org" not in page
    answer = staff.post("/admin/outbox/retry", {"id": str(message_id)})
    assert answer.status_code == 200 and messages.outbox_retried(1) in answer.text
    # The retry woke this process's worker: the receiver is asked at once.
    receiver.wait_for(1, answered=False)
    again = staff.post("/admin/outbox/retry", {"id": str(message_id)})
    assert again.status_code == 400 and "is not dead" in again.text
    assert staff.post("/admin/outbox/retry", {"id": "x"}).status_code == 400
    assert [e["action"] for e in audit(settings) if e["action"].startswith("outbox")] == ["outbox retried"]


def test_the_outbox_page_retries_into_a_delivery(
    staff_client, settings: Settings, partner: None, receiver: Receiver
) -> None:
    staff = staff_client("owner")
    _dead(settings, receiver.url())
    assert staff.post("/admin/outbox/retry", {"all": "yes"}).status_code == 200
    receiver.wait_for(1)
    wait_until(lambda: outbox(settings) == [], what="the outbox emptying")


def test_discarding_from_the_outbox_page_is_confirmed_then_audited(
    staff_client, settings: Settings, partner: None, receiver: Receiver
) -> None:
    staff = staff_client("campaigner")
    message_id = _dead(settings, receiver.url())
    asked = staff.post("/admin/outbox/discard", {"id": str(message_id)})
    assert f"Discard message {message_id}?" in asked.text
    assert len(outbox(settings)) == 1
    done = staff.post("/admin/outbox/discard", {"id": str(message_id), "confirmed": "yes"})
    assert done.status_code == 200 and messages.OUTBOX_DISCARDED.format(id=message_id) in done.text
    assert outbox(settings) == []
    gone = staff.post("/admin/outbox/discard", {"id": str(message_id), "confirmed": "yes"})
    assert gone.status_code == 400
    [entry] = [e for e in audit(settings) if e["action"] == "outbox discarded"]
    assert entry["subject"] == f"message {message_id}" and entry["actor"] == staff.email
    assert receiver.all() == []
