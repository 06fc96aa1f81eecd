"""The live count: JSON readable cross-origin and cacheable, and the counter-only badge."""

from __future__ import annotations

import gzip
from pathlib import Path

from tests.conftest import PARTNER_ORIGIN, Signer, make_partner, make_pledge

WIDGET_JS = Path(__file__).resolve().parent.parent / "static" / "widget.js"
BUDGET = 3000


def test_count_is_cors_readable_cacheable_and_revalidates(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    first = client.get("/api/pledges/data-firewall/count", headers={"Origin": "https://anyone.example"})
    assert first.json() == {"total": 0}
    assert first.headers["access-control-allow-origin"] == "*"
    assert first.headers["cache-control"] == "public, max-age=5"
    assert "set-cookie" not in first.headers
    etag = first.headers["etag"]
    assert client.get("/api/pledges/data-firewall/count", headers={"If-None-Match": etag}).status_code == 304

    Signer(client, clock, token=creds.token).sign()
    after = client.get("/api/pledges/data-firewall/count", headers={"If-None-Match": etag})
    assert after.status_code == 200  # a new count is a new ETag
    assert after.json() == {"total": 1}
    with_partner = client.get("/api/pledges/data-firewall/count", params={"token": creds.token})
    assert with_partner.json() == {"total": 1, "partner": 1}
    assert with_partner.headers["etag"] != after.headers["etag"]


def test_counter_badge_shows_the_count_and_progress_toward_a_goal(settings, make_client, clock) -> None:  # type: ignore[no-untyped-def]
    make_pledge(settings, goal=None)
    creds = make_partner(settings)
    client = make_client(settings)
    Signer(client, clock, token=creds.token).sign()
    plain = client.get("/embed/data-firewall/counter", params={"token": creds.token})
    assert plain.status_code == 200
    assert "<strong data-count>1</strong>" in plain.text
    assert "<progress" not in plain.text
    assert plain.headers["content-security-policy"].endswith(f"frame-ancestors {PARTNER_ORIGIN}")
    with_goal = client.get("/embed/data-firewall/counter", params={"token": creds.token, "goal": "500"})
    assert 'max="500" value="1"' in with_goal.text
    assert "Goal: 500 signatures" in with_goal.text
    odd = client.get("/embed/data-firewall/counter", params={"token": creds.token, "goal": "\u00b2"})
    assert odd.status_code == 200  # a digit that is not 0-9 is no goal, not an error
    assert "<progress" not in odd.text


def test_widget_js_fits_its_budget_and_defines_one_global() -> None:
    source = WIDGET_JS.read_bytes()
    assert len(gzip.compress(source, compresslevel=9)) <= BUDGET
    text = source.decode()
    assert text.count("w.PledgeWidget =") == 1
    assert "event.origin !== server" in text  # messages are trusted only from the widget server
    assert "innerHTML" not in text


def test_widget_js_is_served_gzipped_and_cacheable(settings, make_client) -> None:  # type: ignore[no-untyped-def]
    client = make_client(settings)
    answer = client.get("/widget.js", headers={"Accept-Encoding": "gzip"})
    assert answer.status_code == 200
    assert answer.headers["content-encoding"] == "gzip"
    assert answer.headers["content-type"].startswith("text/javascript")
    assert int(answer.headers["content-length"]) <= BUDGET
    assert answer.content == WIDGET_JS.read_bytes()
    assert "set-cookie" not in answer.headers
    again = client.get("/widget.js", headers={"If-None-Match": answer.headers["etag"]})
    assert again.status_code == 304
