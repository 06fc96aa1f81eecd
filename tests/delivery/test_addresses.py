"""Which webhook URLs and addresses are refused: the server-side request forgery guard's rules."""

from __future__ import annotations

import ipaddress

import pytest

from widget_server import messages
from widget_server.delivery.addresses import is_public, parse, refused_address, url_problem

REFUSED = [
    "127.0.0.1",  # loopback
    "127.1.2.3",
    "10.0.0.1",  # private
    "10.255.255.255",
    "172.16.0.1",
    "192.168.1.1",
    "169.254.169.254",  # link-local: cloud metadata
    "100.64.0.1",  # shared address space (carrier-grade NAT)
    "0.0.0.0",  # unspecified
    "0.1.2.3",  # "this network"
    "224.0.0.1",  # multicast
    "239.1.2.3",
    "255.255.255.255",  # broadcast
    "240.0.0.1",  # reserved
    "192.0.0.170",  # IETF protocol assignments
    "192.0.2.1",  # documentation
    "198.18.0.1",  # benchmarking
    "::1",  # IPv6 loopback
    "::",  # unspecified
    "::ffff:127.0.0.1",  # IPv4-mapped forms of refused addresses
    "::ffff:10.0.0.1",
    "::ffff:169.254.169.254",
    "::7f00:1",  # IPv4-compatible (deprecated)
    "64:ff9b::7f00:1",  # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",  # NAT64 of 169.254.169.254
    "64:ff9b:1::1",  # local-use NAT64
    "2002:7f00:1::1",  # 6to4 of 127.0.0.1
    "2002:a00:1::1",  # 6to4 of 10.0.0.1
    "2001::1",  # Teredo
    "2001:db8::1",  # documentation
    "fc00::1",  # unique local
    "fd12:3456::1",
    "fe80::1",  # link-local
    "fec0::1",  # site-local (deprecated)
    "ff02::1",  # multicast
    "ff0e::1",
    "100::1",  # discard-only
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "2a00:1450:4001::1", "::ffff:8.8.8.8"]


@pytest.mark.parametrize("address", REFUSED)
def test_local_private_and_special_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_are_public(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_one_refused_address_among_public_ones_refuses_the_name() -> None:
    found = [ipaddress.ip_address(a) for a in ("8.8.8.8", "10.0.0.1", "1.1.1.1")]
    assert refused_address(found) == ipaddress.ip_address("10.0.0.1")
    assert refused_address([ipaddress.ip_address("8.8.8.8")]) is None


@pytest.mark.parametrize(
    "url",
    [
        "https://crm.example.org/hooks/pledge",
        "https://crm.example.org:8443/hooks?list=7&key=abc",
        "https://CRM.Example.org",
        "https://93.184.216.34/hook",
        "https://[2606:4700:4700::1111]/hook",
        "https://bücher.example/hook",
    ],
)
def test_https_urls_to_public_hosts_can_be_set(url: str) -> None:
    assert url_problem(url, local_allowed=False) is None


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("http://crm.example.org/hook", messages.WEBHOOK_URL_NOT_HTTPS),
        ("ftp://crm.example.org/hook", messages.WEBHOOK_URL_NOT_HTTPS),
        ("crm.example.org/hook", messages.WEBHOOK_URL_NOT_HTTPS),
        ("https://user:password@crm.example.org/hook", messages.WEBHOOK_URL_CREDENTIALS),
        ("https://token@crm.example.org/hook", messages.WEBHOOK_URL_CREDENTIALS),
        ("https:///hook", messages.WEBHOOK_URL_BAD),
        ("https://crm.example.org/hook#part", messages.WEBHOOK_URL_BAD),
        ("https://crm.example.org/a b", messages.WEBHOOK_URL_BAD),
        ('https://crm.example.org/"><script>', messages.WEBHOOK_URL_BAD),
        ("https://crm.example.org:0/hook", messages.WEBHOOK_URL_BAD),
        ("https://crm.example.org:99999/hook", messages.WEBHOOK_URL_BAD),
        ("https://127.0.0.1/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://10.0.0.7/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://169.254.169.254/latest/meta-data", messages.WEBHOOK_URL_LOCAL),
        ("https://[::1]/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://[::ffff:127.0.0.1]/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://[fc00::1]/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://0.0.0.0/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://100.64.0.1/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://localhost/hook", messages.WEBHOOK_URL_LOCAL),
        ("https://hooks.localhost/hook", messages.WEBHOOK_URL_LOCAL),
        # Numbers that resolvers read as 127.0.0.1, though they are no address in a URL's rules.
        ("https://2130706433/hook", messages.WEBHOOK_URL_BAD),
        ("https://0177.0.0.1/hook", messages.WEBHOOK_URL_BAD),
        ("https://0x7f000001/hook", messages.WEBHOOK_URL_BAD),
        ("https://0x7f.1/hook", messages.WEBHOOK_URL_BAD),
        ("https://" + "a" * 2000 + ".example/hook", messages.WEBHOOK_URL_BAD),
    ],
)
def test_urls_that_break_a_rule_are_refused_with_the_rule(url: str, problem: str) -> None:
    assert url_problem(url, local_allowed=False) == problem


def test_allowing_local_targets_allows_http_and_local_addresses_but_not_credentials() -> None:
    for url in ("http://127.0.0.1:9000/hook", "http://localhost/hook", "https://10.0.0.7/hook", "http://[::1]/x"):
        assert url_problem(url, local_allowed=True) is None, url
    assert url_problem("http://user:pw@127.0.0.1/hook", local_allowed=True) == messages.WEBHOOK_URL_CREDENTIALS
    assert url_problem("ftp://127.0.0.1/hook", local_allowed=True) == messages.WEBHOOK_URL_BAD


def test_a_url_is_taken_apart_for_the_connection() -> None:
    target = parse("https://Bücher.Example:8443/hooks/x?list=7", local_allowed=False)
    assert (target.scheme, target.host, target.port, target.target) == (
        "https",
        "xn--bcher-kva.example",
        8443,
        "/hooks/x?list=7",
    )
    assert target.host_header == "xn--bcher-kva.example:8443"
    v6 = parse("https://[2606:4700:4700::1111]", local_allowed=False)
    assert (v6.host, v6.port, v6.target, v6.host_header) == ("2606:4700:4700::1111", 443, "/", "[2606:4700:4700::1111]")
