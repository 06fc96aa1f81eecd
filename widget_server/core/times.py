"""Time as the service stores it: UTC, to the second, ISO 8601 with a Z."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def iso_utc(seconds: float) -> str:
    """`seconds` since the epoch as stored with every row, e.g. 2026-11-30T02:10:00Z."""
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_now() -> str:
    return iso_utc(time.time())
