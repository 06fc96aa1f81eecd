"""Issue 10, item 7: what an attacker can make the real server keep in memory is bounded.

Genuine partner and form tokens padded with junk that lenient base64 skips, and long query
strings, each distinct: before, every one was verified and remembered under its own text. Now
only the canonical spelling is read (and nothing else is remembered), tokens and request heads
are capped, and every memo is bounded by bytes, so the server's resident memory stays under a
bound however many such requests it receives (SECURITY.md, section 8, gives the figures).
"""

from __future__ import annotations

import random
import string
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import form_token_of, make_partner, make_pledge
from tests.server_harness import WidgetServer, fetch
from widget_server.settings import Settings

SECRET = "browser-test-secret-of-at-least-32-bytes"  # the harness's key
REQUESTS = 1200  # more than enough to fill every memo many times over at the old sizes
PADDING = 10_000  # characters of junk in each token: under the 16 KiB request head limit
# Resident memory may grow by at most this much over the whole flood. Of the memos, only the
# parsed-query one (4 MiB) can be filled with junk now; the token memos take genuine tokens
# only. The rest is room for Python keeping freed memory.
GROWTH_BOUND_KIB = 24 * 1024


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[WidgetServer, str]]:
    data: Path = tmp_path_factory.mktemp("memory") / "data"
    settings = Settings.from_env(environ={}, data_dir=data, secret_key=SECRET)
    make_pledge(settings)
    token = make_partner(settings).token
    # One client sends the whole flood: its own rate limit would otherwise answer most of it
    # (after reading each token all the same), and the answers would say less.
    started = WidgetServer.start(data, WIDGET_MIN_FILL_SECONDS="0", WIDGET_RATE_LIMIT="100000/minute")
    yield started, token
    started.stop()


def padded(token: str, rng: random.Random, junk_characters: str = "~!*'()") -> str:
    """`token` with junk a lenient base64 decoder skips, inserted at random in its signature."""
    payload, signature = token.rsplit(".", 1)
    junk = "".join(rng.choice(junk_characters) for _ in range(PADDING))
    cut = rng.randrange(1, len(signature))
    return f"{payload}.{signature[:cut]}{junk}{signature[cut:]}"


def test_a_flood_of_padded_tokens_and_junk_queries_keeps_memory_bounded(server: tuple[WidgetServer, str]) -> None:
    widget, token = server
    rng = random.Random(10)
    embed = f"{widget.url}/embed/data-firewall"
    status, _, page = fetch(f"{embed}?token={token}")
    assert status == 200
    form = form_token_of(page.decode())
    # Warm up: the first requests build the pages and templates that stay for good.
    for _ in range(50):
        assert fetch(f"{embed}?token={token}&source=warm")[0] == 200
    before = widget.rss_kib()["VmRSS"]

    answers: dict[int, int] = {}
    for n in range(REQUESTS):
        kind = n % 3
        if kind == 0:  # a padded partner token
            status = fetch(f"{embed}?token={urllib.parse.quote(padded(token, rng), safe='')}")[0]
        elif kind == 1:  # a padded form token, posted
            body = urllib.parse.urlencode(
                {"name": "A", "email": f"a{n}@example.org", "form_token": padded(form, rng, "~")}
            ).encode()
            status = fetch(f"{embed}/sign", data=body, headers={"Content-Type": "application/x-www-form-urlencoded"})[0]
        else:  # a genuine token with a long, distinct junk query
            junk = "".join(rng.choice(string.ascii_letters) for _ in range(PADDING))
            status = fetch(f"{embed}?token={token}&utm_content={junk}&x{n}={junk[:100]}")[0]
        answers[status] = answers.get(status, 0) + 1
    after = widget.rss_kib()["VmRSS"]

    # Padded tokens are refused (403 partner token, 400 form token); junk queries are served.
    assert answers == {403: REQUESTS // 3, 400: REQUESTS // 3, 200: REQUESTS // 3}
    assert after - before < GROWTH_BOUND_KIB, (before, after)
    print(f"resident memory: {before} KiB before, {after} KiB after {REQUESTS} requests")
    assert widget.log_errors() == []
