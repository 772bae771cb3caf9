"""Fixtures for the fetch tests: loopback servers (see fetch_support) and guarded fetchers."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Callable, Mapping
from ipaddress import ip_network
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.abc import AbstractResolver
from fetch_support import FakeDNS, Server, SlowDNS, origin_app, recorder_app, start_server
from pixport.fetch import EgressPolicy, Fetcher, FetchLimits


@pytest_asyncio.fixture(scope="module")
async def servers() -> AsyncIterator[dict[str, Server]]:
    """recorder (127.0.0.2:P), twin (127.0.0.1:P, same port), origin and origin_b (127.0.0.1), origin_c."""
    runners: list[web.AppRunner] = []
    found: dict[str, Server] = {}
    for _ in range(20):
        recorder, rec_runner = await start_server("127.0.0.2", recorder_app)
        try:
            twin, twin_runner = await start_server("127.0.0.1", origin_app, recorder.port)
        except OSError as exc:
            await rec_runner.cleanup()
            if exc.errno != errno.EADDRINUSE:
                raise
            continue
        found.update(recorder=recorder, twin=twin)
        runners += [rec_runner, twin_runner]
        break
    assert "recorder" in found, "could not find a port free on both 127.0.0.1 and 127.0.0.2"
    for name, host in (("origin", "127.0.0.1"), ("origin_b", "127.0.0.1"), ("origin_c", "127.0.0.3")):
        server, runner = await start_server(host, origin_app)
        found[name] = server
        runners.append(runner)
    yield found
    for runner in runners:
        await runner.cleanup()


@pytest.fixture
def recorder(servers: dict[str, Server]) -> Server:
    servers["recorder"].requests.clear()
    return servers["recorder"]


@pytest.fixture
def origin(servers: dict[str, Server]) -> Server:
    servers["origin"].requests.clear()
    servers["origin"].bodies.clear()
    return servers["origin"]


@pytest.fixture
def origin_b(servers: dict[str, Server]) -> Server:
    servers["origin_b"].requests.clear()
    return servers["origin_b"]


@pytest.fixture
def origin_c(servers: dict[str, Server]) -> Server:
    servers["origin_c"].requests.clear()
    return servers["origin_c"]


@pytest.fixture
def twin(servers: dict[str, Server]) -> Server:
    servers["twin"].requests.clear()
    return servers["twin"]


MakeFetcher = Callable[..., Fetcher]


@pytest_asyncio.fixture
async def make_fetcher() -> AsyncIterator[MakeFetcher]:
    """make_fetcher(allow=CIDRs, dns={name: [ip]} | resolver | "system", **limits); closed after use."""
    made: list[Fetcher] = []

    def make(
        allow: str = "127.0.0.1/32, 127.0.0.3/32",
        dns: Mapping[str, list[str]] | AbstractResolver | str | None = None,
        **limits: Any,
    ) -> Fetcher:
        cidrs = tuple(ip_network(c.strip()) for c in allow.split(",") if c.strip())
        resolver: AbstractResolver | None
        if dns == "system":
            resolver = None  # the real resolver; only ever asked for "localhost"
        elif isinstance(dns, AbstractResolver):
            resolver = dns
        else:
            resolver = FakeDNS(dns if isinstance(dns, Mapping) else {})
        fetcher = Fetcher(EgressPolicy(allow_cidrs=cidrs), FetchLimits(**limits), resolver=resolver)
        made.append(fetcher)
        return fetcher

    yield make
    for fetcher in made:
        await fetcher.close()


@pytest.fixture
def fake_dns() -> type[FakeDNS]:
    return FakeDNS


@pytest.fixture
def slow_dns() -> type[SlowDNS]:
    return SlowDNS
