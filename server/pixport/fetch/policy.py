"""Which addresses pixport may connect to when it fetches a URL chosen by someone else.

Everything that is not a plain public unicast address is refused, each with a named rule so that the
error says why. Operators can open specific ranges (tests open loopback) with an allowlist.
"""

from __future__ import annotations

import ipaddress
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network

ALLOW_CIDRS_ENV = "PIXPORT_FETCH_ALLOW_CIDRS"

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

METADATA = "link-local address (cloud metadata)"
RFC1918 = "private address (RFC 1918)"
DOCUMENTATION = "documentation address"

_V4_RULES: tuple[tuple[IPv4Network, str], ...] = tuple(
    (IPv4Network(net), rule)
    for net, rule in (
        ("0.0.0.0/32", "unspecified address"),
        ("0.0.0.0/8", 'reserved "this network" address (0.0.0.0/8)'),
        ("127.0.0.0/8", "loopback address"),
        ("10.0.0.0/8", RFC1918),
        ("172.16.0.0/12", RFC1918),
        ("192.168.0.0/16", RFC1918),
        ("100.64.0.0/10", "carrier-grade NAT address (100.64.0.0/10)"),
        ("169.254.169.254/32", METADATA),
        ("169.254.170.2/32", METADATA),
        ("169.254.0.0/16", "link-local address"),
        ("192.0.0.0/24", "IETF protocol assignment address (192.0.0.0/24)"),
        ("192.0.2.0/24", DOCUMENTATION),
        ("198.51.100.0/24", DOCUMENTATION),
        ("203.0.113.0/24", DOCUMENTATION),
        ("192.88.99.0/24", "6to4 relay anycast address (192.88.99.0/24)"),
        ("198.18.0.0/15", "benchmarking address (198.18.0.0/15)"),
        ("224.0.0.0/4", "multicast address"),
        ("255.255.255.255/32", "broadcast address"),
        ("240.0.0.0/4", "reserved address (240.0.0.0/4)"),
    )
)

_V6_RULES: tuple[tuple[IPv6Network, str], ...] = tuple(
    (IPv6Network(net), rule)
    for net, rule in (
        ("::/128", "unspecified address"),
        ("::1/128", "loopback address"),
        ("::/8", "reserved address (::/8)"),
        ("100::/64", "discard-only address (100::/64)"),
        ("2001::/32", "Teredo address (2001::/32)"),
        ("2001:2::/48", "benchmarking address (2001:2::/48)"),
        ("2001:db8::/32", DOCUMENTATION),
        ("3fff::/20", DOCUMENTATION),
        ("2001::/23", "IETF protocol assignment address (2001::/23)"),
        ("fd00:ec2::254/128", METADATA),
        ("fc00::/7", "unique local address (fc00::/7)"),
        ("fe80::/10", "link-local address"),
        ("fec0::/10", "site-local address (fec0::/10, deprecated)"),
        ("ff00::/8", "multicast address"),
    )
)

_NAT64 = IPv6Network("64:ff9b::/96")
_NAT64_LOCAL = IPv6Network("64:ff9b:1::/48")
_SIXTOFOUR = IPv6Network("2002::/16")
_TEREDO = IPv6Network("2001::/32")
_IPV4_COMPATIBLE = IPv6Network("::/96")
_IPV4_TRANSLATED = IPv6Network("::ffff:0:0:0/96")
_GLOBAL_UNICAST = IPv6Network("2000::/3")
_THIS_NETWORK = IPv4Network("0.0.0.0/8")


def _of(rule: str) -> str:
    article = "an" if rule[0].lower() in "aeiou" or rule.startswith("IETF") else "a"
    return f"of {article} {rule}"


def _low32(ip: IPv6Address) -> IPv4Address:
    return IPv4Address(int(ip) & 0xFFFFFFFF)


def _rfc6052_48(ip: IPv6Address) -> IPv4Address:
    # A /48 NAT64 prefix splits the IPv4 address around the reserved "u" octet (bits 64-71).
    value = int(ip)
    return IPv4Address((((value >> 64) & 0xFFFF) << 16) | ((value >> 40) & 0xFFFF))


def display(ip: IPAddress) -> str:
    """How an address is written in refusal reasons (IPv4-mapped shown with its dotted quad)."""
    if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
        return f"::ffff:{ip.ipv4_mapped}"
    return str(ip)


def strip_scope(ip: IPAddress) -> IPAddress:
    if isinstance(ip, IPv6Address) and ip.scope_id:
        return IPv6Address(int(ip))
    return ip


@dataclass(frozen=True)
class EgressPolicy:
    allow_cidrs: tuple[IPv4Network | IPv6Network, ...] = ()

    def __post_init__(self) -> None:
        for net in self.allow_cidrs:
            if not isinstance(net, IPv4Network | IPv6Network):
                raise TypeError(f"allow_cidrs entries must be ip_network objects, not {type(net).__name__}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> EgressPolicy:
        """Read PIXPORT_FETCH_ALLOW_CIDRS: CIDRs (or single addresses) separated by commas or spaces."""
        raw = environ.get(ALLOW_CIDRS_ENV, "")
        networks: list[IPNetwork] = []
        for entry in re.split(r"[\s,]+", raw.strip()):
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=True))
            except ValueError as exc:
                raise ValueError(f"{ALLOW_CIDRS_ENV}: invalid CIDR {entry!r}: {exc}") from None
        return cls(allow_cidrs=tuple(networks))

    def is_allowlisted(self, ip: IPAddress) -> bool:
        ip = strip_scope(ip)
        candidates: list[IPAddress] = [ip]
        if isinstance(ip, IPv6Address) and ip.ipv4_mapped is not None:
            candidates.append(ip.ipv4_mapped)
        return any(c.version == net.version and c in net for c in candidates for net in self.allow_cidrs)

    def check_address(self, ip: IPv4Address | IPv6Address) -> str | None:
        """None if pixport may connect to `ip`, else the name of the rule that refuses it."""
        ip = strip_scope(ip)
        if self.is_allowlisted(ip):
            return None
        if isinstance(ip, IPv4Address):
            return _ipv4_rule(ip)
        return self._ipv6_rule(ip)

    def _ipv6_rule(self, ip: IPv6Address) -> str | None:
        mapped = ip.ipv4_mapped
        if mapped is not None:
            inner = _ipv4_rule(mapped)
            return None if inner is None else f"IPv4-mapped IPv6 {_of(inner)}"
        if ip in _IPV4_COMPATIBLE and int(ip) > 1:
            inner = _ipv4_rule(_low32(ip))
            if inner is None:
                return "IPv4-compatible IPv6 address (deprecated)"
            return f"IPv4-compatible IPv6 {_of(inner)}"
        if ip in _IPV4_TRANSLATED:
            inner = _ipv4_rule(_low32(ip))
            if inner is None:
                return "IPv4-translated IPv6 address (::ffff:0:0:0/96)"
            return f"IPv4-translated IPv6 {_of(inner)}"
        if ip in _NAT64:
            inner = _ipv4_rule(_low32(ip))
            return None if inner is None else f"NAT64 IPv6 {_of(inner)}"
        if ip in _NAT64_LOCAL:
            # Operators may use the /48 either per RFC 6052 or as a /96; name whichever reading is
            # forbidden. The zero bits of the other reading always land in 0.0.0.0/8: not informative.
            for embedded in (_rfc6052_48(ip), _low32(ip)):
                inner = _ipv4_rule(embedded)
                if inner is not None and embedded not in _THIS_NETWORK:
                    return f"NAT64 IPv6 {_of(inner)}"
            return "local-use NAT64 address (64:ff9b:1::/48)"
        if ip in _SIXTOFOUR:
            embedded = IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
            inner = _ipv4_rule(embedded)
            if inner is not None:
                return f"6to4 IPv6 {_of(inner)}"
        if ip in _TEREDO and ip.teredo is not None:
            for embedded in ip.teredo:
                inner = _ipv4_rule(embedded)
                if inner is not None:
                    return f"Teredo IPv6 {_of(inner)}"
        for net, rule in _V6_RULES:
            if ip in net:
                return rule
        if ip not in _GLOBAL_UNICAST:
            return "reserved address (outside 2000::/3)"
        if not ip.is_global:
            return "non-public address"
        return None


def _ipv4_rule(ip: IPv4Address) -> str | None:
    for net, rule in _V4_RULES:
        if ip in net:
            return rule
    if not ip.is_global:
        return "non-public address"
    return None
