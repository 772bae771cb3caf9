from __future__ import annotations

import time
import tracemalloc

import pytest
from conftest import MakeFetcher
from fetch_support import Server, SlowDNS
from pixport.fetch import FetchError, FetchLimits
from pixport.fetch.limits import MAX_FIELD_SIZE, MAX_HEADERS, MAX_LINE_SIZE

MiB = 1024 * 1024


def test_defaults() -> None:
    limits = FetchLimits()
    assert (limits.connect_timeout, limits.total_timeout, limits.max_bytes, limits.max_redirects) == (
        5.0,
        30.0,
        25 * MiB,
        5,
    )
    assert (MAX_LINE_SIZE, MAX_FIELD_SIZE, MAX_HEADERS) == (8190, 8190, 128)


@pytest.mark.parametrize(
    "kwargs", [{"connect_timeout": 0}, {"total_timeout": -1}, {"max_bytes": 0}, {"max_redirects": -1}]
)
def test_nonsense_limits_are_rejected(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        FetchLimits(**kwargs)  # type: ignore[arg-type]


async def test_slow_origin_hits_the_total_timeout(make_fetcher: MakeFetcher, origin: Server) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError) as caught:
        await make_fetcher(total_timeout=0.3).fetch(origin.url("/slow?delay=10"))
    assert caught.value.reason == "timed out: origin did not respond completely within 0.3 s"
    assert caught.value.retryable
    assert time.monotonic() - started < 2


async def test_trickling_body_hits_the_total_timeout(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError, match=r"timed out: origin did not respond completely within 0\.4 s"):
        await make_fetcher(total_timeout=0.4).fetch(origin.url("/trickle"))


async def test_total_timeout_covers_the_whole_redirect_chain(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError, match="timed out"):
        await make_fetcher(total_timeout=0.3).fetch(origin.url("/redirect?to=/slow%3Fdelay%3D10"))


async def test_slow_connect_hits_the_connect_timeout(make_fetcher: MakeFetcher) -> None:
    fetcher = make_fetcher(dns=SlowDNS(), connect_timeout=0.2)
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch("http://slow-dns.example/")
    assert caught.value.reason == "timed out connecting to origin after 0.2 s"
    assert caught.value.retryable


@pytest.mark.parametrize("with_length", [True, False])
async def test_body_over_max_bytes(make_fetcher: MakeFetcher, origin: Server, with_length: bool) -> None:
    fetcher = make_fetcher(max_bytes=MiB)
    cl = "1" if with_length else "0"
    with pytest.raises(FetchError) as caught:
        await fetcher.fetch(origin.url(f"/big?n={MiB + 1}&cl={cl}"))
    assert (caught.value.reason, caught.value.retryable) == ("response larger than 1 MB", False)
    assert (await fetcher.fetch(origin.url(f"/big?n={MiB}&cl={cl}"))).data == b"x" * MiB


async def test_huge_content_length_is_rejected_before_reading(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError, match="response larger than 25 MB"):
        await make_fetcher().fetch(origin.url("/lying-length"))


async def test_streaming_stops_as_soon_as_the_limit_is_passed(make_fetcher: MakeFetcher, origin: Server) -> None:
    started = time.monotonic()
    with pytest.raises(FetchError, match="response larger than 64 KB"):
        await make_fetcher(max_bytes=64 * 1024).fetch(origin.url(f"/big?n={512 * MiB}&cl=0"))
    assert time.monotonic() - started < 2


async def test_gzip_bomb_is_stopped_after_decoding_with_bounded_memory(
    make_fetcher: MakeFetcher, origin: Server
) -> None:
    fetcher = make_fetcher(max_bytes=MiB)
    await fetcher.fetch(origin.url("/image"))  # warm up the session outside the measurement
    tracemalloc.start()
    try:
        with pytest.raises(FetchError) as caught:
            await fetcher.fetch(origin.url("/bomb"))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (caught.value.reason, caught.value.retryable) == ("response larger than 1 MB", False)
    assert peak < 16 * MiB  # the bomb inflates to 64 MiB


async def test_odd_size_limits_are_stated_in_bytes(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError, match="response larger than 1000 bytes"):
        await make_fetcher(max_bytes=1000).fetch(origin.url("/big?n=1001&cl=1"))


async def test_max_redirects_is_allowed(make_fetcher: MakeFetcher, origin: Server) -> None:
    result = await make_fetcher().fetch(origin.url("/chain/5"))
    assert len(result.redirects) == 5


async def test_one_redirect_too_many(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch(origin.url("/chain/6"))
    assert (caught.value.reason, caught.value.retryable) == ("too many redirects (more than 5)", False)
    assert len(origin.requests) == 6


async def test_redirect_loops_end(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError, match=r"too many redirects \(more than 2\)"):
        await make_fetcher(max_redirects=2).fetch(origin.url("/loop"))


async def test_zero_redirects(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError, match=r"too many redirects \(more than 0\)"):
        await make_fetcher(max_redirects=0).fetch(origin.url("/chain/1"))
