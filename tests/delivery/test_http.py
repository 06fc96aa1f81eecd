"""The webhook POST against a real receiver on loopback: what counts as delivered, what is refused before
any connection (the resolved address is checked, and is the one dialled), TLS checked against the name."""

from __future__ import annotations

import asyncio
import json

import pytest

from tests.delivery.conftest import CertificateAuthority, Receiver
from widget_server import messages
from widget_server.delivery.errors import DeliveryFailed
from widget_server.delivery.http import post_json

BODY = json.dumps({"hello": "partner"}).encode()
HEADERS = (("webhook-id", "msg_1"), ("webhook-timestamp", "1790000000"), ("webhook-signature", "v1,x"))


def post(url: str, local_allowed: bool = True, **options: object) -> int:
    return asyncio.run(post_json(url, BODY, HEADERS, local_allowed=local_allowed, **options))  # type: ignore[arg-type]


def failure(url: str, local_allowed: bool = True, **options: object) -> str:
    with pytest.raises(DeliveryFailed) as caught:
        post(url, local_allowed, **options)
    return caught.value.reason


def test_a_2xx_answer_is_a_delivery_of_the_body_and_headers(receiver: Receiver) -> None:
    receiver.answer(202)
    assert post(receiver.url("/hooks/pledge?list=7")) == 202
    [request] = receiver.all()
    assert (request.method, request.path, request.body) == ("POST", "/hooks/pledge?list=7", BODY)
    assert request.headers["content-type"] == "application/json"
    assert request.headers["content-length"] == str(len(BODY))
    assert request.headers["host"] == f"127.0.0.1:{receiver.port}"
    assert request.headers["webhook-id"] == "msg_1"
    # Nothing of this server's own in the request but what the partner needs.
    assert "cookie" not in request.headers and "authorization" not in request.headers


@pytest.mark.parametrize("status", [400, 404, 410, 429, 500, 503])
def test_any_other_answer_is_a_failure_naming_only_the_status(receiver: Receiver, status: int) -> None:
    receiver.answer(status)
    assert failure(receiver.url()) == messages.DELIVERY_STATUS.format(status=status)


def test_a_redirect_is_never_followed(receiver: Receiver) -> None:
    receiver.answer(307)
    assert failure(receiver.url()) == messages.DELIVERY_REDIRECT.format(status=307)
    assert len(receiver.all()) == 1


def test_a_receiver_that_is_down_or_hangs_is_a_failure_within_the_timeout(receiver: Receiver) -> None:
    url = receiver.url()
    receiver.down()
    assert failure(url) == messages.DELIVERY_CONNECT.format(problem="Connection refused")
    receiver.up()
    receiver.hang()
    assert failure(url, total_timeout=0.5) == messages.DELIVERY_TIMEOUT.format(seconds=0.5)
    assert len(receiver.all()) == 1  # it had the request; no answer came


def test_loopback_is_refused_before_any_connection_when_local_targets_are_not_allowed(receiver: Receiver) -> None:
    # The URL rules first: http:// and a loopback address are both refused as the URL is read.
    assert failure(receiver.url(), local_allowed=False) == messages.DELIVERY_URL_REFUSED.format(
        problem=messages.WEBHOOK_URL_NOT_HTTPS
    )
    assert failure(f"https://127.0.0.1:{receiver.port}/", local_allowed=False) == messages.DELIVERY_URL_REFUSED.format(
        problem=messages.WEBHOOK_URL_LOCAL
    )
    assert receiver.all() == []


@pytest.mark.parametrize(
    "answers",
    [
        ["127.0.0.1"],
        ["10.1.2.3"],
        ["169.254.169.254"],
        ["::1"],
        ["::ffff:127.0.0.1"],
        ["fc00::1"],
        ["0.0.0.0"],
        ["100.64.0.1"],
        # One bad address among good ones refuses the name: a resolver may hand either out next time.
        ["93.184.216.34", "127.0.0.1"],
    ],
)
def test_a_name_resolving_to_a_local_address_is_refused_at_delivery(answers: list[str]) -> None:
    dialled: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        dialled.append(host)
        return answers

    reason = failure("https://hooks.partner.example/x", local_allowed=False, resolver=resolver)
    refused = next(a for a in answers if a != "93.184.216.34")
    import ipaddress

    assert reason == messages.DELIVERY_ADDRESS_REFUSED.format(address=ipaddress.ip_address(refused))
    assert dialled == ["hooks.partner.example"]


def test_the_connection_goes_to_the_checked_address_not_a_second_lookup(receiver: Receiver) -> None:
    """DNS rebinding: the name is looked up once, and that answer is dialled (a second lookup could be
    made to answer differently)."""
    lookups: list[str] = []

    async def resolver(host: str, port: int) -> list[str]:
        lookups.append(host)
        return ["127.0.0.1"] if len(lookups) == 1 else ["10.9.9.9"]

    assert post(f"http://partner.invalid:{receiver.port}/x", resolver=resolver) == 200
    assert lookups == ["partner.invalid"]
    assert receiver.all()[0].headers["host"] == f"partner.invalid:{receiver.port}"


def test_an_unknown_name_is_a_failure() -> None:
    reason = failure("http://no-such-host.invalid/x")
    assert reason.startswith(messages.DELIVERY_NO_HOST.split("(")[0])


def test_tls_is_checked_against_the_host_name_whatever_address_is_dialled(
    tls_receiver: Receiver, test_ca: CertificateAuthority
) -> None:
    async def to_loopback(host: str, port: int) -> list[str]:
        return ["127.0.0.1"]

    tls = test_ca.client()
    # The certificate names "localhost": dialled at 127.0.0.1, it is checked against the URL's name.
    assert post(tls_receiver.url(host="localhost"), tls=tls, resolver=to_loopback) == 200
    assert tls_receiver.all()[0].headers["host"] == f"localhost:{tls_receiver.port}"
    # Another name on the same address: the certificate does not match, nothing is sent.
    reason = failure(tls_receiver.url(host="other.localhost"), tls=tls, resolver=to_loopback)
    assert reason.startswith(messages.DELIVERY_TLS.split("(")[0]) and "mismatch" in reason
    assert "other.localhost" not in reason  # the outbox's last error and the log name no receiver
    # A certificate from an authority nobody trusts: refused by the default context.
    reason = failure(tls_receiver.url(host="localhost"), resolver=to_loopback)
    assert reason.startswith(messages.DELIVERY_TLS.split("(")[0])
    assert len(tls_receiver.all()) == 1
