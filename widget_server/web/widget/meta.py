"""What the templates compute beyond their context: the static files' content-hashed URLs and a
pledge's meta description. Registered on the Jinja environment by `install`."""

from __future__ import annotations

import functools
import html
import re
from html.parser import HTMLParser

import jinja2

from widget_server.web.widget.assets import Assets

# Search engines show about this many characters of a description.
DESCRIPTION_CHARS = 155
_SPACE = re.compile(r"\s+")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.parts.append(" ")  # a new paragraph is a new sentence, not a glued word

    def handle_endtag(self, tag: str) -> None:
        self.parts.append(" ")


@functools.lru_cache(maxsize=256)
def description(statement_html: str, fallback: str = "") -> str:
    """The statement as plain text, cut at a word to DESCRIPTION_CHARS with an ellipsis
    (`fallback`, e.g. the title, when the statement has no text). Unescaped: the template escapes."""
    parser = _Text()
    parser.feed(statement_html)
    parser.close()
    text = _SPACE.sub(" ", html.unescape("".join(parser.parts))).strip()
    if not text:
        return fallback
    if len(text) <= DESCRIPTION_CHARS:
        return text
    cut = text[: DESCRIPTION_CHARS - 1]
    if " " in cut:
        cut = cut[: cut.rindex(" ")]
    return cut.rstrip(" ,;:.–—") + "…"


def install(environment: jinja2.Environment, assets: Assets) -> None:
    """Give the templates `static_url(name)` and the `description` filter."""
    environment.globals["static_url"] = assets.url
    environment.filters["description"] = description
