"""The sign form's URL-encoded bodies are parsed with the standard library (`urlencoded_fields`)
instead of Starlette's form parser: the same fields, in the same number, for any body, which the
POST handler's docstring claims and this checks as a property over random and malformed bodies."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from urllib.parse import parse_qsl

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from starlette.datastructures import Headers
from starlette.formparsers import FormParser, MultiPartException

from widget_server.errors import Invalid
from widget_server.messages import TOO_MANY_FIELDS
from widget_server.web.widget.sign import MAX_FIELDS, urlencoded_fields

# Pieces that exercise the parsers' corners: separators, escapes good and broken, plus signs,
# raw UTF-8 and Latin-1 bytes, and the form's own field names.
PIECES = [
    b"a",
    b"b",
    b"=",
    b"&",
    b"&&",
    b";",
    b"%",
    b"%zz",
    b"%41",
    b"%2",
    b"%e2%80",
    b"%C3%A9",
    b"+",
    b"%2B",
    b"\xc3\xa9",
    b"\xff",
    b" ",
    b"name",
    b"email",
    b"form_token",
    b"website",
    b"\x00",
    b"\n",
]
BODIES = st.one_of(st.binary(max_size=200), st.lists(st.sampled_from(PIECES), max_size=60).map(b"".join))


def starlettes(body: bytes) -> dict[str, str] | None:
    """What Starlette's parser gives, as the handler reads it (the last of a name wins); None
    when it refuses the body for having too many fields."""

    async def stream() -> AsyncGenerator[bytes, None]:
        yield body

    async def parse() -> dict[str, str]:
        parser = FormParser(
            Headers({"content-type": "application/x-www-form-urlencoded"}), stream(), max_fields=MAX_FIELDS
        )
        return {k: v for k, v in (await parser.parse()).items() if isinstance(v, str)}

    # Nothing in the parse waits for anything, so it runs to the end at its first step, without
    # an event loop per example.
    step = parse()
    try:
        step.send(None)
    except StopIteration as done:
        return done.value
    except MultiPartException:
        return None
    finally:
        step.close()
    raise AssertionError("the parser waited for something")


def ours(body: bytes) -> dict[str, str] | None:
    try:
        return urlencoded_fields(body)
    except Invalid as refused:
        assert refused.message == TOO_MANY_FIELDS
        return None


@settings(max_examples=1000, deadline=None, database=None)
@given(BODIES)
@example(b"name=Ana&name=Ben")
@example(b"name=A%20b+c&email=a%40b.org&;x")
@example(b"&".join(b"f%d=" % n for n in range(MAX_FIELDS)))
@example(b"&".join(b"f%d=" % n for n in range(MAX_FIELDS + 1)))
@example(b"&" * 50 + b"a=1")
def test_the_same_fields_as_starlettes_parser_for_any_body(body: bytes) -> None:
    assert ours(body) == starlettes(body)


@pytest.mark.parametrize("count", [MAX_FIELDS, MAX_FIELDS + 1])
def test_the_field_cap_is_starlettes(count: int) -> None:
    body = b"&".join(b"f%d=x" % n for n in range(count))
    assert (ours(body) is None) == (starlettes(body) is None) == (count > MAX_FIELDS)


def standard_librarys(body: bytes) -> dict[str, str] | None:
    """What `urlencoded_fields` was: `parse_qsl` over the body read as Latin-1, capped after."""
    fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)
    return None if len(fields) > MAX_FIELDS else dict(fields)


@settings(max_examples=1000, deadline=None, database=None)
@given(st.one_of(BODIES, st.text(max_size=80).map(lambda text: text.encode("utf-8", "surrogatepass"))))
@example(b"name=Bench+Signer&occupation=nurse&email=r0-1-2%40example.org&form_token=abc.def")
@example(b"name=%C3%A9%e9+%ZZ%&email=\xc3\xa9%41&=&a&a=")
@example(b"%2B+%2b=%3D%26&b=%E2%80%AF%F0%9F")
def test_the_same_fields_as_the_standard_librarys_parse_qsl(body: bytes) -> None:
    assert ours(body) == standard_librarys(body)
