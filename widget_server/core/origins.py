"""Partner origins as browsers write them: scheme://host[:port], lower case, no path.

An origin ends up verbatim in a Content-Security-Policy header (`frame-ancestors`), so only a
real host name or IP address gets through: no wildcards (`https://*` would let every site frame
the form), no spaces or semicolons (which would add sources or whole directives to the policy).

Host names go through IDNA 2008 with the UTS #46 mapping, as browsers process them
(`ascii_domain`): the same function spells the domain of a signer's email (`signform`).
"""

from __future__ import annotations

import ipaddress
import re
from urllib.parse import urlsplit

import idna

from widget_server.errors import Invalid

_DEFAULT_PORTS = {"http": 80, "https": 443}
_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)\Z")  # \Z: "$" would let a final newline through
_MAX_DOMAIN = 253  # octets of the ASCII form, without a final dot (RFC 1035)


def ascii_domain(name: str) -> str | None:
    """A domain name as browsers send it (IDNA 2008 A-labels after UTS #46 mapping), or None.

    'Bücher.Example', 'ｂüｃｈｅｒ。ｅｘａｍｐｌｅ' and 'xn--bcher-kva.example' all give
    'xn--bcher-kva.example': case, full-width forms, the ideographic and full-width dots and
    ignorable code points (variation selectors, soft hyphens) map away, and 'faß.de' keeps its ß
    ('xn--fa-hia.de'; IDNA 2003 made it 'fass.de', another domain). None when the name does not
    map, has an empty or over-long label, or is longer than 253 octets. An A-label is accepted
    only as the canonical spelling of a valid U-label.

    ASCII labels that are not A-labels are checked as browsers check them (letters, digits and
    hyphens, no hyphen first or last; a hyphen pair in the third and fourth place is allowed,
    as in real host names), so an ASCII name gives the same answer by both paths below.
    """
    if name.isascii() and "xn--" not in name.lower():
        # UTS #46 maps ASCII only by lower-casing it, and no label here is an A-label: the slow
        # path's answer, without it (tests/unit/test_signform_properties.py).
        host = name.lower()
        if len(host) > _MAX_DOMAIN:
            return None
        for label in host.split("."):
            if not _LABEL.match(label):
                return None
        return host
    return _ascii_domain_slowly(name)


def _ascii_domain_slowly(name: str) -> str | None:
    try:
        mapped = idna.uts46_remap(name, std3_rules=True)
        host = ".".join(_a_label(label) for label in mapped.split("."))
    except UnicodeError:  # idna.IDNAError and its kinds are UnicodeErrors
        return None
    return host if len(host) <= _MAX_DOMAIN else None


def _a_label(label: str) -> str:
    """One label of a mapped name as its A-label; IDNAError when it has none."""
    if label.isascii() and not label.startswith("xn--"):
        if not _LABEL.match(label):
            raise idna.IDNAError(f"not a host name label: {label!r}")
        return label
    if label.isascii():
        # Typed as an A-label: good only if it is exactly what its own U-label encodes to, so
        # that no second spelling of one name (a non-canonical Punycode) gets through.
        unicode_label = idna.ulabel(label)
        if idna.alabel(idna.uts46_remap(unicode_label, std3_rules=True)).decode("ascii") != label:
            raise idna.IDNAError(f"not the canonical A-label of {unicode_label!r}")
        return label
    return idna.alabel(label).decode("ascii")


def unicode_domain(host: str) -> str:
    """The U-label spelling of a name `ascii_domain` returned: A-labels decoded, the rest as is."""
    if "xn--" not in host:
        return host
    return ".".join(idna.ulabel(label) if label.startswith("xn--") else label for label in host.split("."))


def _host(hostname: str) -> str | None:
    """The host as a browser's Origin header spells it (punycode, brackets), or None if invalid."""
    if ":" in hostname:
        try:
            return f"[{ipaddress.IPv6Address(hostname).compressed}]"
        except ValueError:
            return None
    return ascii_domain(hostname)


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
