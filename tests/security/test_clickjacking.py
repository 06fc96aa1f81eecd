"""SECURITY.md, threat 2: clickjacking and look-alike sites. Only the partner's own origins may
frame its form, counter and thank-you page; every other page, and every error, frames nowhere."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import PARTNER_ORIGIN, Signer, form_token_of, make_partner, make_pledge
from tests.security.conftest import SLUG, frame_ancestors, unescaped
from widget_server.core.origins import normalise_origin
from widget_server.errors import Invalid
from widget_server.messages import WRONG_SITE
from widget_server.web.edge.headers import csp

ROOT = Path(__file__).resolve().parents[2]


def test_embed_pages_may_be_framed_by_exactly_the_partners_origins(settings, make_client, clock) -> None:
    make_pledge(settings)
    creds = make_partner(settings, origins=("https://a.example", "https://b.example:8443"))
    client = make_client(settings)
    signer = Signer(client, clock, token=creds.token, parent="https://b.example:8443")
    expected = "https://a.example https://b.example:8443"
    page = signer.embed()
    assert frame_ancestors(page) == expected
    assert "x-frame-options" not in page.headers
    counter = client.get(f"/embed/{SLUG}/counter", params={"token": creds.token})
    assert frame_ancestors(counter) == expected
    clock.advance(5)
    thanks = signer.post(form_token_of(page.text))
    assert thanks.status_code == 200
    assert frame_ancestors(thanks) == expected
    invalid = signer.post(form_token_of(page.text), email="nope")
    assert invalid.status_code == 400
    assert frame_ancestors(invalid) == expected


def test_no_response_grants_framing_to_everyone(settings, make_client, clock) -> None:
    make_pledge(settings)
    creds = make_partner(settings)
    client = make_client(settings)
    signer = Signer(client, clock, token=creds.token)
    form = signer.form()
    clock.advance(5)
    answers = [
        client.get(f"/embed/{SLUG}", params={"token": creds.token}),
        client.get(f"/embed/{SLUG}"),
        client.get(f"/pledge/{SLUG}"),
        client.get(f"/embed/{SLUG}/counter"),
        client.get(f"/pledge/{SLUG}/privacy"),
        client.get("/widget.js"),
        client.get("/static/frame.js"),
        client.get(f"/api/pledges/{SLUG}/count"),
        client.get("/healthz"),
        client.get("/nothing-here"),
        client.get(f"/embed/{SLUG}", params={"token": "forged"}),
        signer.post(form),
        signer.post("forged"),
    ]
    for answer in answers:
        ancestors = frame_ancestors(answer)
        assert "*" not in ancestors, answer.url
        assert ancestors in ("'none'", PARTNER_ORIGIN), answer.url


def test_a_wildcard_in_the_direct_frame_setting_grants_no_framing(make_settings) -> None:
    """Refused at start-up with a sentence; and csp() itself would drop it anyway."""
    from widget_server.errors import ConfigError
    from widget_server.web.app import create_app
    from widget_server.web.edge.headers import csp

    for wildcard in ("*", "https://*"):
        settings = make_settings(direct_frame_origins=(wildcard, "https://campaign.example"))
        with pytest.raises(ConfigError, match="WIDGET_DIRECT_FRAME_ORIGINS"):
            create_app(settings)
    assert csp(("*", "https://*", "https://campaign.example")).endswith("frame-ancestors https://campaign.example")


def test_pages_other_than_the_widget_are_never_frameable(settings, make_client) -> None:
    """There are no staff pages yet; every page that is not the widget gets the staff-page rule."""
    make_pledge(settings)
    client = make_client(settings)
    for path in (f"/pledge/{SLUG}/privacy", "/nothing-here", f"/embed/{SLUG}?token=forged", "/healthz", "/widget.js"):
        answer = client.get(path)
        assert frame_ancestors(answer) == "'none'", path
        assert answer.headers["x-frame-options"] == "DENY", path


def test_an_embedding_origin_the_token_does_not_allow_is_refused(signer: Signer) -> None:
    client, token = signer.client, signer.token
    by_parent = client.get(f"/embed/{SLUG}", params={"token": token, "parent": "https://lookalike.example"})
    by_referer = client.get(
        f"/embed/{SLUG}",
        params={"token": token},
        headers={"Referer": "https://lookalike.example/page", "Sec-Fetch-Dest": "iframe"},
    )
    counter = client.get(f"/embed/{SLUG}/counter", params={"token": token, "parent": "https://lookalike.example"})
    for refused in (by_parent, by_referer, counter):
        assert refused.status_code == 403
        assert unescaped(WRONG_SITE) in unescaped(refused.text)
        assert frame_ancestors(refused) == "'none'"
        assert "lookalike" not in refused.headers["content-security-policy"]
    allowed = client.get(f"/embed/{SLUG}", params={"token": token}, headers={"Referer": PARTNER_ORIGIN + "/campaign"})
    assert allowed.status_code == 200


def test_a_top_level_visit_never_grants_framing_to_its_referrer(signer: Signer) -> None:
    """A shared link opened as a page may come from anywhere, but framing stays the partner's."""
    client, token = signer.client, signer.token
    page = client.get(
        f"/pledge/{SLUG}",
        params={"token": token},
        headers={"Referer": "https://social.example/post", "Sec-Fetch-Dest": "document"},
    )
    assert page.status_code == 200
    assert frame_ancestors(page) == PARTNER_ORIGIN
    assert "data-parent-origin" not in page.text


@pytest.mark.parametrize(
    "origin",
    [
        "https://*",
        "https://*.example.org",
        "*",
        "https://good.example evil.example",
        "https://good.example;script-src *",
        "https://good.example,https://evil.example",
        "https://'self'",
        "https://good_example.org",
        "https://good..example",
        "javascript://good.example",
        "https://good.example/path",
        "https://user@good.example",
    ],
)
def test_partner_origins_that_would_widen_the_frame_policy_are_refused(origin: str) -> None:
    """A wildcard would let any site frame the form; a space or ';' would add sources or directives."""
    with pytest.raises(Invalid):
        normalise_origin(origin)


def test_origins_are_stored_as_browsers_send_them() -> None:
    assert normalise_origin("https://Bücher.Example:443/") == "https://xn--bcher-kva.example"
    assert normalise_origin("http://localhost:8001") == "http://localhost:8001"
    assert normalise_origin("http://[0:0::1]:8080") == "http://[::1]:8080"


def test_the_frame_policy_drops_anything_that_is_not_an_exact_origin() -> None:
    """Defence in depth for partner rows written before origins were checked this strictly."""
    policy = csp(["https://*", "https://ok.example", "https://x.example;script-src *", "https://a b"])
    assert policy.endswith("; frame-ancestors https://ok.example")
    assert csp(["*"]).endswith("frame-ancestors 'none'")


def test_frame_messages_name_the_exact_parent_origin(signer: Signer) -> None:
    """postMessage goes only to the origin the server verified, and is received only from it."""
    client, token = signer.client, signer.token
    framed = client.get(f"/embed/{SLUG}", params={"token": token, "parent": PARTNER_ORIGIN})
    assert f'data-parent-origin="{PARTNER_ORIGIN}"' in framed.text
    unframed = client.get(f"/embed/{SLUG}", params={"token": token})
    assert "data-parent-origin" not in unframed.text
    frame_js = (ROOT / "static" / "frame.js").read_text()
    assert "postMessage(message, parentOrigin)" in frame_js
    assert '"*"' not in frame_js and "'*'" not in frame_js
    if 'addEventListener("message"' in frame_js:
        assert "event.origin !== parentOrigin" in frame_js
    widget_js = (ROOT / "static" / "widget.js").read_text()
    assert "event.origin !== server" in widget_js
    assert '"*"' not in widget_js and "'*'" not in widget_js


def test_a_refusal_after_the_form_is_read_is_shown_inside_the_partners_frame(make_settings, make_client, clock) -> None:
    """Without JavaScript the answer replaces the frame's page: framing it 'none' would show a
    blocked frame instead of the sentence."""
    settings = make_settings(rate_limit="1/minute")
    make_pledge(settings)
    client = make_client(settings)
    token = make_partner(settings).token
    signer = Signer(client, clock, token=token)
    form = signer.form()
    clock.advance(5)
    assert signer.post(form, email="a@example.org").status_code == 200
    limited = signer.post(form, email="b@example.org")
    assert limited.status_code == 429
    assert frame_ancestors(limited) == PARTNER_ORIGIN
    assert "x-frame-options" not in limited.headers
    # A post whose form cannot even be read is refused without granting any framing.
    unreadable = signer.post("forged", email="c@example.org")
    assert unreadable.status_code == 429
    assert frame_ancestors(unreadable) == "'none'"
