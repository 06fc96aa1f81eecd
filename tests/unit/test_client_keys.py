"""Client keys for rate limits: the same in every process that shares the secret key, different under
another secret, new every UTC day, and never the address or a plain hash of it."""

from __future__ import annotations

import hashlib

from tests.conftest import FakeClock
from widget_server.security.ratelimit import ClientKeys, divided

SECRET = "a-secret-key-shared-by-every-server-process"


def test_processes_sharing_the_secret_key_a_client_alike_and_the_key_changes_daily() -> None:
    clock = FakeClock()
    ip = "198.51.100.23"
    one, other = ClientKeys(clock, SECRET), ClientKeys(clock, SECRET)
    key = one.key(ip)
    assert other.key(ip) == key  # a second worker, or another host
    assert ClientKeys(clock, SECRET + "!").key(ip) != key
    assert ip not in key and key != hashlib.sha256(ip.encode()).hexdigest()[:32]
    clock.advance(86_400)
    assert one.key(ip) != key
    assert one.key(ip) == other.key(ip)


def test_a_rate_limit_is_divided_among_the_processes_that_enforce_it() -> None:
    assert divided((30, 60.0), 1) == (30, 60.0)
    assert divided((30, 60.0), 4) == (7, 60.0)
    assert divided((3, 60.0), 8) == (1, 60.0)  # never zero: each process lets one through
    assert divided(None, 4) is None
