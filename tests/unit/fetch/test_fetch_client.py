from __future__ import annotations

import json
from urllib.parse import quote

import pytest
from conftest import MakeFetcher
from fetch_support import BODY_SECRET, PNG, Server
from pixport.fetch import EgressPolicy, Fetcher, FetchError


async def test_fetches_an_image(make_fetcher: MakeFetcher, origin: Server) -> None:
    result = await make_fetcher().fetch(origin.url("/image"))
    assert (result.status, result.data, result.content_type) == (200, PNG, "image/png")
    assert result.url == origin.url("/image")
    assert result.redirects == ()


async def test_returns_the_normalised_url(make_fetcher: MakeFetcher, origin: Server) -> None:
    result = await make_fetcher().fetch(f"HTTP://0x7f000001:{origin.port}/image#frag")
    assert result.url == origin.url("/image")


async def test_sends_caller_headers_and_user_agent(make_fetcher: MakeFetcher, origin: Server) -> None:
    fetcher = make_fetcher()
    result = await fetcher.fetch(origin.url("/echo"), headers={"Authorization": "Bearer t", "X-Trace": "1"})
    seen = json.loads(result.data)
    assert seen["Authorization"] == "Bearer t"
    assert seen["X-Trace"] == "1"
    assert seen["User-Agent"] == "pixport/0.1"


async def test_decodes_gzip(make_fetcher: MakeFetcher, origin: Server) -> None:
    result = await make_fetcher().fetch(origin.url("/small-gzip"))
    assert result.data == PNG


async def test_host_names_resolve_through_the_guard(make_fetcher: MakeFetcher, origin: Server) -> None:
    fetcher = make_fetcher(dns={"images.example": ["127.0.0.1"]})
    result = await fetcher.fetch(f"http://images.example:{origin.port}/echo")
    assert json.loads(result.data)["Host"] == f"images.example:{origin.port}"


async def test_cookies_are_never_stored_or_replayed(make_fetcher: MakeFetcher, origin: Server) -> None:
    fetcher = make_fetcher()
    await fetcher.fetch(origin.url("/set-cookie"))
    result = await fetcher.fetch(origin.url("/echo"))
    assert "Cookie" not in json.loads(result.data)


@pytest.mark.parametrize(
    ("code", "reason", "retryable"),
    [
        (404, "HTTP 404 Not Found from origin", False),
        (403, "HTTP 403 Forbidden from origin", False),
        (410, "HTTP 410 Gone from origin", False),
        (408, "HTTP 408 Request Timeout from origin", True),
        (429, "HTTP 429 Too Many Requests from origin", True),
        (500, "HTTP 500 Internal Server Error from origin", True),
        (503, "HTTP 503 Service Unavailable from origin", True),
        (599, "HTTP 599 from origin", True),
        (300, "HTTP 300 Multiple Choices from origin", False),
        (304, "HTTP 304 Not Modified from origin", False),
    ],
)
async def test_non_2xx_statuses(
    make_fetcher: MakeFetcher, origin: Server, code: int, reason: str, retryable: bool
) -> None:
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch(origin.url(f"/status/{code}"))
    assert (caught.value.reason, caught.value.retryable) == (reason, retryable)
    assert BODY_SECRET not in str(caught.value)


async def test_connection_refused_is_retryable(make_fetcher: MakeFetcher) -> None:
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch("http://127.0.0.1:1/")
    assert caught.value.reason.startswith("could not connect to origin")
    assert caught.value.retryable


async def test_unknown_host_is_not_retryable(make_fetcher: MakeFetcher) -> None:
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch("http://nowhere.invalid/")
    assert (caught.value.reason, caught.value.retryable) == ("could not resolve host nowhere.invalid", False)


async def test_invalid_urls_raise_fetch_error(make_fetcher: MakeFetcher) -> None:
    with pytest.raises(FetchError, match='unsupported URL scheme "ftp"') as caught:
        await make_fetcher().fetch("ftp://127.0.0.1/")
    assert not caught.value.retryable


# Redirects


async def test_follows_redirects_and_reports_the_chain(make_fetcher: MakeFetcher, origin: Server) -> None:
    start = origin.url("/chain/2")
    result = await make_fetcher().fetch(start)
    assert result.data == b"end of chain"
    assert result.url == origin.url("/chain/0")
    assert result.redirects == (start, origin.url("/chain/1"))


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_every_redirect_status_becomes_a_get(make_fetcher: MakeFetcher, origin: Server, status: int) -> None:
    target = quote(origin.url("/image"), safe="")
    result = await make_fetcher().fetch(origin.url(f"/redirect?status={status}&to={target}"))
    assert result.data == PNG
    assert [r.method for r in origin.requests] == ["GET", "GET"]


async def test_same_origin_redirect_keeps_caller_headers(make_fetcher: MakeFetcher, origin: Server) -> None:
    result = await make_fetcher().fetch(origin.url("/redirect?to=/echo"), headers={"Authorization": "Bearer t"})
    assert json.loads(result.data)["Authorization"] == "Bearer t"


@pytest.mark.parametrize("other", ["origin_b", "origin_c"])
async def test_cross_origin_redirect_drops_every_caller_header(
    make_fetcher: MakeFetcher, origin: Server, servers: dict[str, Server], other: str
) -> None:
    target = servers[other]
    sensitive = {"Authorization": "Bearer t", "Cookie": "a=b", "Proxy-Authorization": "x", "X-Api-Key": "k"}
    to = quote(target.url("/echo"), safe="")
    result = await make_fetcher().fetch(origin.url(f"/redirect?to={to}"), headers=sensitive)
    seen = json.loads(result.data)
    assert not set(sensitive) & set(seen)
    assert seen["User-Agent"] == "pixport/0.1"
    assert "Authorization" in origin.requests[-1].headers


async def test_headers_stay_dropped_when_the_chain_comes_back(
    make_fetcher: MakeFetcher, origin: Server, origin_b: Server
) -> None:
    back = quote(origin.url("/echo"), safe="")
    via_b = quote(origin_b.url(f"/redirect?to={back}"), safe="")
    result = await make_fetcher().fetch(origin.url(f"/redirect?to={via_b}"), headers={"Authorization": "t"})
    assert "Authorization" not in json.loads(result.data)


async def test_redirect_without_location(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError, match="HTTP 302 redirect from origin without a Location header"):
        await make_fetcher().fetch(origin.url("/no-location"))


@pytest.mark.parametrize(
    ("location", "reason"),
    [
        (
            "ftp://127.0.0.1/x",
            'redirect to an invalid URL: unsupported URL scheme "ftp" (only http and https)',
        ),
        ("javascript:alert(1)", 'redirect to an invalid URL: unsupported URL scheme "javascript"'),
        ("data:image/png;base64,AAAA", 'redirect to an invalid URL: unsupported URL scheme "data"'),
        ("http://user:pw@127.0.0.1/", "redirect to an invalid URL: URLs with credentials"),
        ("http://[fe80::1%25eth0]/", "redirect to an invalid URL: IPv6 zone identifiers"),
    ],
)
async def test_redirects_to_invalid_urls(make_fetcher: MakeFetcher, origin: Server, location: str, reason: str) -> None:
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch(origin.url(f"/redirect?to={quote(location, safe='')}"))
    assert caught.value.reason.startswith(reason)
    assert not caught.value.retryable


# POST (webhook delivery)


async def test_post_delivers_and_reports(make_fetcher: MakeFetcher, origin: Server) -> None:
    fetcher = make_fetcher()
    result = await fetcher.post(origin.url("/post"), b'{"id": 1}', {"Content-Type": "application/json"})
    assert result.status == 202
    assert result.headers["retry-after"] == "120"
    assert result.body_excerpt.startswith("accepted y")
    assert len(result.body_excerpt) == 512
    assert origin.bodies[-1] == b'{"id": 1}'
    assert origin.requests[-1].headers["Content-Type"] == "application/json"


async def test_post_returns_error_statuses_and_does_not_follow_redirects(
    make_fetcher: MakeFetcher, origin: Server, recorder: Server
) -> None:
    fetcher = make_fetcher()
    assert (await fetcher.post(origin.url("/post?status=500"), b"{}", {})).status == 500
    to = quote(recorder.url("/"), safe="")
    result = await fetcher.post(origin.url(f"/post?status=307&to={to}"), b"{}", {})
    assert result.status == 307
    assert result.headers["Location"] == recorder.url("/")
    assert recorder.requests == []


async def test_post_connection_refused(make_fetcher: MakeFetcher) -> None:
    with pytest.raises(FetchError, match="could not connect to origin") as caught:
        await make_fetcher().post("http://127.0.0.1:1/hook", b"{}", {})
    assert caught.value.retryable


async def test_post_times_out(make_fetcher: MakeFetcher, origin: Server) -> None:
    with pytest.raises(FetchError) as caught:
        await make_fetcher().post(origin.url("/slow"), b"{}", {}, timeout=0.2)
    assert caught.value.reason == "timed out: origin did not respond within 0.2 s"
    assert caught.value.retryable


# Lifecycle


async def test_one_session_is_reused_and_close_is_final(origin: Server) -> None:
    policy = EgressPolicy.from_env({"PIXPORT_FETCH_ALLOW_CIDRS": "127.0.0.1/32"})
    fetcher = Fetcher(policy)
    await fetcher.fetch(origin.url("/image"))
    session = fetcher._session
    await fetcher.fetch(origin.url("/image"))
    assert fetcher._session is session
    await fetcher.close()
    await fetcher.close()
    with pytest.raises(RuntimeError, match="closed"):
        await fetcher.fetch(origin.url("/image"))


async def test_close_closes_the_injected_resolver(origin: Server, fake_dns: type) -> None:
    closed: list[bool] = []

    class Recording(fake_dns):  # type: ignore[misc, valid-type]
        async def close(self) -> None:
            closed.append(True)

    fetcher = Fetcher(EgressPolicy(), resolver=Recording({}))
    await fetcher.close()  # never used: nothing to close
    assert closed == []
    fetcher = Fetcher(EgressPolicy(), resolver=Recording({}))
    with pytest.raises(FetchError, match="could not resolve host"):
        await fetcher.fetch("http://unknown.example/")
    await fetcher.close()
    assert closed == [True]


async def test_works_as_an_async_context_manager(origin: Server) -> None:
    async with Fetcher(EgressPolicy.from_env({"PIXPORT_FETCH_ALLOW_CIDRS": "127.0.0.1"})) as fetcher:
        assert (await fetcher.fetch(origin.url("/image"))).data == PNG


def test_can_be_constructed_outside_an_event_loop() -> None:
    Fetcher(EgressPolicy())


async def test_proxy_environment_is_ignored(
    make_fetcher: MakeFetcher, origin: Server, recorder: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "ALL_PROXY"):
        monkeypatch.setenv(name, recorder.url("/"))
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert (await make_fetcher().fetch(origin.url("/image"))).data == PNG
    assert recorder.requests == []
