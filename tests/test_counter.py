"""The live count: JSON readable cross-origin and cacheable, and the counter-only badge."""

from __future__ import annotations

import gzip
import re
import sqlite3
from pathlib import Path

from tests.conftest import PARTNER_ORIGIN, Signer, make_partner, make_pledge

WIDGET_JS = Path(__file__).resolve().parent.parent / "static" / "widget.js"
BUDGET = 3000


def test_count_is_cors_readable_cacheable_and_revalidates(settings, make_client, clock) -> None:
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
    # Routes are ASGI objects (app.View) that state their methods: the count is GET and HEAD only.
    assert client.head("/api/pledges/data-firewall/count").status_code == 200
    refused = client.post("/api/pledges/data-firewall/count")
    assert refused.status_code == 405
    assert refused.json()["error"]["status"] == 405
    assert client.get("/api/pledges/no-such-pledge/count").json()["error"]["status"] == 404


def test_counter_badge_shows_the_count_and_progress_toward_a_goal(settings, make_client, clock) -> None:
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


def test_widget_js_is_served_gzipped_and_cacheable(settings, make_client) -> None:
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


def test_kept_pages_show_each_new_count(settings, make_client, clock) -> None:
    """The form, thank-you page and badge are rendered once and the count filled in per request:
    every page must still show the count as it is now, in all three of its forms."""
    make_pledge(settings, goal=1000)
    creds = make_partner(settings)
    client = make_client(settings)
    signer = Signer(client, clock, token=creds.token)

    def count_shown(html: str) -> tuple[str, str]:
        match = re.search(r"<strong data-count>([^<]*)</strong> <span data-count-label>([^<]*)</span>", html)
        assert match, html
        return match.group(1), match.group(2)

    first = signer.sign(name="Ana <b>One</b>", email="one@example.org")
    assert count_shown(first.text) == ("1", "person has")
    assert 'data-signed-total="1"' in first.text
    assert "Thank you, Ana &lt;b&gt;One&lt;/b&gt;. You have signed." in first.text
    second = signer.sign(name="Ben", email="two@example.org")
    assert count_shown(second.text) == ("2", "people have")
    assert "Thank you, Ben. You have signed." in second.text
    assert 'data-signed-total="2"' in second.text
    form = signer.embed().text
    assert count_shown(form) == ("2", "people have")
    assert 'max="1000" value="2"' in form and ">2 of 1000</progress>" in form

    # Past a thousand: the separator, and the bar stops at its goal.
    # (Straight into the SQLite file, as a bulk load would: the kept count alone jumps.)
    with sqlite3.connect(settings.database) as conn:
        conn.execute("UPDATE pledges SET signature_count = 1232")
    third = signer.sign(name="Cy", email="three@example.org")
    assert count_shown(third.text) == ("1,233", "people have")
    assert 'data-signed-total="1233"' in third.text
    badge = client.get("/embed/data-firewall/counter", params={"token": creds.token}).text
    assert count_shown(badge) == ("1,233", "people have")
    assert 'max="1000" value="1000"' in badge and ">1233 of 1000</progress>" in badge
