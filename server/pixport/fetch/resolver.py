"""The egress guard inside aiohttp's connection path.

Two checks, both on the address actually used:
- GuardedResolver: aiohttp asks it for every host name (use_dns_cache=False, so every new connection);
  it drops refused addresses and refuses the host if none is left, so the address checked is the address
  connected to and DNS rebinding has no window.
- guarded_socket_factory: aiohttp does not call the resolver for hosts that look like IP literals
  (TCPConnector._resolve_host short-cuts them), so the socket factory checks the sockaddr of every
  connection attempt too. Fetcher also checks literal hosts before it makes a request, for a clear reason.
"""

from __future__ import annotations

import socket
from ipaddress import ip_address

from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from pixport.fetch.errors import EgressRefused, GuardRefusal
from pixport.fetch.policy import EgressPolicy, IPAddress
from pixport.fetch.urls import literal_ip


def _parse_resolved(host: str) -> IPAddress | None:
    try:
        return ip_address(host)
    except ValueError:
        return None


class GuardedResolver(AbstractResolver):
    """Resolves with `inner`, then keeps only the addresses the policy allows."""

    def __init__(self, policy: EgressPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner if inner is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        name = host[:-1] if host.endswith(".") else host
        # getaddrinfo parses numeric names with inet_aton (0x7f000001, 127.1): decide what they mean here.
        try:
            literal = literal_ip(name)
        except ValueError as exc:
            raise GuardRefusal(f"refused: {exc}") from None
        if literal is not None:
            return [self._literal_result(host, literal, port)]
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        first_refusal: EgressRefused | None = None
        for result in results:
            ip = _parse_resolved(result["host"])
            if ip is None:
                continue
            rule = self._policy.check_address(ip)
            if rule is None:
                allowed.append(result)
            elif first_refusal is None:
                first_refusal = EgressRefused(rule, ip, host=name)
        if not allowed:
            if first_refusal is not None:
                raise first_refusal
            raise GuardRefusal(f"could not resolve host {name}: no usable address")
        return allowed

    def _literal_result(self, host: str, ip: IPAddress, port: int) -> ResolveResult:
        rule = self._policy.check_address(ip)
        if rule is not None:
            raise EgressRefused(rule, ip, host=host)
        family = socket.AF_INET if ip.version == 4 else socket.AF_INET6
        return ResolveResult(
            hostname=host,
            host=str(ip),
            port=port,
            family=family,
            proto=0,
            flags=socket.AI_NUMERICHOST | socket.AI_NUMERICSERV,
        )

    async def close(self) -> None:
        await self._inner.close()


def guarded_socket_factory(policy: EgressPolicy) -> SocketFactoryType:
    """A socket factory for TCPConnector that refuses to create a socket for a disallowed sockaddr."""

    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        if family not in (socket.AF_INET, socket.AF_INET6):
            raise GuardRefusal("refused: only IPv4 and IPv6 connections are allowed")
        ip = _parse_resolved(str(sockaddr[0]))
        if ip is None:
            raise GuardRefusal("refused: connection target is not an IP address")
        rule = policy.check_address(ip)
        if rule is not None:
            raise EgressRefused(rule, ip)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory
