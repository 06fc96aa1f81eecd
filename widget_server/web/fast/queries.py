"""Query strings parsed once per distinct string.

Every view of one partner's form sends the same long query (its token, the parent page, the
campaign tags), so each distinct string is parsed once and the result shared: QueryParams is
immutable. The strings are the client's to choose, so the memo is bounded in bytes as well.
"""

from __future__ import annotations

from starlette.datastructures import QueryParams
from starlette.types import Scope

from widget_server.memo import ENTRY_OVERHEAD, BoundedMemo

MAX_QUERIES = 4096
MAX_BYTES = 4 * 1024 * 1024


def _size(raw: bytes, params: QueryParams) -> int:
    # Each parsed pair is a tuple of two strings in a list and a dict; repeated names count
    # every time, which a plain walk of the mapping would miss.
    return ENTRY_OVERHEAD + len(raw) + sum(200 + len(k) + len(v) for k, v in params.multi_items())


_parsed: BoundedMemo[bytes, QueryParams] = BoundedMemo(MAX_QUERIES, MAX_BYTES, _size)


def query_params(scope: Scope) -> QueryParams:
    """The request's query parameters, as `request.query_params` gives them."""
    raw: bytes = scope["query_string"]
    params = _parsed.get(raw)
    if params is None:
        params = _parsed.put(raw, QueryParams(raw))
    return params
