"""Without WIDGET_PUBLIC_URL, snippets point at the address served: a URL every setting accepts."""

from __future__ import annotations

import pytest

from widget_server.cli import _local_url
from widget_server.settings import Settings


@pytest.mark.parametrize(
    ("host", "url"),
    [
        ("127.0.0.1", "http://127.0.0.1:8000"),
        ("0.0.0.0", "http://127.0.0.1:8000"),
        ("::", "http://127.0.0.1:8000"),
        ("::1", "http://[::1]:8000"),
        ("localhost", "http://localhost:8000"),
    ],
)
def test_the_served_address_becomes_a_public_url_the_settings_accept(
    host: str, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WIDGET_PUBLIC_URL", raising=False)
    assert _local_url(host, 8000) == url
    assert Settings.from_env(environ={}, secret_key="k" * 40, public_url=url).public_url == url
