from __future__ import annotations

import asyncio
import errno
import shutil
import socket
import ssl
import subprocess
from collections.abc import AsyncIterator
from ipaddress import ip_address
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.client_reqrep import ConnectionKey
from conftest import MakeFetcher
from multidict import CIMultiDict, CIMultiDictProxy
from pixport.fetch import FetchError
from pixport.fetch.errors import (
    EgressRefused,
    GuardRefusal,
    find_refusal,
    format_seconds,
    format_size,
    translate,
)
from yarl import URL

KEY = ConnectionKey("images.example", 443, True, True, None, None, None)


def _translate(exc: BaseException) -> tuple[str, bool]:
    error = translate(exc, connect_timeout=5.0)
    return error.reason, error.retryable


def test_fetch_error_carries_reason_and_retryable() -> None:
    error = FetchError("HTTP 503 Service Unavailable from origin", retryable=True)
    assert (str(error), error.reason, error.retryable) == (error.reason, error.reason, True)
    assert FetchError("x").retryable is False
    assert "retryable=True" in repr(error)


HINT = "; to allow it, add {} (or its network) to PIXPORT_FETCH_ALLOW_CIDRS"


def test_egress_refused_reason() -> None:
    assert EgressRefused("loopback address", ip_address("127.0.0.1")).reason == (
        "refused: loopback address 127.0.0.1 is not allowed" + HINT.format("127.0.0.1/32")
    )
    assert EgressRefused("loopback address", ip_address("::1"), host="localhost").reason == (
        "refused: loopback address ::1 is not allowed (localhost resolves to it)" + HINT.format("::1/128")
    )


def test_refusals_are_found_however_aiohttp_wraps_them() -> None:
    refused = EgressRefused("loopback address", ip_address("127.0.0.2"))
    wrapped = aiohttp.ClientConnectorDNSError(KEY, refused)
    assert find_refusal(wrapped) is refused
    try:
        try:
            raise refused
        except OSError as inner:
            raise aiohttp.ClientConnectorError(KEY, OSError("x")) from inner
    except aiohttp.ClientConnectorError as outer:
        assert find_refusal(outer) is refused
    assert find_refusal(ValueError("x")) is None
    expected = "refused: loopback address 127.0.0.2 is not allowed" + HINT.format("127.0.0.2/32")
    assert _translate(wrapped) == (expected, False)
    assert _translate(aiohttp.ClientConnectorError(KEY, GuardRefusal("refused: odd"))) == (
        "refused: odd",
        False,
    )


@pytest.mark.parametrize(
    ("exc", "reason", "retryable"),
    [
        (
            aiohttp.ConnectionTimeoutError("Connection timeout to host x"),
            "timed out connecting to origin after 5 s",
            True,
        ),
        (aiohttp.SocketTimeoutError("x"), "timed out reading from origin", True),
        (
            aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(socket.EAI_NONAME, "Name or service not known")),
            "could not resolve host images.example",
            False,
        ),
        (
            aiohttp.ClientConnectorDNSError(KEY, socket.gaierror(socket.EAI_AGAIN, "Temporary failure")),
            "could not resolve host images.example",
            True,
        ),
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(errno.ECONNREFUSED, "Connect call failed")),
            "could not connect to origin (Connection refused)",
            True,
        ),
        (aiohttp.ClientConnectorError(KEY, OSError("no errno")), "could not connect to origin", True),
        (
            aiohttp.ServerDisconnectedError(),
            "origin closed the connection before the response was complete",
            True,
        ),
        (
            aiohttp.ClientPayloadError("Response payload is not completed"),
            "response body from origin was truncated or could not be decoded",
            True,
        ),
        (aiohttp.InvalidURL("http://x"), "URL is malformed", False),
        (aiohttp.ClientOSError(errno.ECONNRESET, "reset"), "connection to origin failed", True),
        (aiohttp.ClientError("anything else"), "request to origin failed", False),
    ],
)
def test_translation(exc: BaseException, reason: str, retryable: bool) -> None:
    assert _translate(exc) == (reason, retryable)


def test_response_errors_do_not_echo_what_the_origin_sent() -> None:
    info = aiohttp.RequestInfo(URL("http://x/"), "GET", CIMultiDictProxy(CIMultiDict()))
    exc = aiohttp.ClientResponseError(info, (), status=400, message="Got more than 8190 bytes: SECRET-HEADER-VALUE")
    reason, retryable = _translate(exc)
    assert reason == "origin sent a malformed or oversized HTTP response header"
    assert "SECRET" not in reason and not retryable


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (25 * 1024 * 1024, "25 MB"),
        (1024 * 1024, "1 MB"),
        (64 * 1024, "64 KB"),
        (1000, "1000 bytes"),
        (1, "1 bytes"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


def test_format_seconds() -> None:
    assert (format_seconds(5.0), format_seconds(0.25), format_seconds(30)) == ("5 s", "0.25 s", "30 s")


# Real failures against loopback servers


async def test_oversized_response_headers(make_fetcher: MakeFetcher, raw_origin: tuple[str, int]) -> None:
    host, port = raw_origin
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch(f"http://{host}:{port}/huge-header")
    assert caught.value.reason == "origin sent a malformed or oversized HTTP response header"
    assert "AAAA" not in caught.value.reason


async def test_truncated_body(make_fetcher: MakeFetcher, raw_origin: tuple[str, int]) -> None:
    host, port = raw_origin
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch(f"http://{host}:{port}/truncated")
    assert caught.value.reason == "response body from origin was truncated or could not be decoded"
    assert caught.value.retryable


async def test_corrupt_gzip(make_fetcher: MakeFetcher, raw_origin: tuple[str, int]) -> None:
    host, port = raw_origin
    with pytest.raises(FetchError, match="truncated or could not be decoded"):
        await make_fetcher().fetch(f"http://{host}:{port}/bad-gzip")


async def test_garbage_instead_of_http(make_fetcher: MakeFetcher, raw_origin: tuple[str, int]) -> None:
    host, port = raw_origin
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch(f"http://{host}:{port}/garbage")
    assert caught.value.reason == "origin sent a malformed or oversized HTTP response header"


async def test_untrusted_tls_certificate(make_fetcher: MakeFetcher, tls_origin: int) -> None:
    with pytest.raises(FetchError) as caught:
        await make_fetcher().fetch(f"https://127.0.0.1:{tls_origin}/")
    assert (caught.value.reason, caught.value.retryable) == (
        "TLS certificate of origin could not be verified",
        False,
    )


RAW_RESPONSES = {
    b"/huge-header": b"HTTP/1.1 200 OK\r\nX-Big: " + b"A" * 20000 + b"\r\nContent-Length: 0\r\n\r\n",
    b"/truncated": b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10,
    b"/bad-gzip": b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 20\r\n\r\n" + b"\x1f\x8b" + b"z" * 18,
    b"/garbage": b"SSH-2.0-OpenSSH_9.6\r\n\r\n",
}


@pytest_asyncio.fixture(scope="module")
async def raw_origin() -> AsyncIterator[tuple[str, int]]:
    """Answers each request with canned bytes, then closes: the malformed responses aiohttp.web can't send."""

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request_line = await reader.readline()
        while (await reader.readline()) not in (b"\r\n", b""):
            pass
        path = request_line.split(b" ")[1] if request_line.count(b" ") >= 2 else b"/"
        writer.write(RAW_RESPONSES.get(path, b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    yield "127.0.0.1", server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()


@pytest.fixture(scope="module")
def tls_context(tmp_path_factory: pytest.TempPathFactory) -> ssl.SSLContext:
    """A server context with a self-signed certificate for 127.0.0.1, which no client trusts."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is not installed: the TLS tests need it (apt-get install openssl)")
    directory: Path = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


@pytest_asyncio.fixture(scope="module")
async def tls_origin(tls_context: ssl.SSLContext) -> AsyncIterator[int]:
    async def hello(request: web.Request) -> web.Response:
        return web.Response(text="hello")

    app = web.Application()
    app.router.add_get("/", hello)
    runner = web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls_context)
    await site.start()
    assert site._server is not None
    yield site._server.sockets[0].getsockname()[1]
    await runner.cleanup()


def test_refusal_context_stays_before_the_allow_hint() -> None:
    from pixport.fetch.errors import with_context

    reason = EgressRefused("loopback address", ip_address("127.0.0.2")).reason
    assert with_context(reason, ", reached through a redirect") == (
        "refused: loopback address 127.0.0.2 is not allowed, reached through a redirect" + HINT.format("127.0.0.2/32")
    )
    assert with_context("refused: odd", ", x") == "refused: odd, x"
