"""Where the files that ship beside the code are: the templates, the static assets, the example page."""

from __future__ import annotations

from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent

TEMPLATES_DIR = _CHECKOUT / "templates"
STATIC_DIR = _CHECKOUT / "static"
EXAMPLE_PAGE = _CHECKOUT / "examples" / "embed.html"
