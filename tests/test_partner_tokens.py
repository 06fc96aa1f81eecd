"""Partner tokens: tampered, rotated-out and revoked tokens are refused with a clear sentence."""

from __future__ import annotations

import pytest

from tests.conftest import PARTNER_ORIGIN, Signer, make_partner, make_pledge, on_db
from widget_server.messages import REVOKED, ROTATED, TAMPERED
from widget_server.services import partners

# Storage-facing behaviour: also run on PostgreSQL when the tests have one.
pytestmark = pytest.mark.both_engines


def rotate(settings, name: str = "Riverside") -> partners.PartnerCredentials:
    return on_db(settings, lambda store: partners.rotate_partner(store, settings, "data-firewall", name))


def revoke(settings, name: str = "Riverside") -> None:
    on_db(settings, lambda store: partners.revoke_partner(store, "data-firewall", name))


def tampered_versions(token: str) -> list[str]:
    payload, signature = token.split(".")
    flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
    return [
        payload + "." + flipped,  # signature altered
        payload[:-1] + ("x" if payload[-1] != "x" else "y") + "." + signature,  # payload altered
        payload,  # signature removed
        token + "x",
        "not-a-token",
    ]


@pytest.fixture
def setup(settings, make_client, clock):
    make_pledge(settings)
    creds = make_partner(settings)
    return settings, make_client(settings), clock, creds


def test_tampered_token_is_refused_with_a_sentence_and_no_framing(setup) -> None:
    _, client, clock, creds = setup
    for bad in tampered_versions(creds.token):
        page = Signer(client, clock, token=bad).embed()
        assert page.status_code == 403
        assert TAMPERED.replace("'", "&#39;") in page.text
        assert page.headers["content-security-policy"].endswith("frame-ancestors 'none'")
        count = client.get("/api/pledges/data-firewall/count", params={"token": bad})
        assert count.status_code == 403
        assert count.json()["error"]["message"] == TAMPERED


def test_rotated_out_token_is_refused_and_the_new_one_works(setup) -> None:
    settings, client, clock, old = setup
    new = rotate(settings)
    assert new.token != old.token
    refused = Signer(client, clock, token=old.token).embed()
    assert refused.status_code == 403
    assert "has been replaced by a newer one" in refused.text
    # The old token was genuinely issued for the partner's site, so the partner's own page may
    # show why the form is gone.
    assert refused.headers["content-security-policy"].endswith(f"frame-ancestors {PARTNER_ORIGIN}")
    assert Signer(client, clock, token=new.token).embed().status_code == 200
    assert client.get("/api/pledges/data-firewall/count", params={"token": old.token}).json() == {
        "error": {"status": 403, "message": ROTATED}
    }


def test_revoked_partner_is_refused_and_cannot_sign_with_an_open_form(setup) -> None:
    settings, client, clock, creds = setup
    signer = Signer(client, clock, token=creds.token)
    page = signer.embed()  # a supporter opened the form before the revocation
    revoke(settings)
    refused = signer.embed()
    assert refused.status_code == 403
    assert "switched off by the campaign" in refused.text
    clock.advance(5)
    from tests.conftest import form_token_of

    answer = client.post(
        "/embed/data-firewall/sign",
        data={"name": "Ana", "email": "ana@example.org", "form_token": form_token_of(page.text)},
    )
    assert answer.status_code == 403
    assert REVOKED in answer.text.replace("&#39;", "'")


def test_rotation_reinstates_a_revoked_partner(setup) -> None:
    settings, client, clock, _ = setup
    revoke(settings)
    creds = rotate(settings)
    assert Signer(client, clock, token=creds.token).sign().status_code == 200


def test_token_for_another_pledge_is_refused(setup) -> None:
    settings, client, clock, creds = setup
    make_pledge(settings, slug="other-pledge", title="Other")
    page = Signer(client, clock, slug="other-pledge", token=creds.token).embed()
    assert page.status_code == 403
    assert "belongs to a different pledge" in page.text


def test_revocation_reaches_a_running_server_within_the_cache_time(make_settings, make_client, clock) -> None:
    settings = make_settings(cache_seconds=2.0)
    make_pledge(settings)
    creds = make_partner(settings)
    signer = Signer(make_client(settings), clock, token=creds.token)
    assert signer.embed().status_code == 200
    revoke(settings)  # from another process, as the CLI does
    assert signer.embed().status_code == 200  # still cached: the documented delay
    clock.advance(2.5)
    assert signer.embed().status_code == 403
