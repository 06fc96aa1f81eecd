"""Who gets credit, decided in one place (core.attribution) for the embed page, the counter badge,
the count API and signing: table-driven, and through the app where the two used to differ."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from tests.conftest import PARTNER_ORIGIN, make_partner, make_pledge
from widget_server.core.attribution import (
    PartnerClaim,
    credited_partner,
    embedding_origin,
    origin_of,
    signing_partner,
)
from widget_server.core.models import Partner, Pledge
from widget_server.errors import NotAllowed, TokenError
from widget_server.messages import REVOKED, ROTATED, TAMPERED, WRONG_PLEDGE, WRONG_SITE
from widget_server.settings import Settings

PLEDGE = Pledge(1, "data-firewall", "Keep our data safe", "<p>Keep it.</p>", 1000, None, None, 0)
ORIGINS = ("https://riverside.example", "https://www.riverside.example")
CLAIM = PartnerClaim(partner_id=7, origins=ORIGINS, version=2)


def partner(**changes: object) -> Partner:
    values: dict[str, object] = {
        "id": 7,
        "pledge_id": 1,
        "name": "Riverside",
        "origins": ("https://riverside.example",),  # the row's now; the token's may be older
        "token_version": 2,
        "revoked": False,
        "signature_count": 0,
    }
    values.update(changes)
    return Partner(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("row", "message", "origins"),
    [
        (None, TAMPERED, ()),  # no such partner: nothing to say where it may be shown
        (partner(revoked=True), REVOKED, ORIGINS),
        (partner(token_version=3), ROTATED, ORIGINS),
        (partner(token_version=1), ROTATED, ORIGINS),
        (partner(pledge_id=2), WRONG_PLEDGE, ORIGINS),
    ],
    ids=["gone", "revoked", "rotated past", "older version", "other pledge"],
)
def test_a_partner_token_is_refused_with_the_tokens_origins(
    row: Partner | None, message: str, origins: tuple[str, ...]
) -> None:
    with pytest.raises(TokenError) as refused:
        credited_partner(PLEDGE, CLAIM, row)
    assert refused.value.message == message
    assert refused.value.origins == origins


def test_a_current_partner_token_credits_the_rows_partner() -> None:
    row = partner()
    assert credited_partner(PLEDGE, CLAIM, row) is row


@pytest.mark.parametrize(
    ("partner_id", "row", "expected"),
    [
        (None, None, None),  # a direct form
        (7, partner(), "credited"),
    ],
)
def test_a_signature_is_credited_to_its_form_tokens_partner(
    partner_id: int | None, row: Partner | None, expected: str | None
) -> None:
    version = row.token_version if row else 0
    assert signing_partner(partner_id, version, row) is (row if expected else None)


def test_a_form_from_a_rotated_out_partner_token_is_refused() -> None:
    """A form lives no longer than the partner token version it was rendered under."""
    row = partner(token_version=9)
    with pytest.raises(TokenError) as refused:
        signing_partner(7, 8, row)
    assert (refused.value.message, refused.value.origins) == (ROTATED, ("https://riverside.example",))


def test_a_signature_for_a_revoked_or_vanished_partner_is_refused() -> None:
    with pytest.raises(TokenError) as refused:
        signing_partner(7, 1, partner(revoked=True))
    assert (refused.value.message, refused.value.origins) == (REVOKED, ("https://riverside.example",))
    with pytest.raises(NotAllowed) as gone:
        signing_partner(7, 1, None)
    assert gone.value.message == REVOKED and not isinstance(gone.value, TokenError)


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://riverside.example/petitions/page?x=1#top", "https://riverside.example"),
        ("http://localhost:8001/", "http://localhost:8001"),
        ("http://[::1]:8000/page", "http://[::1]:8000"),
        ("http://[::1", ""),  # unreadable: absent, never an error
        ("https://[not-ipv6]/", ""),
        ("/relative/path", ""),
        ("riverside.example", ""),
        ("", ""),
    ],
)
def test_origin_of(url: str, origin: str) -> None:
    assert origin_of(url) == origin


ALLOWED = ("https://riverside.example",)
OTHER = "https://lookalike.example"


@pytest.mark.parametrize(
    ("parent", "referer", "dest", "expected"),
    [
        ("", "", None, ""),  # nothing says who frames us
        ("https://riverside.example", "", "iframe", "https://riverside.example"),
        ("", "https://riverside.example/page", "iframe", "https://riverside.example"),
        ("", "https://riverside.example/page", None, "https://riverside.example"),  # no Fetch Metadata
        ("https://riverside.example", "https://riverside.example/a", "iframe", "https://riverside.example"),
        ("", f"{OTHER}/page", "document", ""),  # a shared link: never grants framing to its referrer
        ("https://riverside.example", f"{OTHER}/page", "document", "https://riverside.example"),
        ("", "http://[::1", "iframe", ""),  # a Referer that cannot be read is absent
        ("", "http://[::1", None, ""),
        ("", "not a url", "iframe", ""),
        (OTHER, "", "iframe", NotAllowed),
        ("", f"{OTHER}/page", "iframe", NotAllowed),
        ("", f"{OTHER}/page", None, NotAllowed),
        ("https://riverside.example", f"{OTHER}/page", "iframe", NotAllowed),
        (OTHER, "https://riverside.example/page", "iframe", NotAllowed),
        (OTHER, "", "document", NotAllowed),  # the loader's word counts whatever the load
    ],
)
def test_embedding_origin(parent: str, referer: str, dest: str | None, expected: str | type[NotAllowed]) -> None:
    if isinstance(expected, str):
        assert embedding_origin(parent, referer, dest, ALLOWED) == expected
    else:
        with pytest.raises(NotAllowed) as refused:
            embedding_origin(parent, referer, dest, ALLOWED)
        assert refused.value.message == WRONG_SITE


def test_nothing_may_frame_a_page_that_allows_no_one() -> None:
    assert embedding_origin("", "", "iframe", ()) == ""
    with pytest.raises(NotAllowed):
        embedding_origin("", "https://riverside.example/", "iframe", ())


# Through the app: the embed page and the count API now answer a refused token alike.


def frame_ancestors(policy: str) -> str:
    return policy.split("frame-ancestors", 1)[1].strip()


def test_the_count_api_refuses_another_pledges_token_with_the_tokens_origins(
    settings: Settings, make_client: Callable[..., TestClient]
) -> None:
    make_pledge(settings)
    make_pledge(settings, slug="other-pledge", title="Other")
    creds = make_partner(settings)
    client = make_client(settings)
    count = client.get("/api/pledges/other-pledge/count", params={"token": creds.token})
    page = client.get("/embed/other-pledge", params={"token": creds.token})
    assert count.status_code == page.status_code == 403
    assert count.json()["error"]["message"] == WRONG_PLEDGE
    # The same answer the embed page gives: framable by the token's own origins only.
    assert frame_ancestors(count.headers["content-security-policy"]) == PARTNER_ORIGIN
    assert frame_ancestors(page.headers["content-security-policy"]) == PARTNER_ORIGIN
    assert "x-frame-options" not in count.headers


def test_a_malformed_referer_is_absent_not_an_error(settings: Settings, make_client: Callable[..., TestClient]) -> None:
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    for dest in ("iframe", None):
        headers = {"Referer": "http://[::1"} | ({"Sec-Fetch-Dest": dest} if dest else {})
        page = client.get("/embed/data-firewall", params={"token": creds.token}, headers=headers)
        assert page.status_code == 200, page.text
        assert "data-parent-origin" not in page.text
        badge = client.get("/embed/data-firewall/counter", params={"token": creds.token}, headers=headers)
        assert badge.status_code == 200, badge.text
