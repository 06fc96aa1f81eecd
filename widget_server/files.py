"""Where the files that ship beside the code are: the templates, the static assets, the example page.

In the repository they are templates/, static/ and examples/, beside the package; a built wheel
carries them inside it, as widget_server/_templates, _static and _examples (pyproject.toml maps
them there). One rule: the package's own copy when it has one (an installed wheel), else the
repository's folder (a checkout, or an editable install, which puts the package's code in place
but cannot make those folders importable under the package's name).
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

_CHECKOUT = Path(__file__).resolve().parent.parent


def _shipped(packaged: str, in_checkout: str) -> Path:
    """The folder `packaged` inside the installed package, or `in_checkout` in the repository."""
    inside = files("widget_server") / packaged
    # Jinja and the asset loader need real paths; wheels install as plain files, never zipped.
    if isinstance(inside, Path) and inside.is_dir():
        return inside
    return _CHECKOUT / in_checkout


TEMPLATES_DIR = _shipped("_templates", "templates")
STATIC_DIR = _shipped("_static", "static")
EXAMPLE_PAGE = _shipped("_examples", "examples") / "embed.html"
