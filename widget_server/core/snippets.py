"""The HTML a partner pastes: the script embed, the counter badge, and the plain iframe."""

from __future__ import annotations

from html import escape
from urllib.parse import urlencode


def script_snippet(public_url: str, slug: str, token: str) -> str:
    return (
        f'<div class="pledge-widget" data-pledge="{escape(slug)}" data-token="{escape(token)}"></div>\n'
        f'<script async src="{escape(public_url)}/widget.js"></script>'
    )


def counter_snippet(public_url: str, slug: str, token: str, goal: int | None = None) -> str:
    goal_attr = f' data-goal="{goal:d}"' if goal else ""
    return (
        f'<div class="pledge-widget" data-kind="counter" data-pledge="{escape(slug)}"'
        f' data-token="{escape(token)}"{goal_attr}></div>\n'
        f'<script async src="{escape(public_url)}/widget.js"></script>'
    )


def iframe_snippet(public_url: str, slug: str, token: str) -> str:
    """For CMSs that strip <script>: a fixed-height frame, no resizing."""
    src = f"{public_url}/embed/{slug}?{urlencode({'token': token})}"
    return (
        f'<iframe src="{escape(src)}" title="Sign the pledge" loading="lazy"'
        ' style="display:block;width:100%;height:1100px;border:0"></iframe>'
    )


def all_snippets(public_url: str, slug: str, token: str, goal: int | None) -> dict[str, str]:
    return {
        "snippet": script_snippet(public_url, slug, token),
        "counter_snippet": counter_snippet(public_url, slug, token, goal),
        "iframe_snippet": iframe_snippet(public_url, slug, token),
    }
