"""Issue 10, item 14: the trailing-slash redirect stays on this site whatever the Host header
says; the privacy link is https or a path here; the honeypot's thank-you counts the bot as a
person's counts the person."""

from __future__ import annotations

import pytest

from tests.conftest import Signer, make_pledge, on_db, rows
from tests.security.conftest import SLUG
from widget_server.errors import Invalid
from widget_server.messages import BAD_PRIVACY_URL
from widget_server.services import pledge_settings, pledges

# ---------------------------------------------------------------- the trailing-slash redirect


@pytest.mark.parametrize("host", ["evil.example", "evil.example:8443", "testserver"])
def test_the_trailing_slash_redirect_is_relative_whatever_the_host(settings, make_client, host: str) -> None:
    make_pledge(settings)
    client = make_client(settings)
    moved = client.get(f"/embed/{SLUG}/?source=news", headers={"Host": host}, follow_redirects=False)
    assert moved.status_code in (301, 307, 308)
    assert moved.headers["location"] == f"/embed/{SLUG}?source=news"
    added = client.get("/healthz/", headers={"Host": host}, follow_redirects=False)
    assert added.headers["location"] == "/healthz"


def test_a_path_that_would_redirect_off_site_is_not_found(settings, make_client) -> None:
    make_pledge(settings)
    client = make_client(settings)
    for path in ("//evil.example/", "//evil.example", f"/embed/{SLUG}//"):
        answer = client.get(path, headers={"Host": "evil.example"}, follow_redirects=False)
        assert "evil.example" not in answer.headers.get("location", ""), path
    assert client.get("/no-such-page/", follow_redirects=False).status_code == 404


# ---------------------------------------------------------------- the privacy link


REFUSED = [
    "//evil.example/privacy",
    "/\\evil.example/privacy",
    "http://campaign.example/privacy",
    "javascript:alert(1)",
    "data:text/html,hi",
    "https:///privacy",
    "https://campaign.example/privacy policy",
]
ACCEPTED = ["https://campaign.example/privacy", "/privacy", "/pledge/data-firewall/privacy#data"]


@pytest.mark.parametrize("url", REFUSED)
def test_a_privacy_url_off_https_or_off_site_is_refused(settings, url: str) -> None:
    with pytest.raises(Invalid) as refused:
        make_pledge(settings, privacy_url=url)
    assert refused.value.message == BAD_PRIVACY_URL
    make_pledge(settings)
    with pytest.raises(Invalid):
        on_db(settings, lambda store: pledge_settings.edit_pledge(store, SLUG, privacy_url=url))
    assert on_db(settings, lambda store: pledges.find_pledge(store, SLUG)).privacy_url is None


@pytest.mark.parametrize("url", ACCEPTED)
def test_an_https_or_local_privacy_url_is_kept(settings, url: str) -> None:
    assert make_pledge(settings, privacy_url=url).privacy_url == url
    saved, _ = on_db(settings, lambda store: pledge_settings.edit_pledge(store, SLUG, privacy_url=url))
    assert saved.privacy_url == url


# ---------------------------------------------------------------- the honeypot


def test_the_honeypots_thank_you_counts_the_bot_as_a_person_would_be_counted(settings, signer: Signer) -> None:
    assert signer.sign(json=True, email="person@example.org").json() == {"status": "signed", "total": 1}
    # A bot filling the hidden field is shown the count it would have made, as a person is.
    bot = signer.sign(json=True, email="bot@example.org", website="https://spam.example")
    assert bot.json() == {"status": "signed", "total": 2}
    assert [r["email"] for r in rows(settings)] == ["person@example.org"]
