"""The sign post reads its headers (Sec-Fetch-Site, Origin, Content-Type, Accept) straight from the
scope rather than through `request.headers`: for any headers, repeated, missing or oddly cased,
the same decisions as reading them through `request.headers`, which these check as properties
against that reading."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from starlette.requests import Request
from starlette.types import Message

from widget_server.core.attribution import origin_of
from widget_server.errors import NotAllowed, WidgetError
from widget_server.web.errors import wants_json
from widget_server.web.widget.sign import _refuse_cross_site, posted_fields

PROPERTY = settings(max_examples=500, database=None, suppress_health_check=[HealthCheck.too_slow])
PUBLIC_URL = "https://pledge.example"

NAMES = [b"sec-fetch-site", b"origin", b"content-type", b"accept", b"Origin", b"host", b"x-other"]
VALUES = [
    b"same-origin",
    b"none",
    b"cross-site",
    b"same-site",
    b"",
    b"http://testserver",
    b"https://pledge.example",
    b"https://riverside.example",
    b"application/x-www-form-urlencoded",
    b"multipart/form-data; boundary=x",
    b"text/plain",
    b"application/json",
    b"text/html, application/json;q=0.9",
    b"\xe9t\xe9",
]
HEADERS = st.lists(st.tuples(st.sampled_from(NAMES), st.sampled_from(VALUES)), max_size=8)
PATHS = st.sampled_from(["/embed/data-firewall/sign", "/api/pledges/x/count", "/api"])


def request_with(
    headers: list[tuple[bytes, bytes]], path: str = "/embed/data-firewall/sign", body: bytes = b""
) -> Request:
    async def receive() -> Message:
        return {"type": "http.request", "body": body, "more_body": False}

    scope = {
        "type": "http",
        "method": "POST",
        "scheme": "http",
        "server": ("testserver", 80),
        "path": path,
        "root_path": "",
        "query_string": b"",
        "headers": headers,
        "http_version": "1.1",
    }
    return Request(scope, receive)


def outcome(decide: Callable[[], object]) -> object:
    try:
        return decide()
    except WidgetError as refused:
        return (type(refused), refused.message)


def refuse_cross_site_through_headers(request: Request, public_url: str) -> None:
    """The check as it read its headers through `request.headers`."""
    site = request.headers.get("sec-fetch-site")
    if site is not None:
        if site not in ("same-origin", "none"):
            raise NotAllowed("cross-site")
        return
    origin = request.headers.get("origin")
    if origin is None:
        return
    if origin not in {origin_of(str(request.base_url)), origin_of(public_url)}:
        raise NotAllowed("cross-site")


@PROPERTY
@given(HEADERS)
@example([(b"sec-fetch-site", b"same-origin"), (b"sec-fetch-site", b"cross-site")])
@example([(b"origin", b"https://riverside.example"), (b"origin", b"http://testserver")])
@example([(b"Origin", b"https://riverside.example")])
@example([(b"sec-fetch-site", b""), (b"origin", b"https://riverside.example")])
def test_cross_site_posts_are_refused_as_reading_request_headers_did(headers: list[tuple[bytes, bytes]]) -> None:
    ours = outcome(lambda: _refuse_cross_site(request_with(headers), PUBLIC_URL))
    theirs = outcome(lambda: refuse_cross_site_through_headers(request_with(headers), PUBLIC_URL))
    # The sentence is the handler's own; only whether and how it refuses is compared.
    assert (ours is None) == (theirs is None)
    if ours is not None:
        assert isinstance(ours, tuple) and isinstance(theirs, tuple) and ours[0] is theirs[0] is NotAllowed


@PROPERTY
@given(HEADERS, PATHS)
@example([(b"accept", b"text/html"), (b"accept", b"application/json")], "/embed/x/sign")
@example([(b"accept", b"application/json"), (b"accept", b"text/html")], "/embed/x/sign")
@example([(b"Accept", b"application/json")], "/embed/x/sign")
def test_wants_json_as_reading_request_headers_did(headers: list[tuple[bytes, bytes]], path: str) -> None:
    request = request_with(headers, path)
    expected = path.startswith("/api/") or "application/json" in request_with(headers, path).headers.get("accept", "")
    assert wants_json(request) == expected


def posted(headers: list[tuple[bytes, bytes]], body: bytes) -> object:
    """What `posted_fields` gives (or refuses with); nothing in it waits, so it runs in one step."""
    step = posted_fields(request_with(headers, body=body)).__await__()
    try:
        next(step)
    except StopIteration as done:
        return done.value
    except WidgetError as refused:
        return type(refused).__name__
    raise AssertionError("reading the post waited for something")


# A multipart body is Starlette's to parse: only which parser the Content-Type picks is checked.
NOT_MULTIPART = HEADERS.map(lambda headers: [(n, v) for n, v in headers if not v.startswith(b"multipart/")])


@PROPERTY
@given(NOT_MULTIPART)
@example([(b"content-type", b"text/plain"), (b"content-type", b"application/x-www-form-urlencoded")])
@example([(b"content-type", b"application/x-www-form-urlencoded"), (b"content-type", b"text/plain")])
@example([(b"Content-Type", b"application/x-www-form-urlencoded")])
def test_the_post_is_read_by_its_first_content_type_as_request_headers_gives_it(
    headers: list[tuple[bytes, bytes]],
) -> None:
    content_type = request_with(headers).headers.get("content-type", "")
    expected = (
        {"name": "Ana"} if content_type.startswith("application/x-www-form-urlencoded") else "UnsupportedMediaType"
    )
    assert posted(headers, b"name=Ana") == expected
