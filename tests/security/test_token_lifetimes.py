"""Issue 10, items 1 and 2: a form lives no longer than the partner token and the key it came from.

A form token carries the partner token version it was rendered under, so every use of it (the
first post, or a post of the form asked again) is refused once that partner token is rotated out
or revoked, and a rotation after a revocation does not revive it. Asking again never renews a
form's lifetime. A form token verified only by a retired key is never signed again under the
current key.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2
from starlette.testclient import TestClient

from tests.conftest import FakeClock, Signer, form_token_of, make_partner, make_pledge, on_db, rows
from tests.security.conftest import SLUG, unescaped
from widget_server.messages import FORM_EXPIRED, FORM_OUT_OF_DATE, REVOKED, ROTATED
from widget_server.security.tokens import Tokens
from widget_server.services import partners
from widget_server.settings import Settings

OLD_KEY, NEW_KEY = (name.ljust(32, ".") for name in ("old-key", "new-key"))


def _rotate(settings: Settings) -> str:
    """Rotate Riverside's partner token; returns the new one."""
    return on_db(settings, lambda store: partners.rotate_partner(store, settings, SLUG, "Riverside")).token


def _revoke(settings: Settings) -> None:
    on_db(settings, lambda store: partners.revoke_partner(store, SLUG, "Riverside"))


def _asked_again(signer: Signer, form: str) -> str:
    """Post `form` with a bad address: the form comes back with a fresh token, which is returned."""
    answer = signer.post(form, email="not an address")
    assert answer.status_code == 400, answer.text
    return form_token_of(answer.text)


def _refused_with(answer: httpx2.Response, sentence: str) -> None:
    assert answer.status_code in (400, 403), answer.text
    assert unescaped(sentence) in unescaped(answer.text)
    assert 'name="form_token"' not in answer.text  # no fresh form to carry on with


def test_a_form_opened_before_a_rotation_is_refused_at_every_use(settings, signer: Signer, clock) -> None:
    form = signer.form()
    clock.advance(5)
    again = _asked_again(signer, form)  # asked again while the partner token is still current
    _rotate(settings)
    clock.advance(5)
    _refused_with(signer.post(form, email="first@example.org"), ROTATED)
    _refused_with(signer.post(again, email="second@example.org"), ROTATED)
    # Nor may the old form be asked again: that would hand out a token that still works.
    _refused_with(signer.post(form, email="not an address"), ROTATED)
    assert rows(settings) == []


def test_rotating_after_revoking_does_not_revive_old_forms(settings, signer: Signer, clock) -> None:
    form = signer.form()
    _revoke(settings)
    clock.advance(5)
    _refused_with(signer.post(form, email="during@example.org"), REVOKED)
    _rotate(settings)  # reinstates the partner under a new token version
    _refused_with(signer.post(form, email="after@example.org"), ROTATED)
    assert rows(settings) == []


def test_a_form_from_the_current_partner_token_still_signs(settings, signer: Signer, clock) -> None:
    fresh = Signer(signer.client, clock, token=_rotate(settings))
    assert fresh.sign(email="current@example.org").status_code == 200
    assert [r["email"] for r in rows(settings)] == ["current@example.org"]


def test_asking_again_never_renews_a_forms_lifetime(settings, signer: Signer, clock: FakeClock) -> None:
    lifetime = settings.form_token_hours * 3600
    form = signer.form()
    clock.advance(lifetime - 60)
    again = _asked_again(signer, form)  # a minute before the form's end
    clock.advance(120)  # the re-rendered form is two minutes younger, but the form is not
    late = signer.post(again, email="late@example.org", json=True)
    assert late.json()["status"] == "invalid" and late.json()["message"] == FORM_EXPIRED
    assert rows(settings) == []


def test_a_form_token_signed_by_a_retired_key_is_never_signed_again_with_the_new_one(
    make_settings: Callable[..., Settings], make_client: Callable[..., TestClient], clock: FakeClock
) -> None:
    old = make_settings(secret_key=OLD_KEY)
    make_pledge(old)
    creds = make_partner(old)
    old_form = Signer(make_client(old), clock, token=creds.token).form()

    rotating = make_settings(secret_key=NEW_KEY, secret_key_fallbacks=(OLD_KEY,))
    signer = Signer(make_client(rotating), clock, token=creds.token)
    assert Tokens([OLD_KEY, NEW_KEY]).read_form_token(old_form).old_key
    # Asked again (too quick, or a field to correct): refused, with no new-key token to keep.
    _refused_with(signer.post(old_form, email="not an address"), FORM_OUT_OF_DATE)
    _refused_with(signer.post(old_form, email="quick@example.org"), FORM_OUT_OF_DATE)
    # A genuine post during the rotation still signs.
    clock.advance(5)
    assert signer.post(old_form, email="open@example.org").status_code == 200
    assert [r["email"] for r in rows(rotating)] == ["open@example.org"]
