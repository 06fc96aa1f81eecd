"""SECURITY.md, threat 2: partner origins are spelled as browsers send them. Host names go through
IDNA 2008 with the UTS #46 mapping, as in browsers, so `--origin https://faß.de` frames the form
on the page a browser calls https://xn--fa-hia.de (IDNA 2003 made it fass.de, another domain),
and every way of writing one host is stored once, the same way."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from starlette.testclient import TestClient

from tests.conftest import FakeClock, Signer, make_partner, make_pledge
from tests.security.conftest import frame_ancestors
from widget_server.core.origins import normalise_origin
from widget_server.errors import Invalid
from widget_server.settings import Settings


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://faß.de", "https://xn--fa-hia.de"),
        ("https://FAß.DE/", "https://xn--fa-hia.de"),
        ("https://xn--fa-hia.de", "https://xn--fa-hia.de"),
        ("https://straße.example:8443", "https://xn--strae-oqa.example:8443"),
        ("https://ｂüｃｈｅｒ．ｅｘａｍｐｌｅ", "https://xn--bcher-kva.example"),  # full-width
        ("https://bücher。example", "https://xn--bcher-kva.example"),  # ideographic full stop
        ("https://bücher｡example", "https://xn--bcher-kva.example"),  # half-width ideographic full stop
        ("https://bü\ufe0fcher.example", "https://xn--bcher-kva.example"),  # variation selector
        ("https://bü\u00adcher.example", "https://xn--bcher-kva.example"),  # soft hyphen
        ("https://bu\u0308cher.example", "https://xn--bcher-kva.example"),  # decomposed ü
        ("https://XN--BCHER-KVA.example", "https://xn--bcher-kva.example"),
        ("https://ς.example", "https://xn--3xa.example"),  # final sigma stays itself, as ß does
        # A hyphen pair in the third and fourth place is a real host name in browsers.
        ("https://r2---sn-abc.example", "https://r2---sn-abc.example"),
    ],
)
def test_origins_are_normalised_with_idna_2008_as_browsers_do(typed: str, stored: str) -> None:
    assert normalise_origin(typed) == stored


@pytest.mark.parametrize(
    "origin",
    [
        "https://\u2603.example",  # IDNA 2003 spelled it xn--n3h; IDNA 2008 has no such name
        "https://xn---bbk.example",  # not the canonical Punycode of its U-label
        "https://xn--abc.example",  # not Punycode
        "https://ex\u200dample.org",  # a zero-width joiner where no script needs one
        "https://exam\u200eple.org",  # a left-to-right mark
    ],
)
def test_a_host_that_does_not_map_is_refused(origin: str) -> None:
    with pytest.raises(Invalid):
        normalise_origin(origin)


def test_a_partner_added_as_fass_de_is_framed_on_the_page_browsers_call_xn__fa_hia_de(
    settings: Settings, make_client: Callable[..., TestClient], clock: FakeClock
) -> None:
    make_pledge(settings)
    creds = make_partner(settings, origins=("https://faß.de",))
    assert list(creds.partner.origins) == ["https://xn--fa-hia.de"]
    client = make_client(settings)
    framed = Signer(client, clock, token=creds.token, parent="https://xn--fa-hia.de").embed()
    assert framed.status_code == 200, framed.text
    assert frame_ancestors(framed) == "https://xn--fa-hia.de"
    # The IDNA 2003 spelling is another site: it may not frame the form.
    elsewhere = Signer(client, clock, token=creds.token, parent="https://fass.de").embed()
    assert elsewhere.status_code == 403
