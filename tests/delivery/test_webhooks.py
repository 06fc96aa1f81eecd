"""Partner webhooks end to end, in the app: a supporter signs through a partner's widget, the outbox
worker POSTs the signature to the partner's receiver on loopback, and the partner verifies it with the
published `standardwebhooks` library. Consent, retries, the bound, retry by hand, discard, and the
guard against requests into the campaign's own network."""

from __future__ import annotations

import functools
import socket
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from tests.conftest import PARTNER_ORIGIN, Signer, make_partner, make_pledge, on_db
from tests.delivery.conftest import Receiver, WallClock, outbox, partner_with_webhook, verified, wait_until
from widget_server import messages
from widget_server.delivery.errors import Dropped
from widget_server.errors import Invalid
from widget_server.services import outbox as outbox_service
from widget_server.services import pledges, webhooks
from widget_server.services.webhooks import Webhooks
from widget_server.settings import Settings
from widget_server.storage.store import OutboxMessage

pytestmark = pytest.mark.both_engines


def signer(make_client, settings: Settings, clock: WallClock, token: str, **query: str) -> Signer:
    return Signer(make_client(settings), clock, token=token, parent=PARTNER_ORIGIN, query=query)


def signed(answer) -> None:
    assert answer.status_code == 200 and "Thank you" in answer.text, answer.text


def test_a_consenting_signature_reaches_the_partner_signed_and_shaped_as_osdi(
    make_client, settings: Settings, clock: WallClock, receiver: Receiver
) -> None:
    partner_id, token, secret = partner_with_webhook(settings, receiver.url())
    sign = signer(make_client, settings, clock, token, source="newsletter", utm_campaign="spring")
    signed(
        sign.sign(
            name="Ana María Teacher",
            email="Ana@Example.org",
            occupation="Nurse",
            organisation="St Mary's",
            opt_in_partner="yes",
            opt_in_updates="yes",
        )
    )
    [request] = receiver.wait_for(1)
    body = verified(secret, request)
    assert request.headers["webhook-id"].startswith("msg_")
    assert body["type"] == "signature.created"
    data = body["data"]
    assert data["person"] == {
        "given_name": "Ana María",
        "family_name": "Teacher",
        "name": "Ana María Teacher",
        "email_addresses": [{"address": "ana@example.org", "primary": True}],
        "work_title": "Nurse",
        "employer": "St Mary's",
    }
    assert data["referrer_data"] == {
        "source": "newsletter",
        "website": "riverside.example",
        "url": PARTNER_ORIGIN,
        "utm": {"utm_campaign": "spring"},
    }
    assert data["petition"] == {
        "identifiers": ["pledge_widgets:pledge-data-firewall"],
        "title": "Keep our data safe",
        "browser_url": "http://testserver/pledge/data-firewall",
    }
    assert data["partner"] == {"name": "Riverside"}
    assert data["consent"] == {"partner_contact": True, "campaign_updates": True}
    assert data["identifiers"][0].startswith("pledge_widgets:signature-")
    assert data["created_date"].endswith("Z")
    # Never what the service keeps for itself: the client mark, a network address.
    assert "client_mark" not in request.body.decode() and "127.0.0.1" not in request.body.decode()
    # Delivered: nothing left in the outbox.
    wait_until(lambda: outbox(settings) == [], what="the outbox emptying")


def test_the_signature_fails_to_verify_under_another_secret_or_when_altered(
    make_client, settings: Settings, clock: WallClock, receiver: Receiver
) -> None:
    _, token, secret = partner_with_webhook(settings, receiver.url())
    signed(signer(make_client, settings, clock, token).sign(opt_in_partner="yes"))
    [request] = receiver.wait_for(1)
    with pytest.raises(WebhookVerificationError):
        Webhook(webhooks.new_secret()).verify(request.body, request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body.replace(b"Ana", b"Eve"), request.headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body, {**request.headers, "webhook-id": "msg_999999"})


def test_without_consent_nothing_reaches_the_partner(
    make_client, settings: Settings, clock: WallClock, receiver: Receiver
) -> None:
    _, token, secret = partner_with_webhook(settings, receiver.url())
    sign = signer(make_client, settings, clock, token)
    signed(sign.sign(email="no@example.org", opt_in_updates="yes"))  # the campaign, not the partner
    signed(sign.sign(email="yes@example.org", opt_in_partner="yes"))
    [request] = receiver.wait_for(1)
    assert verified(secret, request)["data"]["person"]["email_addresses"][0]["address"] == "yes@example.org"
    wait_until(lambda: outbox(settings) == [], what="the outbox emptying")
    assert len(receiver.all()) == 1


def test_a_partner_without_a_webhook_gets_nothing_and_another_partner_only_its_own(
    make_client, settings: Settings, clock: WallClock, receiver: Receiver
) -> None:
    _, token, secret = partner_with_webhook(settings, receiver.url())
    other = make_partner(settings, name="Hillside")
    signed(signer(make_client, settings, clock, other.token).sign(email="hill@example.org", opt_in_partner="yes"))
    signed(signer(make_client, settings, clock, token).sign(email="river@example.org", opt_in_partner="yes"))
    [request] = receiver.wait_for(1)
    assert verified(secret, request)["data"]["person"]["email_addresses"][0]["address"] == "river@example.org"
    assert len(receiver.all()) == 1


def test_receiver_down_retries_with_backoff_then_delivers_once_it_is_back(
    make_client, settings: Settings, clock: WallClock, receiver: Receiver
) -> None:
    _, token, secret = partner_with_webhook(settings, receiver.url())
    receiver.answer(503)
    signed(signer(make_client, settings, clock, token).sign(opt_in_partner="yes"))
    attempts = receiver.wait_for(4, answered=False)
    [waiting] = outbox(settings)
    assert waiting.attempts >= 3 and not waiting.dead
    assert waiting.last_error == messages.DELIVERY_STATUS.format(status=503)
    receiver.answer(200)
    [delivered] = receiver.wait_for(1)
    ids = {r.webhook_id for r in receiver.all()}
    assert ids == {delivered.webhook_id}  # every attempt carries the same id
    assert verified(secret, delivered)
    # Each wait at least its doubling share of 0.2 s, 0.4 s, 0.8 s (× 0.8 to 1.2, rounded up to a whole
    # second); test_worker.py checks the doubling itself on a clock it controls.
    times = [r.at for r in attempts[:4]]
    gaps = [later - earlier for earlier, later in zip(times, times[1:], strict=False)]
    assert all(gap >= 0.2 * 2**n * 0.8 - 0.05 for n, gap in enumerate(gaps)), gaps
    wait_until(lambda: outbox(settings) == [], what="the outbox emptying")


def test_dead_after_the_bound_then_retried_by_hand_and_delivered(
    make_client, make_settings, clock: WallClock, receiver: Receiver
) -> None:
    settings = make_settings(outbox_attempts=2, outbox_first_retry_seconds=0.01)
    _, token, secret = partner_with_webhook(settings, receiver.url())
    receiver.down()
    signed(signer(make_client, settings, clock, token).sign(opt_in_partner="yes"))
    [dead] = wait_until(lambda: outbox(settings, dead_only=True), what="the message dying")
    assert dead.attempts == 2
    assert dead.last_error == messages.DELIVERY_CONNECT.format(problem="Connection refused")
    receiver.up()
    assert on_db(settings, lambda store: outbox_service.retry(store, "cli:test", dead.id)) == 1
    # The worker polls: no need to wake it from another process.
    [request] = receiver.wait_for(1)
    assert request.webhook_id == f"msg_{dead.id}"
    assert verified(secret, request)
    wait_until(lambda: outbox(settings) == [], what="the outbox emptying")


def test_with_confirmation_on_the_webhook_waits_for_the_confirmation(
    make_client, make_settings, clock: WallClock, receiver: Receiver
) -> None:
    settings = make_settings(smtp_url="smtp://127.0.0.1:9", mail_from="pledge@campaign.example")
    on_db(
        settings,
        functools.partial(
            pledges.add_pledge,
            slug="data-firewall",
            title="Keep our data safe",
            statement_html="<p>We ask.</p>",
            confirm_email=True,
            settings=settings,
        ),
    )
    _, token, secret = partner_with_webhook(settings, receiver.url())
    client = make_client(settings)
    signed(Signer(client, clock, token=token, parent=PARTNER_ORIGIN).sign(opt_in_partner="yes"))
    # Pending: only its confirmation email is queued (the test's mail server is away, so it stays).
    [email] = wait_until(lambda: [m for m in outbox(settings) if m.kind == "confirm"], what="the email queued")
    assert [m.kind for m in outbox(settings)] == ["confirm"]
    pending = on_db(settings, lambda store: store.pending_signature(email.ref_id))
    assert pending is not None
    link = client.app.state.services.confirmation.link(pending)
    assert client.post(link.removeprefix("http://testserver")).status_code == 200
    [request] = receiver.wait_for(1)
    body = verified(secret, request)
    assert body["data"]["person"]["email_addresses"] == [{"address": "ana@example.org", "primary": True}]
    assert body["data"]["consent"]["partner_contact"] is True


def test_a_discarded_message_is_never_sent(make_client, make_settings, clock: WallClock, receiver: Receiver) -> None:
    settings = make_settings(outbox_attempts=1)
    _, token, _ = partner_with_webhook(settings, receiver.url())
    receiver.answer(500)
    signed(signer(make_client, settings, clock, token).sign(opt_in_partner="yes"))
    [dead] = wait_until(lambda: outbox(settings, dead_only=True), what="the message dying")
    on_db(settings, lambda store: outbox_service.discard(store, "cli:test", dead.id))
    assert outbox(settings) == []
    receiver.answer(200)
    with pytest.raises(Invalid):
        on_db(settings, lambda store: outbox_service.retry(store, "cli:test", None))
    assert receiver.answered() == []


def test_a_webhook_switched_off_drops_what_was_queued_for_it(
    make_client, make_settings, clock: WallClock, receiver: Receiver
) -> None:
    settings = make_settings(outbox_attempts=1)
    _, token, _ = partner_with_webhook(settings, receiver.url())
    receiver.answer(500)
    signed(signer(make_client, settings, clock, token).sign(opt_in_partner="yes"))
    [dead] = wait_until(lambda: outbox(settings, dead_only=True), what="the message dying")
    on_db(settings, lambda store: webhooks.remove_webhook(store, "data-firewall", "Riverside"))
    receiver.answer(200)
    on_db(settings, lambda store: outbox_service.retry(store, "cli:test", dead.id))
    wait_until(lambda: outbox(settings) == [], what="the message being dropped")
    assert receiver.answered() == []


def test_an_erased_signature_takes_its_queued_webhook_with_it(
    make_client, make_settings, clock: WallClock, receiver: Receiver
) -> None:
    settings = make_settings(outbox_attempts=1)
    _, token, _ = partner_with_webhook(settings, receiver.url())
    receiver.answer(500)
    signed(signer(make_client, settings, clock, token).sign(opt_in_partner="yes"))
    wait_until(lambda: outbox(settings, dead_only=True), what="the message dying")
    from widget_server.services import people

    on_db(settings, lambda store: people.erase_person(store, "ana@example.org"))
    assert outbox(settings) == []
    assert receiver.answered() == []


def test_a_message_whose_signature_is_gone_is_dropped_not_sent(settings: Settings, receiver: Receiver) -> None:
    partner_id, _, _ = partner_with_webhook(settings, receiver.url())
    gone = OutboxMessage(99, "webhook", 12345, partner_id, "2026-11-30T10:00:00Z", 0, "2026-11-30T10:00:00Z", "", False)

    async def deliver(store) -> None:
        await Webhooks(store, settings).deliver(gone)

    with pytest.raises(Dropped) as caught:
        on_db(settings, deliver)
    assert caught.value.reason == messages.DROPPED_SIGNATURE_GONE
    assert receiver.all() == []


def test_http_and_local_targets_are_refused_unless_allowed(make_settings, receiver: Receiver) -> None:
    strict = make_settings(webhook_allow_local="off")
    make_pledge(strict)
    make_partner(strict)
    for url, problem in (
        (receiver.url(), messages.WEBHOOK_URL_NOT_HTTPS),
        (f"https://127.0.0.1:{receiver.port}/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://169.254.169.254/latest/meta-data/", messages.WEBHOOK_URL_LOCAL),
        ("https://user:pw@crm.example.org/hook", messages.WEBHOOK_URL_CREDENTIALS),
    ):
        with pytest.raises(Invalid) as caught:
            on_db(
                strict,
                functools.partial(
                    webhooks.set_webhook, settings=strict, slug="data-firewall", name="Riverside", url=url
                ),
            )
        assert caught.value.message == problem
    assert on_db(strict, lambda store: store.partner_webhook(1)) is None


def test_a_name_resolving_to_loopback_is_refused_at_delivery_time(
    make_client, make_settings, clock: WallClock, receiver: Receiver
) -> None:
    """The name passed when it was set (say its DNS pointed elsewhere then); at delivery it resolves to
    127.0.0.1, and the worker refuses to connect: the message fails with the reason and never arrives."""
    settings = make_settings(webhook_allow_local="off", outbox_attempts=1)
    make_pledge(settings)
    creds = make_partner(settings)
    # Set past the URL rules, as if "localhost" had been a public name when it was checked.
    url = f"https://localhost:{receiver.port}/hook"
    on_db(settings, lambda store: store.set_partner_webhook(creds.partner.id, url, webhooks.new_secret()))
    signed(signer(make_client, settings, clock, creds.token).sign(opt_in_partner="yes"))
    [dead] = wait_until(lambda: outbox(settings, dead_only=True), what="the message dying")
    assert dead.last_error in {
        messages.DELIVERY_URL_REFUSED.format(problem=messages.WEBHOOK_URL_LOCAL),
        messages.DELIVERY_ADDRESS_REFUSED.format(address="127.0.0.1"),
    }
    assert receiver.all() == []


def test_a_public_looking_name_that_resolves_to_loopback_is_refused_at_delivery(
    make_client, make_settings, clock: WallClock, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DNS rebinding: the URL names a host that passes every rule when set; at delivery its DNS answers
    127.0.0.1 (the campaign's own machine), and the worker refuses to connect."""
    settings = make_settings(webhook_allow_local="off", outbox_attempts=1)
    make_pledge(settings)
    creds = make_partner(settings)
    url = f"https://crm.partner.example:{receiver.port}/hook"
    on_db(
        settings,
        functools.partial(webhooks.set_webhook, settings=settings, slug="data-firewall", name="Riverside", url=url),
    )
    real = socket.getaddrinfo

    def rebound(host: Any, *args: Any, **kwargs: Any) -> Any:
        return real("127.0.0.1" if host == "crm.partner.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", rebound)
    signed(signer(make_client, settings, clock, creds.token).sign(opt_in_partner="yes"))
    [dead] = wait_until(lambda: outbox(settings, dead_only=True), what="the message dying")
    assert dead.last_error == messages.DELIVERY_ADDRESS_REFUSED.format(address="127.0.0.1")
    assert receiver.all() == []


def test_many_signatures_are_each_delivered_once(
    make_client, settings: Settings, clock: WallClock, receiver: Receiver
) -> None:
    _, token, secret = partner_with_webhook(settings, receiver.url())
    sign = signer(make_client, settings, clock, token)
    for i in range(25):
        signed(sign.sign(email=f"signer{i}@example.org", opt_in_partner="yes"))
    found = receiver.wait_for(25)
    wait_until(lambda: outbox(settings) == [], what="the outbox emptying")
    assert len(receiver.all()) == 25
    assert len({r.webhook_id for r in found}) == 25
    emails = {verified(secret, r)["data"]["person"]["email_addresses"][0]["address"] for r in found}
    assert emails == {f"signer{i}@example.org" for i in range(25)}


def test_set_webhook_makes_a_new_secret_each_time(settings: Settings) -> None:
    make_pledge(settings)
    make_partner(settings)
    first = on_db(
        settings, lambda s: webhooks.set_webhook(s, settings, "data-firewall", "Riverside", "https://a.example/h")
    )
    second = on_db(
        settings, lambda s: webhooks.set_webhook(s, settings, "data-firewall", "Riverside", "https://a.example/h")
    )
    assert first.secret != second.secret
    assert first.secret.startswith("whsec_") and len(first.secret) == len("whsec_") + 44
    assert on_db(settings, lambda s: s.partner_webhook(1)) == ("https://a.example/h", second.secret)
    Webhook(second.secret)  # the library reads it


def test_signature_header_matches_the_specifications_example() -> None:
    # The Standard Webhooks specification's own example (secret, id, timestamp, body → signature).
    secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert webhooks.signature_header(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
