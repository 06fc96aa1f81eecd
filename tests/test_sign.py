"""From a partner's page to a stored, attributed signature: embed → sign → count → stats."""

from __future__ import annotations

import pytest

from tests.conftest import (
    PARTNER_ORIGIN,
    FakeClock,
    Signer,
    fields_of,
    form_token_of,
    make_partner,
    make_pledge,
    rows,
    stats,
)

# Storage-facing behaviour: also run on PostgreSQL when the tests have one.
pytestmark = pytest.mark.both_engines


@pytest.fixture
def partner_signer(settings, make_client, clock) -> Signer:
    make_pledge(settings)
    creds = make_partner(settings)
    return Signer(make_client(settings), clock, token=creds.token, parent=PARTNER_ORIGIN)


@pytest.fixture
def direct_signer(settings, make_client, clock) -> Signer:
    make_pledge(settings)
    return Signer(make_client(settings), clock)


def test_embed_page_has_the_pledge_the_form_and_the_privacy_notice(partner_signer: Signer) -> None:
    page = partner_signer.embed()
    assert page.status_code == 200
    assert "Keep our data safe" in page.text
    assert "<strong>away</strong>" in page.text  # the sanitised statement keeps its formatting
    inputs = fields_of(page.text)
    for name in ("name", "email", "occupation", "organisation", "form_token"):
        assert name in inputs
    assert inputs["form_token"]["type"] == "hidden"
    # Two separate opt-ins, neither ticked.
    for opt_in in ("opt_in_updates", "opt_in_partner"):
        assert inputs[opt_in]["type"] == "checkbox"
        assert "checked" not in inputs[opt_in]
    assert "How your details are used" in page.text
    assert 'href="/pledge/data-firewall/privacy"' in page.text
    assert "set-cookie" not in page.headers


def test_embed_grants_framing_to_exactly_the_partners_origins(settings, make_client, clock) -> None:
    make_pledge(settings)
    creds = make_partner(settings, origins=("https://a.example", "https://b.example:8443"))
    page = Signer(make_client(settings), clock, token=creds.token).embed()
    policy = page.headers["content-security-policy"]
    assert policy.endswith("frame-ancestors https://a.example https://b.example:8443")
    assert "x-frame-options" not in page.headers


def test_direct_page_without_a_token_is_not_frameable_by_default(direct_signer: Signer) -> None:
    page = direct_signer.embed()
    assert page.status_code == 200
    assert page.headers["content-security-policy"].endswith("frame-ancestors 'none'")
    assert page.headers["x-frame-options"] == "DENY"


def test_direct_page_may_be_framed_by_the_campaigns_own_sites(make_settings, make_client, clock) -> None:
    settings = make_settings(direct_frame_origins=("https://campaign.example",))
    make_pledge(settings)
    page = Signer(make_client(settings), clock).embed()
    assert page.headers["content-security-policy"].endswith("frame-ancestors https://campaign.example")


def test_partner_signature_is_stored_counted_and_attributed(settings, partner_signer: Signer) -> None:
    partner_signer.query = {"source": "newsletter", "utm_campaign": "autumn", "utm_ignored": "x"}
    answer = partner_signer.sign(occupation="Teacher", organisation="Hill School", opt_in_updates="yes")
    assert answer.status_code == 200
    assert "Thank you, Ana Teacher" in answer.text
    assert "<strong data-count>1</strong>" in answer.text

    [row] = rows(settings)
    assert row["email"] == "ana@example.org"
    assert (row["occupation"], row["organisation"]) == ("Teacher", "Hill School")
    assert row["partner_id"] is not None
    assert row["origin"] == PARTNER_ORIGIN
    assert (row["source"], row["utm_campaign"]) == ("newsletter", "autumn")
    assert (row["opt_in_updates"], row["opt_in_partner"]) == (1, 0)

    count = partner_signer.client.get("/api/pledges/data-firewall/count", params={"token": partner_signer.token})
    assert count.json() == {"total": 1, "partner": 1}
    assert stats(settings)["total"] == 1
    assert stats(settings)["direct"] == 0
    assert stats(settings)["partners"][0]["name"] == "Riverside"
    assert stats(settings)["partners"][0]["count"] == 1


def test_direct_signature_is_counted_as_direct(settings, direct_signer: Signer) -> None:
    answer = direct_signer.sign(json=True)
    assert answer.json() == {"status": "signed", "total": 1}
    assert rows(settings)[0]["partner_id"] is None
    figures = stats(settings)
    assert (figures["total"], figures["direct"]) == (1, 1)
    assert direct_signer.client.get("/api/pledges/data-firewall/count").json() == {"total": 1}


def test_two_partners_and_direct_traffic_are_split(settings, make_client, clock) -> None:
    make_pledge(settings)
    first = make_partner(settings, name="Riverside")
    second = make_partner(settings, name="Northgate Nurses", origins=("https://nurses.example",))
    client = make_client(settings)
    for index in range(3):
        Signer(client, clock, token=first.token).sign(email=f"r{index}@example.org")
    Signer(client, clock, token=second.token).sign(email="n@example.org")
    Signer(client, clock).sign(email="d@example.org")
    figures = stats(settings)
    assert figures["total"] == 5
    assert figures["direct"] == 1
    assert {p["name"]: p["count"] for p in figures["partners"]} == {"Riverside": 3, "Northgate Nurses": 1}
    assert figures["days"][0]["total"] == 5


def test_signing_again_answers_the_same_and_counts_once(settings, partner_signer: Signer) -> None:
    first = partner_signer.sign(email="ana@example.org")
    again = partner_signer.sign(email="  ANA@Example.ORG ")
    assert first.status_code == again.status_code == 200
    # Same page, same count: the form never reveals that this address had already signed.
    assert first.text.replace(form_token_of_or_empty(first.text), "") == again.text.replace(
        form_token_of_or_empty(again.text), ""
    )
    assert len(rows(settings)) == 1
    assert stats(settings)["total"] == 1
    json_first = partner_signer.sign(json=True, email="bo@example.org")
    json_again = partner_signer.sign(json=True, email="BO@example.org ")
    assert json_first.json() == {"status": "signed", "total": 2}
    assert json_again.json() == json_first.json()


def test_invisible_characters_do_not_make_a_second_signature(settings, partner_signer: Signer) -> None:
    partner_signer.sign(email="ana@example.org")
    partner_signer.sign(email="ana@ex\u200dample.org")
    partner_signer.sign(email="\u200bana@example.org\u2060")
    assert [row["email"] for row in rows(settings)] == ["ana@example.org"]
    assert stats(settings)["total"] == 1


def form_token_of_or_empty(html: str) -> str:
    try:
        return form_token_of(html)
    except AssertionError:
        return ""


INVALID = [
    ({"name": ""}, "name", "Please enter your name."),
    ({"name": "   \t "}, "name", "Please enter your name."),
    ({"name": "x" * 121}, "name", "120 characters or fewer"),
    ({"email": ""}, "email", "Please enter your email address."),
    ({"email": "not-an-address"}, "email", "like name@example.org"),
    ({"email": "two@@example.org"}, "email", "like name@example.org"),
    ({"email": "ana@localhost"}, "email", "like name@example.org"),
    ({"email": "ana@exa mple.org"}, "email", "like name@example.org"),
    ({"email": "a" * 250 + "@example.org"}, "email", "254 characters or fewer"),
    ({"occupation": "o" * 101}, "occupation", "100 characters or fewer"),
    ({"organisation": "g" * 151}, "organisation", "150 characters or fewer"),
]


@pytest.mark.parametrize(("fields", "field", "message"), INVALID)
def test_each_invalid_field_is_explained_next_to_it_and_input_is_kept(
    settings, partner_signer: Signer, fields: dict[str, str], field: str, message: str
) -> None:
    sent = {"organisation": "Hill School", **fields}
    answer = partner_signer.sign(json=False, wait=5.0, **sent)
    assert answer.status_code == 400
    assert message in answer.text
    inputs = fields_of(answer.text)
    assert inputs[field]["aria-invalid"] == "true"
    assert f"f-{field}-error" in str(inputs[field]["aria-describedby"])
    assert "autofocus" in inputs[field]  # focus moves to the first error without JavaScript
    assert inputs["organisation"]["value"] == sent["organisation"]
    assert rows(settings) == []

    as_json = partner_signer.sign(json=True, wait=5.0, **fields)
    assert as_json.status_code == 400
    assert message in as_json.json()["errors"][field]
    assert as_json.json()["form_token"]


def test_text_is_normalised_before_it_is_stored(settings, partner_signer: Signer) -> None:
    partner_signer.sign(name="  Zoe\u0301\x00 \n Smith\u202e ", occupation="\tnurse  ")
    [row] = rows(settings)
    assert row["name"] == "Zo\u00e9 Smith"  # NFC, no control or bidi-override characters
    assert row["occupation"] == "nurse"


def test_the_no_javascript_path_is_a_plain_form_post(partner_signer: Signer, clock: FakeClock) -> None:
    page = partner_signer.embed()
    assert 'method="post" action="/embed/data-firewall/sign"' in page.text
    clock.advance(5)
    answer = partner_signer.client.post(
        "/embed/data-firewall/sign",
        data={"name": "No Script", "email": "ns@example.org", "form_token": form_token_of(page.text)},
        headers={"Accept": "text/html"},
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/html")
    assert "Thank you, No Script. You have signed." in answer.text
    assert answer.headers["content-security-policy"].endswith(f"frame-ancestors {PARTNER_ORIGIN}")


def test_partner_opt_in_is_kept_only_for_partner_signatures(settings, make_client, clock) -> None:
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    Signer(client, clock, token=creds.token).sign(email="p@example.org", opt_in_partner="yes")
    Signer(client, clock).sign(email="d@example.org", opt_in_partner="yes")
    assert [r["opt_in_partner"] for r in rows(settings, "SELECT * FROM signatures ORDER BY id")] == [1, 0]


def test_unknown_pledge_is_a_clear_404(partner_signer: Signer) -> None:
    answer = partner_signer.client.get("/embed/no-such-pledge")
    assert answer.status_code == 404
    assert "There is no pledge at this address." in answer.text
    api = partner_signer.client.get("/api/pledges/no-such-pledge/count")
    assert api.status_code == 404
    assert api.json() == {"error": {"status": 404, "message": "There is no pledge at this address."}}


def test_a_question_the_pledge_does_not_ask_is_not_stored_even_when_posted(settings, make_client, clock) -> None:
    from tests.conftest import on_db
    from widget_server.services.pledge_settings import edit_pledge

    make_pledge(settings)
    on_db(settings, lambda store: edit_pledge(store, "data-firewall", optional_fields=["occupation"]))
    client = make_client(settings)
    form = Signer(client, clock).embed().text
    assert 'name="organisation"' not in form and 'name="occupation"' in form
    answer = Signer(client, clock).sign(occupation="Nurse", organisation="Hand-made Post Ltd")
    assert answer.status_code == 200
    row = rows(settings)[0]
    assert (row["occupation"], row["organisation"]) == ("Nurse", "")
