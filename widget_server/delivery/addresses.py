"""Where a webhook may be sent: the URL rules, and which network addresses are refused.

A partner's webhook URL is typed by campaign staff, but the host it names is controlled by whoever runs
its DNS. So the rules are checked twice: when the URL is set (`url_problem`), and at every delivery on
the addresses the name resolves to then (`refused_address`), and the connection goes to the address that
was checked, never to a fresh lookup (no DNS rebinding between the check and the connection). Without
WIDGET_WEBHOOK_ALLOW_LOCAL=on, only https:// URLs and public addresses are allowed: no loopback, private,
link-local (cloud metadata at 169.254.169.254), shared (100.64/10), multicast, reserved or unspecified
address, nor an IPv6 form that embeds one (IPv4-mapped, 6to4, NAT64, Teredo).
"""

from __future__ import annotations

import ipaddress
import re
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

from widget_server import messages

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: The longest webhook URL accepted.
MAX_URL_LENGTH = 2000

# Printable, no spaces, and none of the characters that end an attribute or a quoted string.
_NOT_IN_URLS = re.compile(r"[\s\"'<>\\`]")
_GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # the well-known prefix: the last 32 bits are an IPv4 address
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")
_TEREDO = ipaddress.ip_network("2001::/32")


@dataclass(frozen=True)
class Target:
    """A webhook URL taken apart: what to resolve, where to connect, and what to ask for."""

    scheme: str  # "https", or "http" when local targets are allowed
    host: str  # as DNS spells it (A-labels, lower case), or an IP address without brackets
    port: int
    target: str  # the path and query, as the request line carries them

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"


def is_public(address: IPAddress) -> bool:
    """True for an address on the public internet; False for anything local, private or special."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = address.ipv4_mapped or address.sixtofour
        if embedded is None and address in _NAT64:
            embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
        if embedded is not None:
            return is_public(embedded)
        if address not in _GLOBAL_UNICAST or address in _LOCAL_NAT64 or address in _TEREDO:
            return False
    return (
        address.is_global
        and not address.is_private
        and not address.is_multicast
        and not address.is_reserved
        and not address.is_loopback
        and not address.is_link_local
        and not address.is_unspecified
    )


def parse(url: str, local_allowed: bool) -> Target:
    """The URL taken apart, or ValueError with the sentence that says what is wrong with it."""
    if len(url) > MAX_URL_LENGTH or not url.isprintable() or _NOT_IN_URLS.search(url):
        raise ValueError(messages.WEBHOOK_URL_BAD)
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise ValueError(messages.WEBHOOK_URL_BAD) from None
    schemes = ("https", "http") if local_allowed else ("https",)
    if parts.scheme not in schemes:
        raise ValueError(messages.WEBHOOK_URL_BAD if local_allowed else messages.WEBHOOK_URL_NOT_HTTPS)
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError(messages.WEBHOOK_URL_CREDENTIALS)
    if parts.fragment or "#" in url:
        raise ValueError(messages.WEBHOOK_URL_BAD)
    host = (parts.hostname or "").rstrip(".")
    if not host or port == 0:
        raise ValueError(messages.WEBHOOK_URL_BAD)
    address = ip_literal(host)
    if address is None and (host.rsplit(".", 1)[-1].isdigit() or _numeric(host)):
        # Not a name (no top-level domain is a number), yet not an address either: 0177.1, 2130706433.
        raise ValueError(messages.WEBHOOK_URL_BAD)
    if address is None:
        try:
            host = idna.encode(host, uts46=True).decode("ascii")
        except idna.IDNAError:
            raise ValueError(messages.WEBHOOK_URL_BAD) from None
    else:
        host = str(address)
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    if not target.isascii():  # the request line is ASCII: a path in other letters is percent-encoded
        raise ValueError(messages.WEBHOOK_URL_BAD)
    return Target(parts.scheme, host, port or (443 if parts.scheme == "https" else 80), target)


def ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def _numeric(host: str) -> bool:
    """A number the resolver reads as an address though it is no address in a URL's rules
    (inet_aton's spellings: "0x7f000001", "2130706433", "0177.1")."""
    try:
        socket.inet_aton(host)
    except (OSError, ValueError):
        return False
    return True


def url_problem(url: str, local_allowed: bool) -> str | None:
    """Why a webhook URL cannot be set (a sentence for staff), or None when it can.

    Checks what can be known without a lookup: the scheme, no credentials, a host, and for an IP
    address or a name that means this machine (localhost), that it is public. A name is checked
    again, resolved, at every delivery.
    """
    try:
        target = parse(url, local_allowed)
    except ValueError as exc:
        return str(exc)
    if local_allowed:
        return None
    address = ip_literal(target.host)
    if address is not None and not is_public(address):
        return messages.WEBHOOK_URL_LOCAL
    if target.host == "localhost" or target.host.endswith(".localhost"):
        return messages.WEBHOOK_URL_LOCAL
    return None


def refused_address(addresses: list[IPAddress]) -> IPAddress | None:
    """The first of a name's resolved addresses that is not public (then none of them is used)."""
    return next((address for address in addresses if not is_public(address)), None)
