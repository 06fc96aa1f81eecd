"""Partner origins as browsers write them: scheme://host[:port], lower case, no path."""

from __future__ import annotations

from urllib.parse import urlsplit

from .errors import BadRequest

_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise_origin(url: str) -> str:
    """'https://Example.org:443/' → 'https://example.org'; anything else is refused."""
    problem = f"An origin looks like https://example.org (scheme and host, no path), not {url!r}."
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise BadRequest(problem) from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise BadRequest(problem)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise BadRequest(problem)
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    if port and port != _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}:{port}"
    return f"{parts.scheme}://{host}"
