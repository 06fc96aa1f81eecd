"""Structured logs: one JSON object a line. No email address or IP address is ever logged.

The access log writes a line per request, so in a surge it is paid thousands of times a second.
Through `logging` a line cost about 20 µs, more than the whole counter endpoint; so, while
logging is set up as `configure` leaves it, access lines skip the LogRecord machinery and are
written in batches at most 0.2 s apart (as nginx's `access_log … buffer= flush=` does), in the
same JSON. Every other record, and every record under any other set-up (a test capturing logs,
another handler), goes through `logging` as usual.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ipaddress
import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

access_log = logging.getLogger("widget_server.access")

_encode = json.JSONEncoder(ensure_ascii=False).encode
_string = json.encoder.encode_basestring  # a JSON string literal, as ensure_ascii=False writes it


class JSONFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._stamp = ""

    def stamp(self, created: float) -> str:
        """Local time to the second, formatted once per second rather than once per line."""
        second = int(created)
        if second != self._second:
            self._second, self._stamp = second, time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(second))
        return self._stamp

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": self.stamp(record.created),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        entry.update(getattr(record, "fields", {}))
        if record.exc_info:
            # exc_text when a filter has already written (and scrubbed) the traceback.
            entry["error"] = record.exc_text or self.formatException(record.exc_info)
        return _encode(entry)


class _AccessLines:
    """Access lines bound for one handler's stream, written together."""

    FLUSH_SECONDS = 0.2
    MAX_LINES = 512

    def __init__(self, handler: logging.StreamHandler[Any], formatter: JSONFormatter) -> None:
        self.handler = handler
        self.formatter = formatter
        # (method, path, status, perf_counter at the start and at the end of the request)
        self._pending: list[tuple[str, str, int, float, float]] = []
        self._timer: asyncio.TimerHandle | None = None

    def usable(self) -> bool:
        """True while logging is exactly as `configure` left it, so a line may skip `logging`."""
        handler = self.handler
        handlers = logging.root.handlers
        return (
            len(handlers) == 1
            and handlers[0] is handler
            and access_log.isEnabledFor(logging.INFO)
            and handler.formatter is self.formatter
            and handler.level <= logging.INFO
            and access_log.propagate
            and not (access_log.handlers or access_log.filters or logging.root.filters or handler.filters)
        )

    def add(self, method: str, path: str, status: int, started: float) -> None:
        # Only what the request knows; the time of day and the milliseconds are worked out
        # when the batch is written, once per batch rather than once per request.
        self._pending.append((method, path, status, started, time.perf_counter()))
        if len(self._pending) >= self.MAX_LINES:
            self.flush()
        elif self._timer is None:
            try:
                self._timer = asyncio.get_running_loop().call_later(self.FLUSH_SECONDS, self.flush)
            except RuntimeError:  # no event loop: nothing would flush later
                self.flush()

    def _line(self, created: float, method: str, path: str, status: int, ms: float) -> str:
        # Exactly what JSONFormatter writes for the same record (json.dumps of the same dict,
        # same key order and separators), built without the dict and the generic encoder.
        return (
            f'{{"time": "{self.formatter.stamp(created)}", "level": "info", "logger": "{access_log.name}",'
            f' "message": "request", "method": {_string(method)}, "path": {_string(path)},'
            f' "status": {status:d}, "ms": {ms!r}}}{self.handler.terminator}'
        )

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        # A perf_counter reading to wall-clock time: the same offset for the whole batch.
        offset = time.time() - time.perf_counter()
        line = self._line
        text = "".join(
            [
                line(offset + ended, method, path, status, _ms(started, ended))
                for method, path, status, started, ended in self._pending
            ]
        )
        self._pending.clear()
        handler = self.handler
        with handler.lock or contextlib.nullcontext():
            try:
                handler.stream.write(text)
                handler.flush()
            except Exception:
                handler.handleError(access_log.makeRecord(access_log.name, logging.INFO, "", 0, text, (), None))


_lines: _AccessLines | None = None


def configure(level: int = logging.INFO) -> None:
    global _lines
    if _lines is not None:
        _lines.flush()
    formatter = JSONFormatter()
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    logging.basicConfig(level=level, handlers=[handler], force=True)
    # aiosqlite logs SQL parameters (emails among them) at DEBUG: never let those through.
    logging.getLogger("aiosqlite").setLevel(logging.WARNING)
    # Our format prints none of these, and finding the caller's frame is the dearest part of
    # making a record; the logging HOWTO's "Optimization" section documents each switch.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    _lines = _AccessLines(handler, formatter)


# Loggers of the libraries the server runs on. Our own code never logs an address; uvicorn's
# WebSocket and trace lines print the client's, and asyncio's could name a socket.
LIBRARY_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi", "asyncio")
# Anything that could be an IP address, with a port or in brackets: checked with ipaddress.
_MAYBE_ADDRESS = re.compile(
    r"(?<![\w.:\[])[\[:0-9A-Fa-f](?:[\[\]0-9A-Fa-f:.]*[0-9A-Fa-f\]])?(?:%[\w-]+\]?(?::[0-9]+)?)?"
)
HIDDEN = "(address)"


def _is_address(text: str) -> bool:
    host = text[1:].partition("]")[0] if text.startswith("[") else text
    # "::1:5000" is how uvicorn writes an IPv6 client with its port: either reading hides it.
    for candidate in (host, host.rpartition(":")[0]):
        try:
            ipaddress.ip_address(candidate.partition("%")[0])
            return True
        except ValueError:
            continue
    return False


class ClientAddressFilter(logging.Filter):
    """Rewrites a library's record with every IP address (and its port) shown as '(address)'.

    Only `keep` survives: the address the server listens on ("Uvicorn running on …"), which
    is no client's.
    """

    def __init__(self, keep: Iterable[str] = ()) -> None:
        super().__init__()
        self.keep = frozenset(keep)

    def scrub(self, text: str) -> str:
        def hide(match: re.Match[str]) -> str:
            found = match.group(0)
            return found if found in self.keep or not _is_address(found) else HIDDEN

        return _MAYBE_ADDRESS.sub(hide, text)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = self.scrub(record.getMessage()), None
        if record.exc_info and not record.exc_text:
            record.exc_text = self.scrub(logging.Formatter().formatException(record.exc_info))
        return True


def hide_client_addresses(listening: tuple[str, int] | None = None) -> None:
    """Put `ClientAddressFilter` on the libraries' loggers (once each; called again, replaced).

    `listening` is the (host, port) the server binds, which may stay in its start-up line.
    """
    keep = []
    if listening is not None:
        host, port = listening
        keep = [f"{host}:{port}", f"[{host}]:{port}"]
    for name in LIBRARY_LOGGERS:
        logger = logging.getLogger(name)
        for old in [f for f in logger.filters if isinstance(f, ClientAddressFilter)]:
            logger.removeFilter(old)
        logger.addFilter(ClientAddressFilter(keep))


def flush() -> None:
    """Write out buffered access lines now (the server does at shutdown; atexit does too)."""
    if _lines is not None:
        _lines.flush()


atexit.register(flush)


def _ms(started: float, ended: float) -> float:
    return round((ended - started) * 1000, 2)


#: Paths whose last part is a token (a confirmation link, a partner's report link): logged
#: without it, since whoever reads the log could otherwise follow the link.
TOKEN_PATHS = ("/confirm/", "/partner-report/")


def loggable_path(path: str) -> str:
    """The path as the access log keeps it: a token in the path becomes "…"."""
    if path.startswith(TOKEN_PATHS):
        return path[: path.index("/", 1) + 1] + "…"
    return path


def access(method: str, path: str, status: int, started: float) -> None:
    """One access line: method, path (never the query: it holds tokens, nor a token that is part
    of the path), status, milliseconds since `started` (a time.perf_counter() reading taken when
    the request arrived).

    Never the client's IP. The middleware (`middleware.py`) calls it once per request.
    """
    path = loggable_path(path)
    lines = _lines
    if lines is not None and lines.usable():
        lines.add(method, path, status, started)
    elif access_log.isEnabledFor(logging.INFO):
        fields = {"method": method, "path": path, "status": status, "ms": _ms(started, time.perf_counter())}
        access_log.info("request", extra={"fields": fields})
