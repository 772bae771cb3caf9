"""SSRF battery: every payload must be refused with a reason, and the recorder on 127.0.0.2 must see nothing.

127.0.0.2 is loopback but outside the allowlist (127.0.0.1/32 and 127.0.0.3/32); the allowed origin
listens on 127.0.0.1. Payloads for other forbidden ranges are refused before any connection is made, so
no traffic leaves loopback.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from conftest import MakeFetcher
from fetch_support import Server
from pixport.fetch import Fetcher, FetchError

RECORDER_HOSTS = [
    "127.0.0.2",
    "2130706434",  # decimal
    "0x7f000002",  # hex
    "0X7F000002",
    "017700000002",  # octal, one part
    "0177.0.0.2",  # octal, dotted
    "0177.0.0.02",
    "127.2",  # short
    "127.0.2",
    "0x7f.2",  # mixed
    "0x7f.0.0x0.2",
    "0x7f.0.0.2",
    "127.0.0.2.",  # trailing dot
    "\uff11\uff12\uff17.\uff10.\uff10.\uff12",  # fullwidth digits
    "[::ffff:127.0.0.2]",  # IPv4-mapped IPv6
    "[::ffff:7f00:2]",
    "[0:0:0:0:0:ffff:7f00:0002]",
]


async def _refused(fetcher: Fetcher, url: str) -> FetchError:
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(url, headers={"Authorization": "Bearer secret"})
    error = caught.value
    assert error.reason.startswith("refused:"), error.reason
    assert not error.retryable
    return error


@pytest.mark.parametrize("host", RECORDER_HOSTS)
async def test_numeric_and_ipv6_spellings_of_the_recorder(
    make_fetcher: MakeFetcher, recorder: Server, host: str
) -> None:
    error = await _refused(make_fetcher(), f"http://{host}:{recorder.port}/steal")
    assert "loopback address" in error.reason and "127.0.0.2 is not allowed" in error.reason
    assert recorder.requests == []


@pytest.mark.parametrize("host", RECORDER_HOSTS)
async def test_redirect_from_the_allowed_origin_to_the_recorder(
    make_fetcher: MakeFetcher, origin: Server, recorder: Server, host: str
) -> None:
    to = quote(f"http://{host}:{recorder.port}/steal", safe="")
    error = await _refused(make_fetcher(), origin.url(f"/redirect?to={to}"))
    assert "127.0.0.2 is not allowed, reached through a redirect; to allow it, add " in error.reason
    assert error.reason.endswith("to PIXPORT_FETCH_ALLOW_CIDRS")
    assert len(origin.requests) == 1
    assert recorder.requests == []


async def test_five_hop_chain_ending_at_the_recorder(
    make_fetcher: MakeFetcher, origin: Server, recorder: Server
) -> None:
    final = quote(f"http://0x7f000002:{recorder.port}/steal", safe="")
    error = await _refused(make_fetcher(), origin.url(f"/chain/4?final={final}"))
    assert "reached through a redirect" in error.reason
    assert len(origin.requests) == 5
    assert recorder.requests == []


async def test_localhost(make_fetcher: MakeFetcher, recorder: Server) -> None:
    # The real resolver, for "localhost" only (answered from /etc/hosts), with nothing allowlisted.
    for host in ("localhost", "LOCALHOST.", "localhost"):
        error = await _refused(make_fetcher(allow="", dns="system"), f"http://{host}:{recorder.port}/")
        assert "loopback address" in error.reason
        assert "(localhost resolves to it)" in error.reason
    assert recorder.requests == []


async def test_dns_name_resolving_to_the_recorder(make_fetcher: MakeFetcher, recorder: Server) -> None:
    fetcher = make_fetcher(dns={"innocent.example": ["127.0.0.2"]})
    error = await _refused(fetcher, f"http://innocent.example:{recorder.port}/")
    assert error.reason == (
        "refused: loopback address 127.0.0.2 is not allowed (innocent.example resolves to it)"
        "; to allow it, add 127.0.0.2/32 (or its network) to PIXPORT_FETCH_ALLOW_CIDRS"
    )
    assert recorder.requests == []


async def test_dns_name_resolving_to_mapped_ipv6_of_the_recorder(make_fetcher: MakeFetcher, recorder: Server) -> None:
    fetcher = make_fetcher(dns={"v6.example": ["::ffff:127.0.0.2"]})
    error = await _refused(fetcher, f"http://v6.example:{recorder.port}/")
    assert "IPv4-mapped IPv6 of a loopback address ::ffff:127.0.0.2" in error.reason
    assert recorder.requests == []


async def test_redirect_to_a_dns_name_resolving_to_the_recorder(
    make_fetcher: MakeFetcher, origin: Server, recorder: Server
) -> None:
    fetcher = make_fetcher(dns={"innocent.example": ["127.0.0.2"]})
    to = quote(f"http://innocent.example:{recorder.port}/", safe="")
    error = await _refused(fetcher, origin.url(f"/redirect?to={to}"))
    assert "innocent.example resolves to it" in error.reason
    assert recorder.requests == []


async def test_mixed_answers_connect_only_to_the_allowed_address(
    make_fetcher: MakeFetcher, recorder: Server, twin: Server
) -> None:
    # twin listens on 127.0.0.1 with the recorder's port: a connection goes to exactly one of them.
    fetcher = make_fetcher(dns={"mixed.example": ["127.0.0.2", "127.0.0.1", "127.0.0.2"]})
    for _ in range(3):
        result = await fetcher.fetch(f"http://mixed.example:{recorder.port}/image")
        assert result.status == 200
    assert len(twin.requests) == 3
    assert recorder.requests == []


async def test_dns_rebinding_after_a_first_allowed_answer(
    make_fetcher: MakeFetcher, recorder: Server, twin: Server, fake_dns: type
) -> None:
    dns = fake_dns({}, sequence={"rebind.example": [["127.0.0.1"], ["127.0.0.2"]]})
    fetcher = make_fetcher(dns=dns)
    url = f"http://rebind.example:{recorder.port}/image"
    assert (await fetcher.fetch(url)).status == 200
    for _ in range(3):
        try:
            await fetcher.fetch(url)  # may reuse the checked keep-alive connection, or re-resolve and refuse
        except FetchError as error:
            assert error.reason.startswith("refused: loopback address 127.0.0.2")
    assert recorder.requests == []


async def test_numeric_dns_names_are_not_handed_to_getaddrinfo(make_fetcher: MakeFetcher, recorder: Server) -> None:
    # Even if a numeric spelling reached the resolver unnormalised, the guard parses it itself.
    fetcher = make_fetcher()
    fetcher._session_for_request()
    resolver = fetcher._resolver
    assert resolver is not None
    with pytest.raises(OSError, match=r"127\.0\.0\.2 is not allowed"):
        await resolver.resolve("0x7f000002", recorder.port)
    assert recorder.requests == []


async def test_post_is_guarded_too(make_fetcher: MakeFetcher, recorder: Server) -> None:
    fetcher = make_fetcher(dns={"hook.example": ["127.0.0.2"]})
    for url in (
        recorder.url("/hook"),
        f"http://0x7f000002:{recorder.port}/",
        f"http://hook.example:{recorder.port}/",
    ):
        with pytest.raises(FetchError, match=r"^refused: loopback address") as caught:
            await fetcher.post(url, b"{}", {})
        assert not caught.value.retryable
    assert recorder.requests == []


FORBIDDEN_ELSEWHERE = [
    (
        "http://169.254.169.254/latest/meta-data/",
        "refused: link-local address (cloud metadata) 169.254.169.254",
    ),
    ("http://0xa9fea9fe/", "refused: link-local address (cloud metadata) 169.254.169.254"),
    ("http://[fd00:ec2::254]/", "refused: link-local address (cloud metadata) fd00:ec2::254"),
    ("http://[::ffff:a9fe:a9fe]/", "refused: IPv4-mapped IPv6 of a link-local address (cloud metadata)"),
    ("http://10.0.0.1/", "refused: private address (RFC 1918) 10.0.0.1"),
    ("http://192.168.0.1:8080/", "refused: private address (RFC 1918) 192.168.0.1"),
    ("http://172.16.0.1/", "refused: private address (RFC 1918) 172.16.0.1"),
    ("http://100.100.100.200/", "refused: carrier-grade NAT address (100.64.0.0/10) 100.100.100.200"),
    ("http://0/", "refused: unspecified address 0.0.0.0"),
    ("http://[::]/", "refused: unspecified address ::"),
    ("http://[::1]/", "refused: loopback address ::1"),
    ("http://[fe80::1]/", "refused: link-local address fe80::1"),
    ("http://[fc00::1]/", "refused: unique local address (fc00::/7) fc00::1"),
    ("http://224.0.0.1/", "refused: multicast address 224.0.0.1"),
    ("http://255.255.255.255/", "refused: broadcast address 255.255.255.255"),
    ("http://[64:ff9b::a00:1]/", "refused: NAT64 IPv6 of a private address (RFC 1918) 64:ff9b::a00:1"),
    ("http://[2002:a00:1::]/", "refused: 6to4 IPv6 of a private address (RFC 1918)"),
]


@pytest.mark.parametrize(("url", "reason"), FORBIDDEN_ELSEWHERE)
async def test_other_forbidden_ranges_are_refused_before_connecting(
    make_fetcher: MakeFetcher, url: str, reason: str, fake_dns: type
) -> None:
    dns = fake_dns({})
    error = await _refused(make_fetcher(dns=dns), url)
    assert error.reason == f"{reason} is not allowed" or error.reason.startswith(reason)
    assert dns.calls == []


async def test_allowlisted_public_name_connects(make_fetcher: MakeFetcher, origin: Server) -> None:
    # "Public" DNS answer simulated by a loopback address the policy allows.
    fetcher = make_fetcher(allow="127.0.0.1/32", dns={"cdn.example": ["127.0.0.1"]})
    assert (await fetcher.fetch(f"http://cdn.example:{origin.port}/image")).status == 200
