from __future__ import annotations

import socket
from ipaddress import ip_network

import aiohttp
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult
from fetch_support import FakeDNS, Server
from pixport.fetch import EgressPolicy
from pixport.fetch.errors import EgressRefused, GuardRefusal, find_refusal
from pixport.fetch.resolver import GuardedResolver, guarded_socket_factory

ALLOW_ONE = EgressPolicy(allow_cidrs=(ip_network("127.0.0.1/32"),))


async def test_drops_refused_addresses_and_keeps_allowed_ones() -> None:
    dns = FakeDNS({"mixed.test": ["127.0.0.2", "127.0.0.1", "10.0.0.1", "::1"]})
    results = await GuardedResolver(ALLOW_ONE, dns).resolve("mixed.test", 80, socket.AF_UNSPEC)
    assert [r["host"] for r in results] == ["127.0.0.1"]


async def test_refuses_when_nothing_is_left_naming_the_first_rule() -> None:
    dns = FakeDNS({"internal.test": ["10.0.0.1", "127.0.0.2"]})
    with pytest.raises(EgressRefused) as caught:
        await GuardedResolver(ALLOW_ONE, dns).resolve("internal.test", 80)
    assert caught.value.reason == (
        "refused: private address (RFC 1918) 10.0.0.1 is not allowed (internal.test resolves to it)"
        "; to allow it, add 10.0.0.1/32 (or its network) to PIXPORT_FETCH_ALLOW_CIDRS"
    )


async def test_dns_answers_with_mapped_ipv6_are_checked_on_the_embedded_ipv4() -> None:
    dns = FakeDNS({"sneaky.test": ["::ffff:169.254.169.254"]})
    with pytest.raises(EgressRefused, match=r"IPv4-mapped IPv6 of a link-local address \(cloud metadata\)"):
        await GuardedResolver(EgressPolicy(), dns).resolve("sneaky.test", 80)


@pytest.mark.parametrize("host", ["0x7f000002", "2130706434", "0177.0.0.2", "127.2", "0x7f.0.0.2", "127.0.0.2."])
async def test_numeric_names_are_decided_here_not_by_getaddrinfo(host: str) -> None:
    dns = FakeDNS({})
    with pytest.raises(EgressRefused, match=r"refused: loopback address 127\.0\.0\.2 is not allowed"):
        await GuardedResolver(ALLOW_ONE, dns).resolve(host, 80)
    assert dns.calls == []


async def test_allowed_numeric_names_resolve_without_dns() -> None:
    dns = FakeDNS({})
    results = await GuardedResolver(ALLOW_ONE, dns).resolve("0x7f000001", 8080)
    assert [(r["host"], r["port"], r["family"]) for r in results] == [("127.0.0.1", 8080, socket.AF_INET)]
    assert dns.calls == []


async def test_malformed_numeric_names_are_refused() -> None:
    with pytest.raises(GuardRefusal, match="numeric IPv4"):
        await GuardedResolver(ALLOW_ONE, FakeDNS({})).resolve("1.2.3.09", 80)


async def test_unparseable_answers_are_ignored() -> None:
    class Garbage(AbstractResolver):
        async def resolve(
            self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
        ) -> list[ResolveResult]:
            return [ResolveResult(hostname=host, host="not-an-ip", port=port, family=family, proto=0, flags=0)]

        async def close(self) -> None:
            pass

    with pytest.raises(GuardRefusal, match="no usable address"):
        await GuardedResolver(ALLOW_ONE, Garbage()).resolve("x.test", 80)


async def test_rebinding_is_checked_on_every_resolution() -> None:
    dns = FakeDNS({}, sequence={"rebind.test": [["127.0.0.1"], ["127.0.0.2"]]})
    resolver = GuardedResolver(ALLOW_ONE, dns)
    assert [r["host"] for r in await resolver.resolve("rebind.test", 80)] == ["127.0.0.1"]
    with pytest.raises(EgressRefused):
        await resolver.resolve("rebind.test", 80)


@pytest.mark.parametrize(
    ("addr_info", "reason"),
    [
        ((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.2", 80)), "loopback address 127.0.0.2"),
        ((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("169.254.169.254", 80)), "cloud metadata"),
        ((socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::ffff:127.0.0.2", 80, 0, 0)), "IPv4-mapped"),
        ((socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("fe80::1", 80, 0, 2)), "link-local address fe80::1"),
    ],
)
def test_socket_factory_refuses_disallowed_sockaddrs(
    addr_info: tuple[socket.AddressFamily, socket.SocketKind, int, str, tuple[str, int]], reason: str
) -> None:
    with pytest.raises(EgressRefused, match=reason):
        guarded_socket_factory(ALLOW_ONE)(addr_info)


def test_socket_factory_refuses_other_families() -> None:
    with pytest.raises(GuardRefusal, match="only IPv4 and IPv6"):
        guarded_socket_factory(ALLOW_ONE)((socket.AF_UNIX, socket.SOCK_STREAM, 0, "", ("/tmp/x", 0)))  # type: ignore[arg-type]


def test_socket_factory_creates_allowed_sockets() -> None:
    sock = guarded_socket_factory(ALLOW_ONE)((socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", 80)))
    try:
        assert sock.family == socket.AF_INET
    finally:
        sock.close()


async def test_aiohttp_skips_the_resolver_for_ip_literals_so_the_socket_factory_guards_them(
    recorder: Server,
) -> None:
    """The reason Fetcher checks literals itself and the connector has a guarded socket factory."""
    dns = FakeDNS({})
    connector = aiohttp.TCPConnector(
        resolver=GuardedResolver(ALLOW_ONE, dns),
        use_dns_cache=False,
        socket_factory=guarded_socket_factory(ALLOW_ONE),
    )
    async with aiohttp.ClientSession(connector=connector) as session:
        for url in (recorder.url("/"), f"http://[::ffff:127.0.0.2]:{recorder.port}/"):
            with pytest.raises(aiohttp.ClientConnectorError) as caught:
                await session.get(url)
            refusal = find_refusal(caught.value)
            assert refusal is not None
            assert "127.0.0.2 is not allowed" in refusal.reason
    assert dns.calls == []
    assert recorder.requests == []
