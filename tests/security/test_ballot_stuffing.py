"""SECURITY.md, threat 3: ballot stuffing and bots. Forms sent too soon or too late come back with
the input kept, a honeypot fools bots, and rate limits per client (keyed by /64 for IPv6, through
trusted proxies only) and per partner bound what one sender can add."""

from __future__ import annotations

from dataclasses import replace

import httpx2
import pytest

from tests.conftest import PARTNER_ORIGIN, Signer, fields_of, make_partner, make_pledge, rows, stats
from tests.security.conftest import PROXY, frame_ancestors, unescaped
from widget_server.errors import ConfigError
from widget_server.messages import FORM_EXPIRED, PARTNER_BUSY, SLOW_DOWN, TOO_QUICK
from widget_server.security.ratelimit import parse_rate
from widget_server.settings import Settings
from widget_server.web.app import create_app

# ---------------------------------------------------------------- expiry and fill time


def test_an_expired_form_is_re_rendered_with_input_kept_and_nothing_stored(settings, signer: Signer, clock) -> None:
    form = signer.form()
    clock.advance(settings.form_token_hours * 3600 + 1)
    answer = signer.post(form, occupation="Nurse", organisation="Hill Clinic")
    assert answer.status_code == 200
    assert unescaped(FORM_EXPIRED) in unescaped(answer.text)
    kept = fields_of(answer.text)
    assert (kept["name"]["value"], kept["email"]["value"]) == ("Ana Teacher", "ana@example.org")
    assert (kept["occupation"]["value"], kept["organisation"]["value"]) == ("Nurse", "Hill Clinic")
    assert rows(settings) == []
    # The re-rendered form carries a fresh token: pressing Sign again (after a moment) works.
    clock.advance(5)
    assert signer.post(str(kept["form_token"]["value"])).status_code == 200
    assert rows(settings)[0]["partner_id"] is not None


def test_the_form_lifetime_is_configurable(make_settings, make_client, clock) -> None:
    settings = make_settings(form_token_hours=0.5)
    make_pledge(settings)
    signer = Signer(make_client(settings), clock)
    fresh = signer.form()
    clock.advance(29 * 60)
    assert signer.post(fresh, email="in-time@example.org", json=True).json()["status"] == "signed"
    clock.advance(2 * 60)
    late = signer.post(fresh, email="late@example.org", json=True)
    assert late.json()["status"] == "invalid"
    assert late.json()["message"] == FORM_EXPIRED
    assert [r["email"] for r in rows(settings)] == ["in-time@example.org"]


def test_a_form_sent_too_soon_is_re_rendered_with_a_message_and_input_kept(settings, signer: Signer, clock) -> None:
    """Never a silent drop: a fast human is asked to press Sign again, and loses nothing."""
    form = signer.form()
    clock.advance(settings.min_fill_seconds - 0.5)
    answer = signer.post(form, occupation="Teacher", opt_in_updates="yes")
    assert answer.status_code == 200
    assert unescaped(TOO_QUICK) in unescaped(answer.text)
    kept = fields_of(answer.text)
    assert kept["name"]["value"] == "Ana Teacher"
    assert kept["occupation"]["value"] == "Teacher"
    assert "checked" in kept["opt_in_updates"]
    assert rows(settings) == []
    # The fresh token is timed from this answer: pressing again at once is still too soon.
    again = str(kept["form_token"]["value"])
    assert TOO_QUICK in unescaped(signer.post(again).text)
    clock.advance(settings.min_fill_seconds)
    assert "You have signed" in signer.post(again).text
    assert len(rows(settings)) == 1


def test_a_form_sent_too_soon_as_json_gets_the_message_and_a_fresh_token(settings, signer: Signer, clock) -> None:
    form = signer.form()
    clock.advance(1)
    answer = signer.post(form, json=True)
    assert answer.status_code == 200
    body = answer.json()
    assert (body["status"], body["message"], body["errors"]) == ("invalid", TOO_QUICK, {})
    assert body["form_token"] != form
    assert rows(settings) == []
    clock.advance(3)
    assert signer.post(body["form_token"], json=True).json()["status"] == "signed"


# ---------------------------------------------------------------- honeypot


def test_honeypot_stores_nothing_and_answers_like_a_person(settings, signer: Signer, clock) -> None:
    form = signer.form()
    clock.advance(5)
    person = signer.post(form, email="person@example.org", name="Sam")
    person_again = signer.post(form, email="person@example.org", name="Sam")
    bot = signer.post(form, email="bot@example.org", name="Sam", website="https://spam.example")
    # The bot's thank-you counts it, as a newcomer's counts them: it cannot see it was caught.
    newcomer = signer.post(form, email="newcomer@example.org", name="Sam")
    assert person.status_code == person_again.status_code == bot.status_code == 200
    assert bot.text == newcomer.text != person_again.text
    bot_json = signer.post(form, json=True, email="bot2@example.org", website="x")
    newcomer_json = signer.post(form, json=True, email="newcomer2@example.org")
    assert bot_json.json() == newcomer_json.json() == {"status": "signed", "total": 3}
    assert [r["email"] for r in rows(settings)] == [f"{n}@example.org" for n in ("person", "newcomer", "newcomer2")]


# ---------------------------------------------------------------- rate limits


def test_client_rate_limit_answers_429_with_retry_after_and_recovers(make_settings, make_client, clock) -> None:
    settings = make_settings(rate_limit="3/minute")
    make_pledge(settings)
    signer = Signer(make_client(settings), clock)
    form = signer.form()
    clock.advance(5)
    for i in range(3):
        assert signer.post(form, email=f"ok{i}@example.org").status_code == 200
    refused = signer.post(form, email="fourth@example.org")
    assert refused.status_code == 429
    assert unescaped(SLOW_DOWN) in unescaped(refused.text)
    wait = int(refused.headers["retry-after"])
    assert 1 <= wait <= 60
    as_json = signer.post(form, json=True, email="fourth@example.org")
    assert as_json.status_code == 429
    assert as_json.json() == {"error": {"status": 429, "message": SLOW_DOWN}}
    assert len(rows(settings)) == 3
    clock.advance(int(as_json.headers["retry-after"]))
    assert signer.post(form, email="fourth@example.org").status_code == 200
    assert len(rows(settings)) == 4


def test_partner_rate_limit_covers_all_its_clients(make_settings, client_at, clock) -> None:
    """Many clients (a botnet, or a newsletter surge) share one partner's limit."""
    settings = make_settings(partner_rate_limit="3/minute", trusted_proxies=(PROXY,))
    make_pledge(settings)
    riverside = make_partner(settings).token
    other = make_partner(settings, name="Other", origins=("https://other.example",)).token
    signer = Signer(client_at(settings, PROXY), clock)
    form, other_form, direct_form = (
        replace(signer, token=riverside).form(),
        replace(signer, token=other).form(),
        signer.form(),
    )
    clock.advance(5)

    def from_client(i: int, token: str, email: str) -> httpx2.Response:
        return signer.post(token, email=email, headers={"X-Forwarded-For": f"203.0.113.{i}"})

    answers = [from_client(i, form, f"r{i}@example.org") for i in range(5)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429, 429]
    busy = answers[3]
    assert unescaped(PARTNER_BUSY) in unescaped(busy.text)
    assert 1 <= int(busy.headers["retry-after"]) <= 60
    assert frame_ancestors(busy) == PARTNER_ORIGIN
    # Another partner and direct signatures have their own budgets.
    assert from_client(50, other_form, "o@example.org").status_code == 200
    assert from_client(51, direct_form, "d@example.org").status_code == 200
    assert {p["name"]: p["count"] for p in stats(settings)["partners"]} == {"Riverside": 3, "Other": 1}


def test_shipped_default_stops_one_client_posting_120_signatures_in_a_minute(settings, make_client, clock) -> None:
    assert settings.rate_limit == Settings().rate_limit  # the shipped default, not a test override
    make_pledge(settings)
    signer = Signer(make_client(settings), clock)
    form = signer.form()
    clock.advance(5)
    statuses = []
    for i in range(120):
        statuses.append(signer.post(form, json=True, email=f"bot{i}@example.org").status_code)
        clock.advance(0.5)  # 120 evenly over one minute
    accepted = statuses.count(200)
    assert accepted + statuses.count(429) == 120
    assert accepted <= 61, accepted  # at most the burst plus one minute's refill
    assert len(rows(settings)) == accepted
    assert stats(settings)["total"] == accepted


def test_rate_limit_off_lets_a_load_test_through(make_settings, make_client, clock) -> None:
    settings = make_settings(rate_limit="off", partner_rate_limit="off")
    make_pledge(settings)
    token = make_partner(settings).token
    signer = Signer(make_client(settings), clock, token=token)
    form = signer.form()
    clock.advance(5)
    statuses = {signer.post(form, json=True, email=f"load{i}@example.org").status_code for i in range(150)}
    assert statuses == {200}
    assert stats(settings)["partners"][0]["count"] == 150


@pytest.mark.parametrize("text", ["lots", "30", "0/minute", "30/fortnight", ""])
def test_a_bad_rate_limit_setting_is_refused_at_start(make_settings, text: str) -> None:
    with pytest.raises(ConfigError, match="looks like '30/minute' or 'off'"):
        create_app(make_settings(rate_limit=text or " "))
    assert parse_rate("OFF") is None
    assert parse_rate("30/minute") == (30, 60.0)


# ---------------------------------------------------------------- clients behind proxies


def test_forwarded_for_is_ignored_unless_it_comes_from_a_configured_proxy(make_settings, client_at, clock) -> None:
    """Without a proxy list, a client cannot dodge its limit by inventing X-Forwarded-For."""
    settings = make_settings(rate_limit="2/minute")
    make_pledge(settings)
    signer = Signer(client_at(settings, "198.51.100.9"), clock)
    form = signer.form()
    clock.advance(5)
    answers = [
        signer.post(form, email=f"s{i}@example.org", headers={"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(4)
    ]
    assert [a.status_code for a in answers] == [200, 200, 429, 429]
    assert len(rows(settings)) == 2


def test_forwarded_for_from_a_trusted_proxy_names_the_client(make_settings, client_at, clock) -> None:
    settings = make_settings(rate_limit="1/minute", trusted_proxies=("10.0.0.0/8",))
    make_pledge(settings)
    signer = Signer(client_at(settings, PROXY), clock)
    form = signer.form()
    clock.advance(5)
    first = signer.post(form, email="a@example.org", headers={"X-Forwarded-For": "203.0.113.1"})
    other = signer.post(form, email="b@example.org", headers={"X-Forwarded-For": "203.0.113.2"})
    again = signer.post(form, email="c@example.org", headers={"X-Forwarded-For": "203.0.113.1"})
    # The client wrote the left part itself; the hop our proxy added (nearest untrusted) counts.
    forged = signer.post(form, email="d@example.org", headers={"X-Forwarded-For": "192.0.2.77, 203.0.113.1, 10.1.2.3"})
    assert [a.status_code for a in (first, other, again, forged)] == [200, 200, 429, 429]


def test_ipv6_clients_are_limited_per_64_network(make_settings, client_at, clock) -> None:
    """One home connection gets a whole /64 and could take a new address for every post."""
    settings = make_settings(rate_limit="1/minute", trusted_proxies=(PROXY,))
    make_pledge(settings)
    signer = Signer(client_at(settings, PROXY), clock)
    form = signer.form()
    clock.advance(5)

    def from_(address: str, email: str) -> int:
        return signer.post(form, email=email, headers={"X-Forwarded-For": address}).status_code

    assert from_("2001:db8:1:2::1", "a@example.org") == 200
    assert from_("2001:db8:1:2:ffff:1234:5678:9abc", "b@example.org") == 429
    assert from_("2001:db8:1:3::1", "c@example.org") == 200
    assert from_("::ffff:198.51.100.4", "d@example.org") == 200
    assert from_("198.51.100.4", "e@example.org") == 429
