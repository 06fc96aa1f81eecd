"""What the tests of SECURITY.md's threats share: the pledge they attack, how to read a framing
policy and an escaped sentence, the headers every answer must carry, and clients to sign from."""

from __future__ import annotations

from collections.abc import Callable

import httpx2
import pytest
from starlette.testclient import TestClient

from tests.conftest import FakeClock, Signer, make_partner, make_pledge
from widget_server.settings import Settings

SLUG = "data-firewall"
PROXY = "10.0.0.7"
SECRET = "test-secret-key-of-at-least-32-bytes"  # make_settings' key


def frame_ancestors(response: httpx2.Response) -> str:
    policy = response.headers["content-security-policy"]
    return policy.split("frame-ancestors", 1)[1].strip()


def unescaped(html: str) -> str:
    return html.replace("&#39;", "'").replace("&#34;", '"').replace("&amp;", "&")


def assert_security_headers(answer: httpx2.Response, label: str) -> None:
    headers = answer.headers
    policy = headers.get("content-security-policy", "")
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";") if " " in part.strip())
    assert directives.get("script-src") == "'self'", label
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy, label
    assert directives.get("default-src") == "'none'", label
    assert "frame-ancestors" in directives, label
    assert headers.get("x-content-type-options") == "nosniff", label
    assert headers.get("referrer-policy") == "no-referrer", label
    assert "camera=()" in headers.get("permissions-policy", ""), label
    assert "strict-transport-security" not in headers, label  # plain http here
    # Once each: the hot answers carry theirs ready-made (headers.Secured), everything else gets
    # them from the middleware, and neither may add them on top of the other.
    names = [name for name, _ in headers.multi_items()]
    for name in (
        "content-security-policy",
        "x-content-type-options",
        "referrer-policy",
        "permissions-policy",
        "cross-origin-opener-policy",
    ):
        assert names.count(name) == 1, (label, name)
    assert names.count("x-frame-options") <= 1, label
    if "frame-ancestors 'none'" in policy:
        assert headers.get("x-frame-options") == "DENY", label


@pytest.fixture
def client_at(make_client: Callable[..., TestClient]) -> Callable[..., TestClient]:
    """client_at(settings, host, **TestClient options): a client connecting from `host`."""
    return lambda settings, host, **options: make_client(settings, host=host, client_options=options)


@pytest.fixture
def signer(settings: Settings, make_client: Callable[..., TestClient], clock: FakeClock) -> Signer:
    """A pledge, one partner on PARTNER_ORIGIN, and a Signer of that partner's form on a fresh
    client (its `client` and partner `token` are the test's too)."""
    make_pledge(settings)
    return Signer(make_client(settings), clock, token=make_partner(settings).token)
