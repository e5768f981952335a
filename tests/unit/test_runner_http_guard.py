"""The http runner's SSRF guard: which resolved addresses agents may reach."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest

from worker.runners.http import blocked_reason

BLOCKED = [
    ("127.0.0.1", "loopback"),
    ("127.8.9.10", "loopback"),
    ("::1", "loopback"),
    ("::ffff:127.0.0.1", "loopback"),
    ("169.254.169.254", "link-local, cloud metadata"),
    ("fe80::1", "link-local, cloud metadata"),
    ("fd00:ec2::254", "private"),
    ("10.1.2.3", "private"),
    ("172.16.0.1", "private"),
    ("192.168.1.1", "private"),
    ("100.100.100.200", "not globally routable"),
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("224.0.0.1", "multicast"),
    ("240.0.0.1", "private"),
    # IPv4 addresses wrapped in IPv6: NAT64 (64:ff9b::/96), 6to4 (2002::/16), IPv4-compatible (::/96).
    ("64:ff9b::a9fe:a9fe", "link-local, cloud metadata"),
    ("64:ff9b::a00:5", "private"),
    ("64:ff9b::7f00:1", "loopback"),
    ("2002:a9fe:a9fe::", "link-local, cloud metadata"),
    ("2002:a00:5::1", "private"),
    ("::7f00:1", "loopback"),
    ("::a9fe:a9fe", "link-local, cloud metadata"),
    # Local-use NAT64 (RFC 8215): where the IPv4 address sits is the site's choice.
    ("64:ff9b:1::a9fe:a9fe", "not globally routable"),
]


@pytest.mark.parametrize(("address", "reason"), BLOCKED)
def test_internal_addresses_are_blocked_by_default(address: str, reason: str) -> None:
    assert blocked_reason(ip_address(address), []) == reason


@pytest.mark.parametrize(
    "address", ["93.184.215.14", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808", "2002:808:808::1"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert blocked_reason(ip_address(address), []) is None


def test_an_allow_listed_network_is_reachable_and_nothing_beyond_it() -> None:
    allow = [ip_network("10.20.0.0/16")]
    assert blocked_reason(ip_address("10.20.3.4"), allow) is None
    assert blocked_reason(ip_address("10.21.3.4"), allow) == "private"


def test_an_ipv4_allow_list_covers_ipv4_mapped_ipv6() -> None:
    assert blocked_reason(ip_address("::ffff:10.20.3.4"), [ip_network("10.20.0.0/16")]) is None


def test_an_ipv4_allow_list_covers_nat64_and_6to4() -> None:
    allow = [ip_network("10.20.0.0/16")]
    assert blocked_reason(ip_address("64:ff9b::a14:304"), allow) is None
    assert blocked_reason(ip_address("2002:a14:304::"), allow) is None
