"""The webhook POST: one JSON body to one partner URL, over a connection to an address that was checked.

The host is resolved here (`loop.getaddrinfo`), every address it resolves to is checked
(delivery/addresses.py), and the connection goes to a checked address, so a DNS answer that changes
between the check and the connection cannot point the request into the campaign's own network. TLS
verifies the certificate against the host's name (`server_hostname`), whatever address was dialled.
The request is written with h11, so nothing on the way follows a redirect, retries, reads a proxy
from the environment or keeps a connection: an answer's status is read, and nothing beyond its head.
Every failure is a DeliveryFailed whose reason names neither the URL nor anything sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence

import h11

from widget_server import messages
from widget_server.delivery import addresses
from widget_server.delivery.addresses import IPAddress, Target
from widget_server.delivery.errors import DeliveryFailed

#: Dialling one address gives up after this long (then the next address the name resolved to is tried).
CONNECT_TIMEOUT = 5.0
#: The whole delivery (lookup, connection, TLS, request, the answer's head) gives up after this long.
TOTAL_TIMEOUT = 10.0
#: The most of an answer's head read; its body is never read.
MAX_ANSWER_HEAD = 16 * 1024
USER_AGENT = "widget-server-webhooks/1"

Resolver = Callable[[str, int], Awaitable[list[str]]]


async def resolve(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to now, in the resolver's order, each once."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


async def post_json(
    url: str,
    body: bytes,
    headers: Sequence[tuple[str, str]],
    *,
    local_allowed: bool,
    tls: ssl.SSLContext | None = None,
    resolver: Resolver = resolve,
    connect_timeout: float = CONNECT_TIMEOUT,
    total_timeout: float = TOTAL_TIMEOUT,
) -> int:
    """POST `body` as application/json with `headers` added; the 2xx status it was answered with, or
    DeliveryFailed (refused URL or address, no connection, a timeout, any other status)."""
    try:
        target = addresses.parse(url, local_allowed)
    except ValueError as exc:
        raise DeliveryFailed(messages.DELIVERY_URL_REFUSED.format(problem=str(exc))) from None
    problem = addresses.url_problem(url, local_allowed)
    if problem is not None:
        raise DeliveryFailed(messages.DELIVERY_URL_REFUSED.format(problem=problem))
    try:
        async with asyncio.timeout(total_timeout):
            dialled = await _checked_addresses(target, local_allowed, resolver)
            reader, writer = await _connect(target, dialled, tls, connect_timeout)
            try:
                status = await _exchange(reader, writer, target, body, headers)
            finally:
                writer.close()
                with contextlib.suppress(OSError, ssl.SSLError):
                    await writer.wait_closed()
    except TimeoutError:
        raise DeliveryFailed(messages.DELIVERY_TIMEOUT.format(seconds=total_timeout)) from None
    if 200 <= status < 300:
        return status
    if 300 <= status < 400:
        raise DeliveryFailed(messages.DELIVERY_REDIRECT.format(status=status))
    raise DeliveryFailed(messages.DELIVERY_STATUS.format(status=status))


async def _checked_addresses(target: Target, local_allowed: bool, resolver: Resolver) -> list[str]:
    literal = addresses.ip_literal(target.host)
    if literal is not None:
        found = [str(literal)]
    else:
        try:
            found = await resolver(target.host, target.port)
        except OSError as exc:  # socket.gaierror: no such name, or no DNS just now
            raise DeliveryFailed(messages.DELIVERY_NO_HOST.format(problem=_why(exc))) from None
    parsed: list[IPAddress] = []
    for text in found:
        address = addresses.ip_literal(text.split("%", 1)[0])
        if address is None:  # a resolver answer that is not an address: nothing to check, so not used
            raise DeliveryFailed(messages.DELIVERY_NO_HOST.format(problem="not an address"))
        parsed.append(address)
    if not parsed:
        raise DeliveryFailed(messages.DELIVERY_NO_HOST.format(problem="no address"))
    if not local_allowed:
        refused = addresses.refused_address(parsed)
        if refused is not None:
            raise DeliveryFailed(messages.DELIVERY_ADDRESS_REFUSED.format(address=refused))
    return found


async def _connect(
    target: Target, dialled: list[str], tls: ssl.SSLContext | None, timeout: float
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    context = None
    if target.scheme == "https":
        context = tls or ssl.create_default_context()
    problem = "no address"
    for address in dialled:
        try:
            return await asyncio.wait_for(
                asyncio.open_connection(
                    address,
                    target.port,
                    ssl=context,
                    server_hostname=target.host if context is not None else None,
                    limit=MAX_ANSWER_HEAD,
                ),
                timeout,
            )
        except ssl.SSLError as exc:  # the certificate, or TLS itself: another address would say the same
            raise DeliveryFailed(messages.DELIVERY_TLS.format(problem=_why(exc))) from None
        except (OSError, TimeoutError) as exc:
            problem = _why(exc)
    raise DeliveryFailed(messages.DELIVERY_CONNECT.format(problem=problem))


async def _exchange(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    target: Target,
    body: bytes,
    headers: Sequence[tuple[str, str]],
) -> int:
    connection = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_ANSWER_HEAD)
    request = h11.Request(
        method="POST",
        target=target.target,
        headers=[
            ("Host", target.host_header),
            ("User-Agent", USER_AGENT),
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(body))),
            ("Connection", "close"),
            *headers,
        ],
    )
    try:
        for event in (request, h11.Data(data=body), h11.EndOfMessage()):
            writer.write(connection.send(event) or b"")
        await writer.drain()
        while True:
            answer = connection.next_event()
            if answer is h11.NEED_DATA:
                connection.receive_data(await reader.read(4096))
            elif isinstance(answer, h11.InformationalResponse):
                continue  # 100 Continue and the like: the real answer follows
            elif isinstance(answer, h11.Response):
                return answer.status_code
            else:  # the connection closed before any answer
                raise DeliveryFailed(messages.DELIVERY_BAD_ANSWER)
    except h11.ProtocolError:
        raise DeliveryFailed(messages.DELIVERY_BAD_ANSWER) from None
    except (OSError, ssl.SSLError) as exc:  # reset mid-request
        raise DeliveryFailed(messages.DELIVERY_CONNECT.format(problem=_why(exc))) from None


def _why(exc: BaseException) -> str:
    """An OS or TLS error in a few words ("Connection refused"), never the address it was about."""
    if isinstance(exc, ssl.SSLCertVerificationError) and exc.verify_message:
        # "Hostname mismatch, certificate is not valid for 'crm.example.org'.": without the name.
        return re.sub(r"'[^']*'", "…", str(exc.verify_message))
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, socket.gaierror) and exc.strerror:
        return exc.strerror
    if isinstance(exc, OSError) and exc.errno:
        return os.strerror(exc.errno)  # asyncio's own text for it names the address
    return type(exc).__name__
