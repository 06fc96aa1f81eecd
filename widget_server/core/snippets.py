"""The HTML a partner pastes: the script embed, the counter badge, and the plain iframe.

The two script snippets reserve, on their placeholder, the height the frame will have, so the
partner's page does not move when the frame arrives (the frame then reports its exact height
before it first paints). The badge is the same height at any width (static/widget.css sees to
it), so its reservation is exact. The form's height depends on its width and on the pledge's
statement; it is stated for a narrow frame (a phone) and a wide one, and the placeholder moves
between the two with the width of the window. Either way the reservation is only the first
height: a page whose rules forbid inline styles loses it, and the widget still works.
"""

from __future__ import annotations

import math
import re
from html import escape
from urllib.parse import urlencode

# Heights in CSS pixels, measured in Chromium on static/widget.css (tests/browser/test_layout.py
# checks them): the badge with and without its progress bar, and the form less its statement
# at a phone's width (content 328 px wide) and from 640 px up, where the form stops widening.
BADGE_HEIGHT = {True: 209, False: 145}
FORM_WITHOUT_STATEMENT = {"narrow": 1325, "wide": 1069}
STATEMENT_WIDTH = {"narrow": 328, "wide": 592}
# The window widths the two classes stand for; between them the reservation slides.
NARROW_WINDOW, WIDE_WINDOW = 360, 720
# A statement's paragraphs: lines of 24 px of about 9.7 px per character (the widest of the
# common system fonts, so the estimate errs tall), 12 px between paragraphs.
LINE_PX, CHAR_PX, GAP_PX = 24, 9.7, 12
# What a statement of the usual length (the demo's) comes to, for callers that do not give one.
TYPICAL_STATEMENT = {"narrow": 688, "wide": 376}

_BLOCK = re.compile(r"<(?:p|li|h[1-6]|blockquote)\b[^>]*>(.*?)</(?:p|li|h[1-6])>", re.S | re.I)
_TAG = re.compile(r"<[^>]+>")


def statement_height(statement_html: str, width: str) -> int:
    """About how tall the sanitised statement is in a frame of `width` class ("narrow" or "wide")."""
    text_width = STATEMENT_WIDTH[width]
    height = 0
    for block in _BLOCK.findall(statement_html):
        chars = len(" ".join(_TAG.sub(" ", block).split()))
        if chars:
            height += math.ceil(chars * CHAR_PX / text_width) * LINE_PX + GAP_PX
    return height


def form_heights(statement_html: str | None = None) -> dict[str, int]:
    """The sign form's expected height in a narrow and in a wide frame."""
    return {
        width: FORM_WITHOUT_STATEMENT[width]
        + (TYPICAL_STATEMENT[width] if statement_html is None else statement_height(statement_html, width))
        for width in ("narrow", "wide")
    }


def reservation(narrow: int, wide: int) -> str:
    """A min-height that is `narrow` in a window up to NARROW_WINDOW wide, `wide` from
    WIDE_WINDOW, and in between slides from one to the other with the window's width."""
    if narrow == wide:
        return f"min-height:{narrow}px"
    per_vw = (narrow - wide) * 100 / (WIDE_WINDOW - NARROW_WINDOW)
    at_zero = narrow + per_vw * NARROW_WINDOW / 100
    low, high = sorted((narrow, wide))
    return f"min-height:clamp({low}px,calc({at_zero:.0f}px - {per_vw:.2f}vw),{high}px)"


def script_snippet(public_url: str, slug: str, token: str, statement_html: str | None = None) -> str:
    heights = form_heights(statement_html)
    return (
        f'<div class="pledge-widget" data-pledge="{escape(slug)}" data-token="{escape(token)}"'
        f' style="{reservation(heights["narrow"], heights["wide"])}"></div>\n'
        f'<script async src="{escape(public_url)}/widget.js"></script>'
    )


def counter_snippet(public_url: str, slug: str, token: str, goal: int | None = None) -> str:
    goal_attr = f' data-goal="{goal:d}"' if goal else ""
    return (
        f'<div class="pledge-widget" data-kind="counter" data-pledge="{escape(slug)}"'
        f' data-token="{escape(token)}"{goal_attr} style="min-height:{BADGE_HEIGHT[bool(goal)]}px"></div>\n'
        f'<script async src="{escape(public_url)}/widget.js"></script>'
    )


def iframe_snippet(public_url: str, slug: str, token: str) -> str:
    """For CMSs that strip <script>: a fixed-height frame, no resizing. With no script to pass
    on the page's own `source`, the partner writes one into the frame's address."""
    src = f"{public_url}/embed/{slug}?{urlencode({'token': token, 'source': 'website'})}"
    return (
        f'<iframe src="{escape(src)}" title="Sign the pledge" loading="lazy"'
        ' style="display:block;width:100%;height:1500px;border:0"></iframe>\n'
        "<!-- source=website tells the campaign which of your pages a signature came from:"
        ' change "website" to a word of your own for each page, e.g. source=newsletter -->'
    )


def all_snippets(
    public_url: str, slug: str, token: str, goal: int | None, statement_html: str | None = None
) -> dict[str, str]:
    """The three snippets; give the pledge's `statement_html` for a form reservation fitted to it."""
    return {
        "snippet": script_snippet(public_url, slug, token, statement_html),
        "counter_snippet": counter_snippet(public_url, slug, token, goal),
        "iframe_snippet": iframe_snippet(public_url, slug, token),
    }
