"""The confirmation email itself: plain text and a simple HTML part in the pledge's words, the link,
the privacy notice and the campaign's contact, why it came; no image, no tracking, no rewritten
link, nothing the signer typed in its body; and headers that no name can add to."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import json
import re
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, cast

import pytest

from tests.conftest import STATEMENT
from widget_server.core.models import NewSignature, Pledge
from widget_server.delivery.mail import Mail
from widget_server.security.tokens import Tokens
from widget_server.services.confirmation import Confirmation, duration, plain_text
from widget_server.settings import Settings
from widget_server.storage.store import PendingSignature, Store

CORPUS = Path(__file__).resolve().parents[1] / "data" / "naughty-strings.json"
KEY = "k" * 40
PLEDGE = Pledge(
    id=3,
    slug="data-firewall",
    title="Keep our data safe",
    statement_html=STATEMENT
    + "<ul><li>One &amp; two</li></ul>"
    + '<p><a href="https://campaign.example/why" target="_blank" rel="noopener noreferrer">Why</a></p>',
    goal=1000,
    privacy_url=None,
    contact="write to privacy@campaign.example",
    signature_count=10,
    confirm_email=True,
)


def confirmation(**overrides: Any) -> Confirmation:
    values: dict[str, Any] = {
        "secret_key": KEY,
        "public_url": "https://widgets.campaign.example",
        "smtp_url": "smtp://127.0.0.1:2525",
        "mail_from": "Keep our data safe <pledge@campaign.example>",
    }
    values.update(overrides)
    settings = Settings.from_env(environ={}, **values)
    return Confirmation(cast(Store, None), settings, Tokens(settings.signing_keys()), clock=lambda: 1_790_000_100.0)


def pending(name: str = "Ana Teacher", address: str = "ana@example.org") -> PendingSignature:
    signature = NewSignature(
        pledge_id=3, partner_id=None, email=address, name=name, created_at="2026-09-21T13:46:40Z", pending=True
    )
    return PendingSignature(id=41, signature=signature, sends=1, reminded=False)


def wire(message: Mail) -> EmailMessage:
    """The message as the mail server gets it, parsed back."""
    parsed = email.message_from_bytes(message.data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def body(message: EmailMessage, subtype: str) -> str:
    part = message.get_body(preferencelist=(subtype,))
    assert part is not None and part.get_content_subtype() == subtype
    return str(part.get_content())


class Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))


def tags(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Tags()
    parser.feed(html)
    return parser.tags


def test_the_email_is_text_and_html_in_the_pledges_words_with_its_link() -> None:
    sender = confirmation()
    message = wire(sender.email(pending(), PLEDGE))
    assert message.get_content_type() == "multipart/alternative"
    assert message["Subject"] == "Please confirm your signature: Keep our data safe"
    assert message["From"] == "Keep our data safe <pledge@campaign.example>"
    assert message["To"] == "ana@example.org"
    assert re.fullmatch(r"<[^@\s]+@campaign\.example>", message["Message-ID"])
    assert message["Date"] == "Mon, 21 Sep 2026 14:15:00 +0000"
    assert message["Auto-Submitted"] == "auto-generated"

    text, html = body(message, "plain"), body(message, "html")
    link = sender.link(pending())
    assert link.startswith("https://widgets.campaign.example/confirm/")
    for part in (text, html):
        assert link in part
        assert "https://widgets.campaign.example/pledge/data-firewall/privacy" in part
        assert "write to privacy@campaign.example" in part
        assert "Someone, hopefully you, signed the pledge" in part
        assert "If it was not you, ignore this email" in part and "14 days after signing" in part
        assert "Keep our data safe" in part
    # The statement as text in the text part (its links spelt out), as HTML in the HTML part.
    assert "We ask public services to keep personal data away from enforcement." in text
    assert "- One & two" in text and "Why (https://campaign.example/why)" in text
    assert "<strong>" not in text and "<strong>away</strong>" in html


def test_no_image_no_tracking_no_remote_content_and_no_rewritten_link() -> None:
    sender = confirmation()
    html = body(wire(sender.email(pending(), PLEDGE)), "html")
    found = tags(html)
    names = {tag for tag, _ in found}
    assert not names & {"img", "script", "iframe", "link", "object", "embed", "video", "audio", "style", "form"}
    assert not any("src" in attrs or "style" in attrs or "background" in attrs for _, attrs in found)
    links = [attrs["href"] for tag, attrs in found if tag == "a"]
    # Exactly the confirmation link, the statement's own link as staff wrote it, and the privacy notice.
    assert links == [
        sender.link(pending()),
        "https://campaign.example/why",
        "https://widgets.campaign.example/pledge/data-firewall/privacy",
    ]


def test_the_reminder_says_so_and_carries_a_link_that_works_the_same() -> None:
    sender = confirmation()
    message = wire(sender.email(pending(), PLEDGE, remind=True))
    assert message["Subject"] == "Reminder: please confirm your signature: Keep our data safe"
    assert "A reminder: your signature does not count yet." in body(message, "plain")
    assert sender.link(pending()) in body(message, "plain")
    assert "You may get one reminder" not in body(message, "plain")


def test_the_pledges_own_privacy_notice_is_linked_whole() -> None:
    sender = confirmation()
    for url, shown in (
        ("https://campaign.example/privacy", "https://campaign.example/privacy"),
        ("/privacy-notice", "https://widgets.campaign.example/privacy-notice"),
    ):
        pledge = Pledge(**{**PLEDGE.__dict__, "privacy_url": url, "contact": None})
        text = body(wire(sender.email(pending(), pledge)), "plain")
        assert f"How your details are used: {shown}" in text
        assert "To change how you are contacted" not in text


def test_the_signers_name_is_nowhere_in_the_email() -> None:
    """Anyone can type anyone's address: what they type as a name must not become the campaign's
    words in someone else's mailbox, not even as the To header's display name."""
    name = "Win a prize at https://phish.example/now"
    sent = confirmation().email(pending(name=name), PLEDGE)
    assert b"phish" not in sent.data and b"Win a prize" not in sent.data
    assert (sent.sender, sent.recipient) == ("pledge@campaign.example", "ana@example.org")


def test_an_international_domain_is_sent_in_ascii() -> None:
    message = wire(confirmation().email(pending(address="ana@bücher.example"), PLEDGE))
    assert message["To"].addresses[0].addr_spec == "ana@xn--bcher-kva.example"


NAMES = json.loads(CORPUS.read_text()) + [
    "Ana\r\nBcc: victim@elsewhere.example",
    "Ana\nSubject: free money",
    "Ana\rX-Injected: 1",
    "Ana\u2028Bcc: victim@elsewhere.example",
    "Ana\x85Bcc: victim@elsewhere.example",
    "=?utf-8?q?Ana=0D=0ABcc:_victim@elsewhere.example?=",
    '"Ana" <victim@elsewhere.example>, ',
    # Long enough for the email package to fold it, which drops the quotes around a name.
    "A" * 70 + ' <victim@elsewhere.example>, "',
]
HEADERS = ["Subject", "From", "To", "Date", "Message-ID", "Auto-Submitted", "MIME-Version", "Content-Type"]


@pytest.mark.parametrize("name", NAMES, ids=range(len(NAMES)))
def test_no_name_adds_a_header_or_a_recipient(name: str) -> None:
    """The corpus and line breaks of every kind, typed as the name (straight to the email, not
    through the form, which would clean them first): the headers stay these, and the one
    recipient stays the signer."""
    sent = confirmation().email(pending(name=name), PLEDGE)
    message = wire(sent)
    assert [key for key in message.keys()] == HEADERS
    # As a mail reader parses the bytes: one recipient, the signer.
    assert [a.addr_spec for a in message["To"].addresses] == ["ana@example.org"]
    assert "victim@" not in "".join(a.addr_spec for a in message["To"].addresses)
    raw = sent.data
    assert b"\nBcc:" not in raw and b"\nX-Injected:" not in raw and b"\nSubject: free" not in raw


def test_plain_text_keeps_paragraphs_and_lists_apart() -> None:
    assert plain_text("<p>One</p><p>Two<br>lines</p><blockquote>Quote</blockquote><ol><li>a</li><li>b</li></ol>") == (
        "One\n\nTwo\nlines\n\nQuote\n\n- a\n- b"
    )


def test_retention_is_said_in_words() -> None:
    assert [duration(h) for h in (336, 48, 36, 1, 0.5, 1 / 60)] == [
        "14 days",
        "2 days",
        "36 hours",
        "1 hour",
        "30 minutes",
        "1 minute",
    ]


def test_each_message_is_its_pledges_kept_email_with_its_own_address_link_date_and_id() -> None:
    """The kept email (built once per pledge) gives each message its own To, link, Date and
    Message-ID, and the same bytes as building that message whole would (bar the id)."""
    sender = confirmation()
    first, second = pending(), pending(address="ben@example.org")
    second = PendingSignature(id=42, signature=second.signature, sends=1, reminded=False)
    one, two = wire(sender.email(first, PLEDGE)), wire(sender.email(second, PLEDGE))
    assert (one["To"], two["To"]) == ("ana@example.org", "ben@example.org")
    assert sender.link(first) in body(one, "plain") and sender.link(second) in body(two, "plain")
    assert sender.link(first) not in body(two, "plain")
    assert one["Message-ID"] != two["Message-ID"]
    for message in (one, two):
        assert "invalid" not in message.as_string()  # no stand-in left anywhere
    # A pledge edited by staff: its next email is built again, in its new words.
    edited = sender.email(first, dataclasses.replace(PLEDGE, title="Keep our data safer"))
    assert wire(edited)["Subject"] == "Please confirm your signature: Keep our data safer"


def test_an_address_that_cannot_stand_in_a_header_as_it_is_is_built_whole() -> None:
    message = wire(confirmation().email(pending(address="anä@example.org"), PLEDGE))
    assert message["To"].addresses[0].addr_spec == "anä@example.org"
    assert "invalid" not in message.as_string()
