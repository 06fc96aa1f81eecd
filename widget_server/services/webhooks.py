"""Partner webhooks: set or switch off a partner's endpoint, and deliver each consenting signature to it.

A partner's webhook receives, for each signature that agreed to hear from that partner (once it counts:
confirmed, when the pledge asks for confirmation), one POST of JSON shaped as an OSDI signature with
its person, signed per the Standard Webhooks specification (webhook-id, webhook-timestamp,
webhook-signature: HMAC-SHA256 under a `whsec_` secret), so a partner verifies it with the published
`standardwebhooks` library in any language. docs/webhooks.md is the partner's description of it.

The outbox holds only the signature's id (storage/store.py, OutboxMessage): the body is built from the
signature as it is when sent, so an erased signature is never sent, and nothing of it is logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from widget_server import messages
from widget_server.core.models import NewSignature, Partner, Pledge
from widget_server.core.times import iso_utc
from widget_server.delivery import addresses, http
from widget_server.delivery.errors import Dropped
from widget_server.errors import Invalid
from widget_server.services.partners import find_partner
from widget_server.services.pledges import find_pledge
from widget_server.settings import Settings
from widget_server.storage.store import OutboxMessage, Store

SECRET_PREFIX = "whsec_"
#: Random bytes in a secret: the specification asks for 24 to 64.
SECRET_BYTES = 32
#: Names this service in OSDI identifiers ("system:id"), so a partner's CRM can tell them from its own.
SYSTEM = "pledge_widgets"

Post = Callable[..., Awaitable[int]]


def new_secret() -> str:
    """A fresh signing secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode("ascii")


def signature_header(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The webhook-signature header: "v1," and the base64 HMAC-SHA256 of "id.timestamp.body" under the
    secret's decoded bytes."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    mac = hmac.new(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode("ascii")


def webhook_id(message: OutboxMessage) -> str:
    """The delivery's stable id: the same on every attempt, so a receiver can drop a duplicate."""
    return f"msg_{message.id}"


# Setting and removing a partner's webhook ---------------------------------------------------------


@dataclass(frozen=True)
class WebhookSet:
    """A webhook just set: its partner, URL and the secret, which is shown this once."""

    pledge: Pledge
    partner: Partner
    url: str
    secret: str


def checked_url(url: str, settings: Settings) -> str:
    """The URL as given, or Invalid with the sentence that says which rule it breaks."""
    url = url.strip()
    if not url:
        raise Invalid(messages.WEBHOOK_URL_MISSING)
    problem = addresses.url_problem(url, settings.webhook_local_allowed)
    if problem is not None:
        raise Invalid(problem)
    return url


async def set_webhook(store: Store, settings: Settings, slug: str, name: str, url: str) -> WebhookSet:
    """Point a partner's webhook at `url` with a new secret (an old secret stops verifying)."""
    pledge = await find_pledge(store, slug)
    partner = await find_partner(store, pledge, name)
    url = checked_url(url, settings)
    secret = new_secret()
    saved = await store.set_partner_webhook(partner.id, url, secret)
    return WebhookSet(pledge, saved, url, secret)


async def remove_webhook(store: Store, slug: str, name: str) -> tuple[Pledge, Partner, bool]:
    """Switch a partner's webhook off; messages still queued for it are dropped when they fall due.
    The bool is False when it had none."""
    pledge = await find_pledge(store, slug)
    partner = await find_partner(store, pledge, name)
    had = await store.partner_webhook(partner.id) is not None
    saved = await store.set_partner_webhook(partner.id, None, None) if had else partner
    return pledge, saved, had


def audit_detail(url: str) -> str:
    """What the audit log keeps of a webhook URL: its scheme and host (a path may be a secret of the
    partner's, as some CRMs put one in it)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


# Delivering -------------------------------------------------------------------------------------


class Webhooks:
    """The outbox handler for "webhook" messages: builds, signs and POSTs one signature."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        clock: Callable[[], float] = time.time,
        post: Post = http.post_json,
    ) -> None:
        self._store = store
        self._settings = settings
        self._clock = clock
        self._post = post

    async def deliver(self, message: OutboxMessage) -> None:
        """Send it (returns), or DeliveryFailed (try again later), or Dropped (nothing to send any more)."""
        signature = await self._store.signature_by_id(message.ref_id)
        if signature is None:
            raise Dropped(messages.DROPPED_SIGNATURE_GONE)
        # Checked again here, whatever queued it: without that consent nothing goes to the partner.
        if message.partner_id is None or signature.partner_id != message.partner_id or not signature.opt_in_partner:
            raise Dropped(messages.DROPPED_NO_CONSENT)
        webhook = await self._store.partner_webhook(message.partner_id)
        partner = await self._store.partner_by_id(message.partner_id)
        pledge = await self._store.pledge_by_id(signature.pledge_id)
        if webhook is None or partner is None or pledge is None:
            raise Dropped(messages.DROPPED_NO_WEBHOOK)
        if partner.revoked:  # switched off by the campaign: no more of its signers' data goes to it
            raise Dropped(messages.DROPPED_PARTNER_REVOKED)
        url, secret = webhook
        now = self._clock()
        body = json.dumps(
            payload(message, signature, pledge, partner, self._settings.public_url, now),
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()
        await self._post(
            url,
            body,
            signed_headers(secret, webhook_id(message), int(now), body),
            local_allowed=self._settings.webhook_local_allowed,
        )


def signed_headers(secret: str, message_id: str, timestamp: int, body: bytes) -> Sequence[tuple[str, str]]:
    return (
        ("webhook-id", message_id),
        ("webhook-timestamp", str(timestamp)),
        ("webhook-signature", signature_header(secret, message_id, timestamp, body)),
    )


def payload(
    message: OutboxMessage, signature: NewSignature, pledge: Pledge, partner: Partner, public_url: str, now: float
) -> dict[str, object]:
    """The delivery's JSON: Standard Webhooks' envelope (type, timestamp, data) around an OSDI signature.

    Only what the signer typed and agreed to share, and where they signed: never their network
    address, client mark or anything the service infers.
    """
    person: dict[str, object] = {**_names(signature.name)}
    person["email_addresses"] = [{"address": signature.email, "primary": True}]
    if signature.occupation:
        person["work_title"] = signature.occupation
    if signature.organisation:
        person["employer"] = signature.organisation
    referrer: dict[str, object] = {}
    if signature.attribution.get("source"):
        referrer["source"] = signature.attribution["source"]
    if signature.origin:
        referrer["website"] = urlsplit(signature.origin).hostname or signature.origin
        referrer["url"] = signature.origin
    utm = {k: v for k, v in signature.attribution.items() if k.startswith("utm_") and v}
    if utm:
        referrer["utm"] = utm
    pledge_url = public_url.rstrip("/") + pledge.page_path
    return {
        "type": "signature.created",
        "timestamp": iso_utc(now),
        "data": {
            "identifiers": [f"{SYSTEM}:signature-{message.ref_id}"],
            "created_date": signature.created_at,
            "petition": {
                "identifiers": [f"{SYSTEM}:pledge-{pledge.slug}"],
                "title": pledge.title,
                "browser_url": pledge_url,
            },
            "partner": {"name": partner.name},
            "person": person,
            "referrer_data": referrer,
            "consent": {"partner_contact": True, "campaign_updates": signature.opt_in_updates},
        },
    }


def _names(name: str) -> dict[str, str]:
    """OSDI's given and family names from the one name the form asks for: the last word as the family
    name is a guess, so the name as typed goes too."""
    words = name.split()
    if len(words) < 2:
        return {"given_name": name.strip(), "name": name}
    return {"given_name": " ".join(words[:-1]), "family_name": words[-1], "name": name}
