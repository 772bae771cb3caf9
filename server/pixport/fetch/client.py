"""Fetcher: GET images and POST webhooks to URLs chosen by strangers, behind the egress guard."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from http import HTTPStatus
from types import TracebackType
from typing import TypeVar

import aiohttp
from aiohttp.abc import AbstractResolver
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from pixport.fetch.errors import EgressRefused, FetchError, format_seconds, format_size, translate, with_context
from pixport.fetch.limits import BODY_BUFFER, MAX_FIELD_SIZE, MAX_HEADERS, MAX_LINE_SIZE, READ_CHUNK, FetchLimits
from pixport.fetch.policy import EgressPolicy
from pixport.fetch.resolver import GuardedResolver, guarded_socket_factory
from pixport.fetch.urls import literal_ip, origin, to_yarl, validate_url

T = TypeVar("T")
FOLLOWED_REDIRECTS = frozenset({301, 302, 303, 307, 308})
RETRYABLE_STATUSES = frozenset({408, 429})
EXCERPT_CHARS = 512
_EXCERPT_BYTES = 4 * EXCERPT_CHARS


@dataclass(frozen=True)
class FetchResult:
    url: str  # final URL after redirects
    status: int
    content_type: str | None
    data: bytes
    redirects: tuple[str, ...]  # every URL that answered with a redirect, in order (the chain minus `url`)


@dataclass(frozen=True)
class PostResult:
    status: int
    headers: Mapping[str, str]  # case-insensitive
    body_excerpt: str  # at most 512 characters of the response body, for delivery logs


def retry_after_seconds(value: str | None) -> float | None:
    """A Retry-After header's delay in seconds (the HTTP-date form is ignored), capped at an hour."""
    if not value:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return min(max(seconds, 0.0), 3600.0) if seconds == seconds else None  # NaN is not a delay


def http_error(status: int, retry_after: str | None = None) -> FetchError:
    # The reason phrase comes from our table, not from the origin's status line.
    try:
        phrase = f" {HTTPStatus(status).phrase}"
    except ValueError:
        phrase = ""
    retryable = status >= 500 or status in RETRYABLE_STATUSES
    return FetchError(f"HTTP {status}{phrase} from origin", retryable=retryable, status=status,
                      retry_after_seconds=retry_after_seconds(retry_after) if retryable else None)


def _declared_length(resp: aiohttp.ClientResponse) -> int | None:
    value = resp.headers.get("Content-Length", "")
    return int(value) if value.isdigit() else None


def _printable(text: str) -> str:
    return "".join(ch if ch.isprintable() else " " for ch in text)


class Fetcher:
    """One guarded aiohttp session, created on first use and reused until close()."""

    def __init__(
        self,
        policy: EgressPolicy,
        limits: FetchLimits = FetchLimits(),  # noqa: B008 (frozen, so sharing the default is safe)
        user_agent: str = "pixport/0.1",
        *,
        resolver: AbstractResolver | None = None,
    ) -> None:
        self._policy = policy
        self._limits = limits
        self._user_agent = user_agent
        self._inner_resolver = resolver  # tests inject a fake DNS here; it is still guarded
        self._session: aiohttp.ClientSession | None = None
        self._resolver: GuardedResolver | None = None
        self._closed = False

    async def __aenter__(self) -> Fetcher:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _session_for_request(self) -> aiohttp.ClientSession:
        if self._closed:
            raise RuntimeError("Fetcher is closed")
        if self._session is None:
            self._resolver = GuardedResolver(self._policy, self._inner_resolver)
            connector = aiohttp.TCPConnector(
                resolver=self._resolver,
                use_dns_cache=False,
                socket_factory=guarded_socket_factory(self._policy),
            )
            connect = self._limits.connect_timeout
            self._session = aiohttp.ClientSession(
                connector=connector,
                trust_env=False,  # no proxy or netrc from the environment
                cookie_jar=aiohttp.DummyCookieJar(),  # cookies one origin sets never reach a later fetch
                auto_decompress=True,
                timeout=aiohttp.ClientTimeout(total=None, connect=connect, sock_connect=connect),
                headers={"User-Agent": self._user_agent},
                read_bufsize=BODY_BUFFER,
                max_line_size=MAX_LINE_SIZE,
                max_field_size=MAX_FIELD_SIZE,
                max_headers=MAX_HEADERS,
            )
        return self._session

    def _target(self, url: str, *, redirect: bool = False) -> URL:
        try:
            normal = validate_url(url)
        except ValueError as exc:
            prefix = "redirect to an invalid URL: " if redirect else ""
            raise FetchError(f"{prefix}{exc}", retryable=False) from None
        target = to_yarl(normal)
        # aiohttp never passes IP literals to the resolver: check them here (and in the socket factory).
        ip = literal_ip(target.raw_host or "")
        if ip is not None:
            rule = self._policy.check_address(ip)
            if rule is not None:
                raise EgressRefused(rule, ip)
        return target

    async def fetch(self, url: str, headers: Mapping[str, str] | None = None) -> FetchResult:
        """GET `url`, following up to max_redirects redirects; FetchError says why it failed."""
        total = self._limits.total_timeout
        try:
            async with asyncio.timeout(total):
                return await self._fetch(url, dict(headers or {}))
        except TimeoutError:
            reason = f"timed out: origin did not respond completely within {format_seconds(total)}"
            raise FetchError(reason, retryable=True) from None

    async def _fetch(self, url: str, caller_headers: dict[str, str]) -> FetchResult:
        session = self._session_for_request()
        chain: list[str] = []
        try:
            current = self._target(url)
        except EgressRefused as refused:
            raise FetchError(refused.reason) from None
        first_origin = origin(current)
        forward_headers = True
        while True:
            try:
                async with session.get(
                    current, headers=caller_headers if forward_headers else None, allow_redirects=False
                ) as resp:
                    if resp.status not in FOLLOWED_REDIRECTS:
                        if not 200 <= resp.status < 300:
                            raise http_error(resp.status, resp.headers.get("Retry-After"))
                        data = await self._read_body(resp)
                        content_type = resp.headers.get("Content-Type")
                        return FetchResult(str(current), resp.status, content_type, data, tuple(chain))
                    status, location = resp.status, resp.headers.get("Location")
            except aiohttp.ClientError as exc:
                error = translate(exc, connect_timeout=self._limits.connect_timeout)
                if chain and error.reason.startswith("refused"):
                    error = FetchError(with_context(error.reason, ", reached through a redirect"), retryable=False)
                raise error from None
            chain.append(str(current))
            current = self._redirect_target(current, status, location, len(chain))
            if origin(current) != first_origin:
                # Credentials the caller meant for one origin must not reach another (or plain http).
                forward_headers = False

    def _redirect_target(self, current: URL, status: int, location: str | None, hops: int) -> URL:
        limit = self._limits.max_redirects
        if hops > limit:
            raise FetchError(f"too many redirects (more than {limit})", retryable=False)
        if not location:
            raise FetchError(f"HTTP {status} redirect from origin without a Location header", retryable=False)
        try:
            joined = current.join(URL(location))
        except (ValueError, TypeError):
            raise FetchError("origin sent a malformed redirect Location", retryable=False) from None
        try:
            return self._target(str(joined), redirect=True)
        except EgressRefused as refused:
            raise FetchError(with_context(refused.reason, ", reached through a redirect"), retryable=False) from None

    async def _read_body(self, resp: aiohttp.ClientResponse) -> bytes:
        limit = self._limits.max_bytes
        too_large = FetchError(f"response larger than {format_size(limit)}", retryable=False)
        declared = _declared_length(resp)
        if declared is not None and declared > limit:
            resp.close()
            raise too_large
        # The chunks are kept as they come (as the socket delivered them, not cut to a size, which copies
        # them) and joined once at the end (a bytearray grown chunk by chunk, then turned into bytes,
        # copied every body twice).
        chunks: list[bytes] = []
        size = 0
        # Counted after decoding: aiohttp inflates gzip/deflate incrementally, at most BODY_BUFFER at a
        # time, and buffers at most twice that before it stops reading: a hostile body overshoots the
        # limit by a few megabytes at most before it is refused.
        async for chunk in resp.content.iter_any():
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:
                resp.close()
                raise too_large
        return b"".join(chunks)

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float = 15.0,  # noqa: ASYNC109 (part of the public interface)
    ) -> PostResult:
        """POST `body` once (no redirects followed: a 3xx is returned like any other status)."""

        async def excerpt(resp: aiohttp.ClientResponse) -> PostResult:
            text = await self._read_excerpt(resp)
            return PostResult(resp.status, CIMultiDictProxy(CIMultiDict(resp.headers)), text)

        return await self._post_once(url, body, headers, timeout, excerpt)

    async def post_and_read(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        timeout: float = 15.0,  # noqa: ASYNC109 (part of the public interface)
        max_bytes: int = 65536,
    ) -> FetchResult:
        """POST once and read the whole (bounded) answer, e.g. an OAuth token response. Any status
        is returned; no redirects are followed."""

        async def whole(resp: aiohttp.ClientResponse) -> FetchResult:
            data = bytearray()
            async for chunk in resp.content.iter_chunked(READ_CHUNK):
                data += chunk
                if len(data) > max_bytes:
                    resp.close()
                    raise FetchError(f"response larger than {max_bytes} bytes")
            return FetchResult(str(resp.url), resp.status, resp.headers.get("Content-Type"), bytes(data), ())

        return await self._post_once(url, body, headers, timeout, whole)

    async def _post_once(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        timeout: float,  # noqa: ASYNC109
        read: Callable[[aiohttp.ClientResponse], Awaitable[T]],
    ) -> T:
        session = self._session_for_request()
        try:
            target = self._target(url)
        except EgressRefused as refused:
            raise FetchError(refused.reason) from None
        try:
            async with asyncio.timeout(timeout):
                try:
                    async with session.post(target, data=body, headers=dict(headers), allow_redirects=False) as resp:
                        return await read(resp)
                except aiohttp.ClientError as exc:
                    raise translate(exc, connect_timeout=self._limits.connect_timeout) from None
        except TimeoutError:
            reason = f"timed out: origin did not respond within {format_seconds(timeout)}"
            raise FetchError(reason, retryable=True) from None

    @staticmethod
    async def _read_excerpt(resp: aiohttp.ClientResponse) -> str:
        data = bytearray()
        try:
            while len(data) < _EXCERPT_BYTES:
                chunk = await resp.content.read(_EXCERPT_BYTES - len(data))
                if not chunk:
                    break
                data += chunk
            else:
                resp.close()  # the rest is not wanted: drop the connection rather than drain it
        except aiohttp.ClientError:
            pass  # the status is what matters for delivery; a broken body only shortens the excerpt
        return _printable(data.decode("utf-8", errors="replace"))[:EXCERPT_CHARS]

    async def close(self) -> None:
        self._closed = True
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        if self._resolver is not None:
            resolver, self._resolver = self._resolver, None
            await resolver.close()  # aiohttp closes only resolvers it created itself
