from __future__ import annotations

from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

import pytest
from pixport.fetch import EgressPolicy
from pixport.fetch.policy import display

STRICT = EgressPolicy()

REFUSED = [
    ("127.0.0.1", "loopback address"),
    ("127.255.255.254", "loopback address"),
    ("::1", "loopback address"),
    ("10.0.0.1", "private address (RFC 1918)"),
    ("172.16.0.1", "private address (RFC 1918)"),
    ("172.31.255.255", "private address (RFC 1918)"),
    ("192.168.1.1", "private address (RFC 1918)"),
    ("100.64.0.1", "carrier-grade NAT address (100.64.0.0/10)"),
    ("100.127.255.255", "carrier-grade NAT address (100.64.0.0/10)"),
    ("169.254.169.254", "link-local address (cloud metadata)"),
    ("169.254.170.2", "link-local address (cloud metadata)"),
    ("169.254.1.1", "link-local address"),
    ("fe80::1", "link-local address"),
    ("fe80::1%eth0", "link-local address"),
    ("fd00:ec2::254", "link-local address (cloud metadata)"),
    ("224.0.0.1", "multicast address"),
    ("239.255.255.250", "multicast address"),
    ("ff02::1", "multicast address"),
    ("ff0e::1", "multicast address"),
    ("255.255.255.255", "broadcast address"),
    ("240.0.0.1", "reserved address (240.0.0.0/4)"),
    ("0.0.0.0", "unspecified address"),  # noqa: S104
    ("0.1.2.3", 'reserved "this network" address (0.0.0.0/8)'),
    ("::", "unspecified address"),
    ("198.18.0.1", "benchmarking address (198.18.0.0/15)"),
    ("198.19.255.255", "benchmarking address (198.18.0.0/15)"),
    ("2001:2::1", "benchmarking address (2001:2::/48)"),
    ("192.0.2.1", "documentation address"),
    ("198.51.100.1", "documentation address"),
    ("203.0.113.1", "documentation address"),
    ("2001:db8::1", "documentation address"),
    ("3fff::1", "documentation address"),
    ("192.0.0.8", "IETF protocol assignment address (192.0.0.0/24)"),
    ("192.88.99.1", "6to4 relay anycast address (192.88.99.0/24)"),
    ("fc00::1", "unique local address (fc00::/7)"),
    ("fd12:3456::1", "unique local address (fc00::/7)"),
    ("fec0::1", "site-local address (fec0::/10, deprecated)"),
    ("100::1", "discard-only address (100::/64)"),
    ("5f00::1", "reserved address (outside 2000::/3)"),
    ("::2:0:0:1", "reserved address (::/8)"),
    # IPv6 forms that carry an IPv4 address
    ("::ffff:127.0.0.1", "IPv4-mapped IPv6 of a loopback address"),
    ("::ffff:10.0.0.1", "IPv4-mapped IPv6 of a private address (RFC 1918)"),
    ("::ffff:169.254.169.254", "IPv4-mapped IPv6 of a link-local address (cloud metadata)"),
    ("::ffff:0.0.0.0", "IPv4-mapped IPv6 of an unspecified address"),
    ("::127.0.0.1", "IPv4-compatible IPv6 of a loopback address"),
    ("::192.168.0.1", "IPv4-compatible IPv6 of a private address (RFC 1918)"),
    ("::8.8.8.8", "IPv4-compatible IPv6 address (deprecated)"),
    ("::ffff:0:127.0.0.1", "IPv4-translated IPv6 of a loopback address"),
    ("2002:7f00:1::1", "6to4 IPv6 of a loopback address"),
    ("2002:a9fe:a9fe::", "6to4 IPv6 of a link-local address (cloud metadata)"),
    ("2002:c0a8:101::1", "6to4 IPv6 of a private address (RFC 1918)"),
    ("2001:0:7f00:1::", "Teredo IPv6 of a loopback address"),  # Teredo server 127.0.0.1
    ("2001:0:808:808:0:0:f5ff:fffe", "Teredo IPv6 of a private address (RFC 1918)"),  # client 10.0.0.1
    ("2001:0:808:808::", "Teredo IPv6 of a broadcast address"),  # client 255.255.255.255
    ("2001:0:808:808:0:0:f7f7:f7f7", "Teredo address (2001::/32)"),  # public both sides: still refused
    ("64:ff9b::127.0.0.1", "NAT64 IPv6 of a loopback address"),
    ("64:ff9b::a9fe:a9fe", "NAT64 IPv6 of a link-local address (cloud metadata)"),
    ("64:ff9b:1:a00:0:100::", "NAT64 IPv6 of a private address (RFC 1918)"),  # RFC 6052 /48: 10.0.0.1
    ("64:ff9b:1::10.0.0.1", "NAT64 IPv6 of a private address (RFC 1918)"),
    ("64:ff9b:1:808:8:800::", "local-use NAT64 address (64:ff9b:1::/48)"),
]

ALLOWED = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700::1111", "2a00:1450:4001::200e",
           "::ffff:8.8.8.8", "64:ff9b::8.8.8.8", "2002:808:808::1"]  # fmt: skip


@pytest.mark.parametrize(("address", "rule"), REFUSED)
def test_refused_addresses_name_their_rule(address: str, rule: str) -> None:
    assert STRICT.check_address(ip_address(address)) == rule


@pytest.mark.parametrize("address", ALLOWED)
def test_public_addresses_are_allowed(address: str) -> None:
    assert STRICT.check_address(ip_address(address)) is None


def test_allowlist_overrides_every_rule() -> None:
    policy = EgressPolicy(allow_cidrs=tuple(ip_network(n) for n in ("127.0.0.0/8", "10.0.0.0/8", "fe80::/10")))
    assert policy.check_address(ip_address("127.0.0.2")) is None
    assert policy.check_address(ip_address("10.9.8.7")) is None
    assert policy.check_address(ip_address("fe80::1%eth0")) is None
    assert policy.check_address(ip_address("192.168.0.1")) == "private address (RFC 1918)"
    assert policy.check_address(ip_address("::1")) == "loopback address"


def test_allowlist_is_exact() -> None:
    policy = EgressPolicy(allow_cidrs=(IPv4Network("127.0.0.1/32"),))
    assert policy.check_address(ip_address("127.0.0.1")) is None
    assert policy.check_address(ip_address("127.0.0.2")) == "loopback address"


def test_allowlist_matches_the_ipv4_inside_a_mapped_address() -> None:
    policy = EgressPolicy(allow_cidrs=(IPv4Network("127.0.0.1/32"),))
    assert policy.check_address(ip_address("::ffff:127.0.0.1")) is None
    assert policy.check_address(ip_address("::ffff:127.0.0.2")) == "IPv4-mapped IPv6 of a loopback address"


def test_ipv6_allowlist_entry_does_not_open_ipv4() -> None:
    policy = EgressPolicy(allow_cidrs=(IPv6Network("::ffff:0:0/96"),))
    assert policy.check_address(ip_address("::ffff:127.0.0.1")) is None
    assert policy.check_address(ip_address("127.0.0.1")) == "loopback address"


def test_from_env_parses_commas_and_spaces() -> None:
    policy = EgressPolicy.from_env({"PIXPORT_FETCH_ALLOW_CIDRS": " 127.0.0.0/8, ::1/128  10.1.2.3 ,"})
    assert policy.allow_cidrs == (
        IPv4Network("127.0.0.0/8"),
        IPv6Network("::1/128"),
        IPv4Network("10.1.2.3/32"),
    )


def test_from_env_default_is_empty() -> None:
    assert EgressPolicy.from_env({}).allow_cidrs == ()
    assert EgressPolicy.from_env({"PIXPORT_FETCH_ALLOW_CIDRS": "  "}).allow_cidrs == ()


@pytest.mark.parametrize("entry", ["localhost", "127.0.0.1/33", "10.0.0.1/8", "::1/129", "1.2.3"])
def test_from_env_names_the_invalid_entry(entry: str) -> None:
    with pytest.raises(ValueError, match="PIXPORT_FETCH_ALLOW_CIDRS") as caught:
        EgressPolicy.from_env({"PIXPORT_FETCH_ALLOW_CIDRS": f"127.0.0.0/8, {entry}"})
    assert repr(entry) in str(caught.value)


def test_display_shows_mapped_addresses_with_their_dotted_quad() -> None:
    assert display(ip_address("::ffff:7f00:2")) == "::ffff:127.0.0.2"
    assert display(ip_address("fe80::1")) == "fe80::1"


def test_allowlist_entries_must_be_networks() -> None:
    with pytest.raises(TypeError, match="ip_network"):
        EgressPolicy(allow_cidrs=("127.0.0.0/8",))  # type: ignore[arg-type]
