"""Plain records passed between the queries, the domain and the views."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

ATTRIBUTION_PARAMS = ("source", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")

# A signature as exported (CSV) and as every engine's export_rows yields it, in this order.
EXPORT_COLUMNS = (
    "created_at",
    "email",
    "name",
    "occupation",
    "organisation",
    "partner",
    "origin",
    *ATTRIBUTION_PARAMS,
    "opt_in_updates",
    "opt_in_partner",
)


@dataclass(frozen=True)
class Pledge:
    id: int
    slug: str
    title: str
    statement_html: str
    goal: int | None
    privacy_url: str | None
    contact: str | None
    signature_count: int
    # Set by staff (the staff area, `pledge edit`): a closed pledge refuses signatures, and the
    # form asks only the optional questions named here.
    closed: bool = False
    optional_fields: tuple[str, ...] = ("occupation", "organisation")
    # Set by staff: a signature counts only once confirmed from the signer's mailbox.
    confirm_email: bool = False

    @property
    def page_path(self) -> str:
        """The pledge's own page on this service (its form, for shared links)."""
        return f"/pledge/{self.slug}"

    @property
    def privacy_link(self) -> str:
        """The privacy notice: the campaign's own, or this service's page for the pledge (a path)."""
        return self.privacy_url or f"{self.page_path}/privacy"


@dataclass(frozen=True)
class Partner:
    id: int
    pledge_id: int
    name: str
    origins: tuple[str, ...]
    token_version: int
    revoked: bool
    signature_count: int
    # Where signatures that consented to this partner's contact are POSTed; None: no webhook.
    # (Its signing secret is read from the Store only when a delivery is signed.)
    webhook_url: str | None = None


@dataclass(frozen=True)
class NewSignature:
    """A validated, normalised signature on its way to the writer."""

    pledge_id: int
    partner_id: int | None
    email: str
    name: str
    occupation: str = ""
    organisation: str = ""
    opt_in_updates: bool = False
    opt_in_partner: bool = False
    origin: str = ""
    attribution: Mapping[str, str] = field(default_factory=dict)
    created_at: str = ""
    # A keyed hash of the client's network under a short-lived key (security.ratelimit), never
    # the address: lets staff see one client's burst (SECURITY.md, "Abuse marks").
    client_mark: str = ""
    # The pledge asks for confirmation: stored as pending (not counted) and a confirmation email
    # queued, until the signer follows the link (services/confirmation.py).
    pending: bool = False


@dataclass(frozen=True)
class Counts:
    """The pledge's total, and the partner's share when one is asked for."""

    total: int
    partner: int | None = None
