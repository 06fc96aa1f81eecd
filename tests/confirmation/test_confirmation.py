"""Confirmed signatures, through the app (its outbox worker sending to a real SMTP server on
loopback): a pledge that asks for confirmation stores a signature as pending and says "check your
email"; the email's link opens a page whose button counts it, once; GET counts nothing; the
re-send cap, the one reminder and the retention purge; counts, the counter API and stats."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from tests.confirmation.conftest import (
    SLUG,
    Inbox,
    SmtpServer,
    confirming_pledge,
    outbox,
)
from tests.conftest import PARTNER_ORIGIN, FakeClock, Signer, make_partner, make_pledge, on_db, stats
from widget_server import messages
from widget_server.core.models import NewSignature
from widget_server.core.times import iso_utc
from widget_server.delivery.errors import DeliveryFailed, Dropped
from widget_server.security.tokens import ConfirmClaim, FormClaim, Tokens
from widget_server.services.confirmation import Confirmation
from widget_server.settings import Settings
from widget_server.storage.store import Store

pytestmark = pytest.mark.both_engines

HOUR = 3600.0


def path_of(link: str) -> str:
    return urlsplit(link).path


def count(client: TestClient) -> int:
    return int(client.get(f"/api/pledges/{SLUG}/count").json()["total"])


def pending_rows(settings: Settings) -> int:
    async def go(store: Store) -> int:
        pledge = await store.pledge_by_slug(SLUG)
        assert pledge is not None
        return sum((await store.pending_counts(pledge.id)).values())

    return on_db(settings, go)


@pytest.fixture
def client(make_client: Callable[..., TestClient], settings: Settings) -> TestClient:
    return make_client(settings)


@pytest.fixture
def signer(client: TestClient, clock: FakeClock) -> Signer:
    return Signer(client, clock)


def test_with_confirmation_off_a_signature_counts_at_once_and_no_email_is_sent(
    settings: Settings, signer: Signer, client: TestClient, inbox: Inbox
) -> None:
    make_pledge(settings)
    answer = signer.sign(json=True)
    assert answer.json() == {"status": "signed", "total": 1}
    assert count(client) == 1
    assert "You have signed." in signer.sign(email="ben@example.org").text
    assert inbox.settle() == 0 and outbox(settings) == []
    figures = stats(settings)
    assert (figures["total"], figures["pending"], figures["confirmation_rate"]) == (2, 0, None)


def test_a_signature_waits_until_the_emails_button_is_pressed_then_counts_once(
    make_settings: Callable[..., Settings],
    mail_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    clock: FakeClock,
    inbox: Inbox,
) -> None:
    # Counts kept in memory for a minute: the confirmation must put its new count there itself.
    settings = mail_settings(cache_seconds=60.0)
    confirming_pledge(settings)
    client = make_client(settings)
    signer = Signer(client, clock)
    assert count(client) == 0

    answer = signer.sign(json=True)
    assert answer.status_code == 200 and answer.json() == {"status": "pending"}
    html = signer.sign(email="ben@example.org")
    assert "Please check your email." in html.text and "You have signed." not in html.text
    assert "data-signed-total" not in html.text  # the partner's page hears of no signature yet
    assert count(client) == 0
    assert (stats(settings)["total"], stats(settings)["pending"]) == (0, 2)

    emails = {got.rcpt_tos[0]: got for got in inbox.wait_for(2)}
    link = emails["ana@example.org"].link
    assert link.startswith("http://testserver/confirm/")

    page = client.get(path_of(link))
    assert page.status_code == 200
    assert "Keep our data safe" in page.text and "Confirm my signature" in page.text
    assert f'action="{path_of(link)}"' in page.text and 'method="post"' in page.text
    assert count(client) == 0  # opening the link counts nothing

    done = client.post(path_of(link))
    assert done.status_code == 200
    assert messages.CONFIRMED in done.text and "<strong data-count>1</strong> person has signed" in done.text
    assert count(client) == 1  # at once, though counts are kept for a minute

    again = client.post(path_of(link))
    assert again.status_code == 200 and messages.CONFIRMED_ALREADY in again.text
    assert count(client) == 1
    figures = stats(settings)
    assert (figures["total"], figures["pending"], figures["confirmation_rate"]) == (1, 1, 0.5)


def test_opening_the_link_any_number_of_times_confirms_nothing(
    settings: Settings, signer: Signer, client: TestClient, inbox: Inbox
) -> None:
    """Mail scanners and link previews fetch every link: GET and HEAD never count."""
    confirming_pledge(settings)
    signer.sign()
    link = inbox.wait_for(1)[0].link
    for _ in range(3):
        assert client.get(path_of(link)).status_code == 200
        assert client.head(path_of(link)).status_code == 200
    assert count(client) == 0 and pending_rows(settings) == 1


def test_the_confirmation_pages_are_this_sites_own_unframed_uncached_and_cookie_free(
    settings: Settings, signer: Signer, client: TestClient, inbox: Inbox
) -> None:
    confirming_pledge(settings)
    signer.sign()
    link = inbox.wait_for(1)[0].link
    for answer in (client.get(path_of(link)), client.post(path_of(link)), client.get("/confirm/nonsense")):
        headers = answer.headers
        assert headers["content-security-policy"].endswith("frame-ancestors 'none'")
        assert headers["x-frame-options"] == "DENY"
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"
        assert headers["x-robots-tag"] == "noindex, nofollow"
        assert "set-cookie" not in headers


def test_the_button_posts_nothing_but_the_address(
    settings: Settings, signer: Signer, client: TestClient, inbox: Inbox
) -> None:
    confirming_pledge(settings)
    signer.sign()
    page = client.get(path_of(inbox.wait_for(1)[0].link)).text
    form = re.search(r"<form[^>]*>(.*?)</form>", page, re.S)
    assert form is not None and "<input" not in form.group(1)


def test_an_answer_is_the_same_for_a_new_a_waiting_and_a_counted_address(
    settings: Settings, signer: Signer, client: TestClient, inbox: Inbox
) -> None:
    """No enumeration: "check your email", byte for byte, whatever the address had done."""
    confirming_pledge(settings)

    def answers(email: str) -> tuple[bytes, bytes]:
        html = signer.sign(email=email)
        as_json = signer.sign(json=True, email=email)
        assert html.status_code == as_json.status_code == 200
        return html.content, as_json.content

    new = answers("ana@example.org")
    waiting = answers("ana@example.org")
    other_new = answers("ben@example.org")
    client.post(path_of(inbox.wait_for(1)[0].link))
    assert count(client) == 1
    counted = answers("ana@example.org")
    assert new == waiting == other_new == counted
    assert new[1] == b'{"status":"pending"}'


def test_signing_again_resends_the_email_up_to_the_cap(
    mail_settings: Callable[..., Settings], make_client: Callable[..., TestClient], clock: FakeClock, inbox: Inbox
) -> None:
    settings = mail_settings(confirm_sends=3)
    confirming_pledge(settings)
    signer = Signer(make_client(settings), clock)
    for _ in range(5):
        signer.sign()
    sent = inbox.wait_for(3)
    assert inbox.settle() == 3
    assert len({got.link for got in sent}) == 1  # each carries the same link
    assert pending_rows(settings) == 1


def test_an_address_already_counted_gets_no_email(
    settings: Settings, signer: Signer, client: TestClient, inbox: Inbox
) -> None:
    confirming_pledge(settings)
    signer.sign()
    client.post(path_of(inbox.wait_for(1)[0].link))
    signer.sign()
    assert inbox.settle() == 1


def test_one_reminder_goes_to_whoever_has_not_confirmed(
    mail_settings: Callable[..., Settings], make_client: Callable[..., TestClient], clock: FakeClock, inbox: Inbox
) -> None:
    settings = mail_settings(confirm_reminder_hours=48.0)
    confirming_pledge(settings)
    client = make_client(settings)
    signer = Signer(client, clock)
    signer.sign(email="ana@example.org")
    signer.sign(email="ben@example.org")
    first = {got.rcpt_tos[0]: got for got in inbox.wait_for(2)}
    client.post(path_of(first["ben@example.org"].link))  # Ben confirmed: no reminder for him

    clock.advance(49 * HOUR)  # the worker's housekeeping runs on the app's clock
    reminder = inbox.wait_for(3)[2]
    assert reminder.rcpt_tos == ["ana@example.org"]
    assert reminder.message["Subject"].startswith("Reminder: please confirm your signature")
    assert reminder.link == first["ana@example.org"].link

    clock.advance(49 * HOUR)
    housekeep(settings, clock.now)
    assert inbox.settle(1.5) == 3  # at most one reminder

    # The reminder's link still works (the retention is 14 days).
    client.post(path_of(reminder.link))
    assert count(client) == 2


def test_no_reminder_when_they_are_switched_off(
    mail_settings: Callable[..., Settings], make_client: Callable[..., TestClient], clock: FakeClock, inbox: Inbox
) -> None:
    settings = mail_settings(confirm_reminder_hours=0.0)
    confirming_pledge(settings)
    Signer(make_client(settings), clock).sign()
    inbox.wait_for(1)
    clock.advance(100 * HOUR)
    housekeep(settings, clock.now)
    assert inbox.settle(1.5) == 1


def test_unconfirmed_signatures_are_deleted_after_the_retention_and_their_links_stop_working(
    mail_settings: Callable[..., Settings], make_client: Callable[..., TestClient], clock: FakeClock, inbox: Inbox
) -> None:
    settings = mail_settings(confirm_retention_hours=72.0, confirm_reminder_hours=0.0)
    confirming_pledge(settings)
    client = make_client(settings)
    Signer(client, clock).sign()
    link = inbox.wait_for(1)[0].link
    assert pending_rows(settings) == 1

    clock.advance(73 * HOUR)
    housekeep(settings, clock.now)
    assert pending_rows(settings) == 0
    assert outbox(settings) == []
    for answer in (client.get(path_of(link)), client.post(path_of(link))):
        assert answer.status_code == 410
        assert messages.CONFIRM_LINK_EXPIRED in answer.text.replace("&#39;", "'")
    assert count(client) == 0
    assert stats(settings)["total"] == 0


def test_a_link_past_the_retention_is_refused_even_before_the_purge(
    mail_settings: Callable[..., Settings], make_client: Callable[..., TestClient], clock: FakeClock, inbox: Inbox
) -> None:
    settings = mail_settings(confirm_retention_hours=72.0, confirm_reminder_hours=0.0)
    confirming_pledge(settings)
    client = make_client(settings)
    Signer(client, clock).sign()
    link = inbox.wait_for(1)[0].link
    clock.advance(73 * HOUR)
    assert client.post(path_of(link)).status_code == 410
    assert count(client) == 0


@pytest.mark.parametrize(
    "token",
    ["nonsense", "a.b", "x" * 5000, "%00", "..", "eyJzIjoxfQ.AAAA"],
)
def test_a_bad_link_is_a_sentence_never_an_error(settings: Settings, client: TestClient, token: str) -> None:
    confirming_pledge(settings)
    for answer in (client.get(f"/confirm/{token}"), client.post(f"/confirm/{token}")):
        assert answer.status_code in (404, 410), answer.status_code
        assert "Sorry" in answer.text


def test_other_tokens_and_forged_claims_do_not_confirm(
    settings: Settings, signer: Signer, client: TestClient, inbox: Inbox, clock: FakeClock
) -> None:
    confirming_pledge(settings)
    creds = make_partner(settings)
    signer.sign()
    link = inbox.wait_for(1)[0].link
    tokens = Tokens(settings.signing_keys())
    form = tokens.form_token(FormClaim(1, None, "", clock.now, {}))
    claim = tokens.read_confirm_token(path_of(link).rsplit("/", 1)[1])
    elsewhere = Tokens(["another-key-of-at-least-thirty-two-bytes!"]).confirm_token(claim)
    # The right id, signed by us, but for a signature made at another moment: not this one.
    other_time = tokens.confirm_token(ConfirmClaim(claim.pending_id, claim.pledge_id, claim.signed_at - 1))
    other_pledge = tokens.confirm_token(ConfirmClaim(claim.pending_id, claim.pledge_id + 1, claim.signed_at))
    for token in (form, creds.token, elsewhere, other_time, other_pledge):
        answer = client.post(f"/confirm/{token}")
        assert answer.status_code == 410, token
    assert count(client) == 0 and pending_rows(settings) == 1
    assert client.post(path_of(link)).status_code == 200
    assert count(client) == 1


def test_counts_counter_and_stats_show_confirmed_signatures_and_pending_per_partner(
    settings: Settings, make_client: Callable[..., TestClient], clock: FakeClock, inbox: Inbox
) -> None:
    confirming_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    partner = Signer(client, clock, token=creds.token, parent=PARTNER_ORIGIN)
    direct = Signer(client, clock)
    for n in range(3):
        partner.sign(email=f"p{n}@example.org")
    direct.sign(email="d0@example.org")
    emails = {got.rcpt_tos[0]: got for got in inbox.wait_for(4)}
    client.post(path_of(emails["p0@example.org"].link))

    assert count(client) == 1
    as_partner = client.get(f"/api/pledges/{SLUG}/count", params={"token": creds.token}).json()
    assert as_partner == {"total": 1, "partner": 1}
    figures = stats(settings)
    assert (figures["total"], figures["direct"], figures["pending"], figures["direct_pending"]) == (1, 0, 3, 1)
    assert figures["confirmation_rate"] == 0.25
    assert figures["direct_confirmation_rate"] == 0.0
    [row] = figures["partners"]
    assert (row["count"], row["pending"], row["confirmation_rate"]) == (1, 2, round(1 / 3, 4))
    # The partner's badge counts confirmed signatures only.
    badge = client.get(f"/embed/{SLUG}/counter", params={"token": creds.token})
    assert re.search(r"<strong data-count>1</strong>", badge.text)


def test_an_email_for_a_signature_confirmed_or_erased_since_is_not_sent(settings: Settings, inbox: Inbox) -> None:
    """Straight through the store and Confirmation.deliver (no app, no worker)."""
    pledge = confirming_pledge(settings)

    async def go(store: Store) -> tuple[type[BaseException], type[BaseException]]:
        confirmation = Confirmation(store, settings, Tokens(settings.signing_keys()))
        caught: list[type[BaseException]] = []
        for email in ("ana@example.org", "ben@example.org"):
            await store.write_signatures(
                [NewSignature(pledge.id, None, email, "A Signer", created_at=iso_utc(1_790_000_000), pending=True)]
            )
        ana, ben = sorted(await store.outbox_messages(), key=lambda m: m.ref_id)
        await store.confirm_pending(ana.ref_id, iso_utc(1_790_000_100))
        await store.erase_signatures("ben@example.org")
        for message in (ana, ben):
            try:
                await confirmation.deliver(message)
            except (Dropped, DeliveryFailed) as exc:
                caught.append(type(exc))
        await confirmation.close()
        return caught[0], caught[1]

    assert on_db(settings, go) == (Dropped, Dropped)
    assert inbox.settle(0.2) == 0


def housekeep(settings: Settings, now: float) -> None:
    """Confirmation.housekeep at `now`, as the worker runs it every minute."""

    async def go(store: Store) -> None:
        await Confirmation(store, settings, Tokens(settings.signing_keys())).housekeep(now)

    on_db(settings, go)


def test_smtp_down_the_email_is_retried_and_delivered_when_it_is_back(
    mail_settings: Callable[..., Settings],
    make_client: Callable[..., TestClient],
    clock: FakeClock,
    inbox: Inbox,
    smtp_server: SmtpServer,
) -> None:
    settings = mail_settings(outbox_first_retry_seconds=1.0)
    confirming_pledge(settings)
    client = make_client(settings)
    smtp_server.stop()
    assert Signer(client, clock).sign(json=True).json() == {"status": "pending"}  # signing never waits for mail
    failed = wait_until(lambda: [m for m in outbox(settings) if m.attempts >= 1])
    assert failed[0].last_error.startswith("could not reach the mail server")
    assert "ana" not in failed[0].last_error

    smtp_server.start()
    clock.advance(10)  # past the retry's time on the app's clock
    got = inbox.wait_for(1)[0]
    assert got.rcpt_tos == ["ana@example.org"]
    wait_until(lambda: outbox(settings) == [])
    client.post(path_of(got.link))
    assert count(client) == 1


def wait_until(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """Poll `check` until it gives something true, with a deadline."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.05)
    return found
