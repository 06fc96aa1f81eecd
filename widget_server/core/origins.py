"""Partner origins as browsers write them: scheme://host[:port], lower case, no path.

An origin ends up verbatim in a Content-Security-Policy header (`frame-ancestors`), so only a
real host name or IP address gets through: no wildcards (`https://*` would let every site frame
the form), no spaces or semicolons (which would add sources or whole directives to the policy).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

from widget_server.errors import Invalid

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def _host(hostname: str) -> str | None:
    """The host as a browser's Origin header spells it (punycode, brackets), or None if invalid."""
    if ":" in hostname:
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            return None
    try:
        ascii_host = hostname.encode("idna").decode("ascii").lower()
    except UnicodeError:
        return None
    if len(ascii_host) > 253 or not all(_LABEL.match(label) for label in ascii_host.split(".")):
        return None
    return ascii_host


def normalise_origin(url: str) -> str:
    """'https://Example.org:443/' → 'https://example.org'; anything else is refused."""
    problem = f"An origin looks like https://example.org (scheme and host, no path), not {url!r}."
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise Invalid(problem) from None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        raise Invalid(problem)
    if parts.path not in ("", "/") or parts.query or parts.fragment or parts.username:
        raise Invalid(problem)
    host = _host(parts.hostname)
    if host is None:
        raise Invalid(problem)
    if port and port != _DEFAULT_PORTS[parts.scheme]:
        return f"{parts.scheme}://{host}:{port}"
    return f"{parts.scheme}://{host}"
