"""Issue 10, item 12: a partner's signing budget pays only for signatures stored.

Posts of addresses that already signed write nothing, so they must not spend the partner's
budget: otherwise anyone could replay one signature from many clients and have every genuine
supporter of that partner told that the form is busy.
"""

from __future__ import annotations

from dataclasses import replace

from tests.conftest import Signer, make_partner, make_pledge, rows
from tests.security.conftest import PROXY, unescaped
from widget_server.messages import PARTNER_BUSY


def test_posts_that_store_nothing_do_not_spend_the_partners_budget(make_settings, client_at, clock) -> None:
    settings = make_settings(partner_rate_limit="3/minute", trusted_proxies=(PROXY,))
    make_pledge(settings)
    signer = replace(Signer(client_at(settings, PROXY), clock), token=make_partner(settings).token)
    form = signer.form()
    clock.advance(5)

    def from_client(i: int, email: str) -> int:
        answer = signer.post(form, email=email, headers={"X-Forwarded-For": f"203.0.113.{i}"})
        return answer.status_code

    assert from_client(1, "first@example.org") == 200
    # An attacker replays the stored address from many clients: each answered as a signature...
    assert [from_client(10 + i, "first@example.org") for i in range(20)] == [200] * 20
    # ...but only what was stored counts, so two genuine supporters still sign.
    assert [from_client(2, "second@example.org"), from_client(3, "third@example.org")] == [200, 200]
    # The budget (three a minute) is spent by three stored signatures, and then it holds.
    busy = signer.post(form, email="fourth@example.org", headers={"X-Forwarded-For": "203.0.113.4"})
    assert busy.status_code == 429 and unescaped(PARTNER_BUSY) in unescaped(busy.text)
    assert [r["email"] for r in rows(settings)] == ["first@example.org", "second@example.org", "third@example.org"]
