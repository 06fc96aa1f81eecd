"""Sanitising the rich text that staff write (the pledge statement), once, when it is saved.

bleach is no longer maintained, so it stays behind this one function; swapping it for nh3
means changing this module and keeping tests/test_richtext.py green.
"""

from __future__ import annotations

from collections.abc import MutableMapping

import bleach

# What bleach hands a linkify callback: attributes keyed by (namespace, name).
LinkAttrs = MutableMapping[tuple[str | None, str], str]

ALLOWED_TAGS = frozenset({"p", "br", "strong", "em", "b", "i", "ul", "ol", "li", "blockquote", "a"})
ALLOWED_ATTRIBUTES = {"a": ["href", "title"]}
ALLOWED_PROTOCOLS = frozenset({"https", "http", "mailto"})


def sanitise(html: str) -> str:
    """Keep a small allowlist of tags; drop everything else (scripts, styles, handlers)."""
    cleaned = bleach.clean(
        html,
        tags=ALLOWED_TAGS,
        attributes=ALLOWED_ATTRIBUTES,
        protocols=ALLOWED_PROTOCOLS,
        strip=True,
        strip_comments=True,
    )
    # Links in the statement leave the widget: open them outside it, without a referrer.
    return str(bleach.linkify(cleaned, callbacks=[_external_link], parse_email=False))


def _external_link(attrs: LinkAttrs, new: bool = False) -> LinkAttrs:
    attrs[(None, "target")] = "_blank"
    attrs[(None, "rel")] = "noopener noreferrer"
    return attrs
