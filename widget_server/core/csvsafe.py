"""CSV that is safe to open in a spreadsheet (OWASP's advice on formula injection)."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(value: object) -> str:
    """Prefix a cell that a spreadsheet would run as a formula with a quote; leave others be."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_STARTS) else text


class CSVLines:
    """Formats one row at a time, every cell neutralised, so exports stream in constant memory."""

    def __init__(self) -> None:
        self._buffer = io.StringIO()
        self._writer = csv.writer(self._buffer, lineterminator="\r\n")

    def line(self, row: Iterable[object]) -> str:
        self._writer.writerow([neutralise(cell) for cell in row])
        text = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return text
