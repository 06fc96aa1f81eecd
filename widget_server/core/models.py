"""Plain records passed between the queries, the domain and the views."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field

ATTRIBUTION_PARAMS = ("source", "utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")


@dataclass(frozen=True)
class Pledge:
    id: int
    slug: str
    title: str
    statement_html: str
    goal: int | None
    privacy_url: str | None
    contact: str | None
    # Not part of equality: a page kept for this pledge (pagecache) fills its count in itself,
    # so a row re-read with a higher count is still the same page.
    signature_count: int = field(compare=False)

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Pledge:
        return cls(
            id=row["id"],
            slug=row["slug"],
            title=row["title"],
            statement_html=row["statement_html"],
            goal=row["goal"],
            privacy_url=row["privacy_url"],
            contact=row["contact"],
            signature_count=row["signature_count"],
        )


@dataclass(frozen=True)
class Partner:
    id: int
    pledge_id: int
    name: str
    origins: tuple[str, ...]
    token_version: int
    revoked: bool
    signature_count: int = field(compare=False)  # as for Pledge

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Partner:
        return cls(
            id=row["id"],
            pledge_id=row["pledge_id"],
            name=row["name"],
            origins=tuple(json.loads(row["origins"])),
            token_version=row["token_version"],
            revoked=row["revoked_at"] is not None,
            signature_count=row["signature_count"],
        )


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


@dataclass(frozen=True)
class Counts:
    """The pledge's total, and the partner's share when one is asked for."""

    total: int
    partner: int | None = None
