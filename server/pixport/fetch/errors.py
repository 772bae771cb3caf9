"""What a failed fetch tells its caller: a sentence a person can act on, and whether to retry."""

from __future__ import annotations

import os
import socket

import aiohttp

from pixport.fetch.policy import IPAddress, display

_NO_SUCH_HOST = {
    getattr(socket, name) for name in ("EAI_NONAME", "EAI_NODATA", "EAI_ADDRFAMILY") if hasattr(socket, name)
}


class FetchError(Exception):
    """A fetch or delivery that did not succeed.

    `reason` never contains fetched content or a stack trace; `retryable` is True for failures that may
    go away (timeouts, connection errors, 5xx, 408, 429) and False for refusals, 4xx and size limits.
    """

    def __init__(
        self, reason: str, *, retryable: bool = False, status: int | None = None,
        retry_after_seconds: float | None = None,
    ) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable
        self.status = status  # the origin's HTTP status, when it answered with an error status
        self.retry_after_seconds = retry_after_seconds  # the origin's Retry-After (delta-seconds form)

    def __repr__(self) -> str:
        return f"FetchError({self.reason!r}, retryable={self.retryable})"


class GuardRefusal(OSError):
    """Raised inside aiohttp's connection path (resolver, socket factory) when the guard says no.

    An OSError so that aiohttp wraps it like any connection failure and the original survives as the
    cause; `reason` is already phrased for FetchError.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


ALLOW_SETTING = "PIXPORT_FETCH_ALLOW_CIDRS"
_HINT_MARK = "; to allow it, "


def allow_hint(ip: IPAddress) -> str:
    """What an operator would set to let fetches reach `ip` (the setting that overrides the egress guard)."""
    return f"{_HINT_MARK}add {display(ip)}/{ip.max_prefixlen} (or its network) to {ALLOW_SETTING}"


def with_context(reason: str, context: str) -> str:
    """`reason` plus `context` (e.g. ", reached through a redirect"), kept before the allow hint."""
    head, mark, hint = reason.partition(_HINT_MARK)
    return f"{head}{context}{mark}{hint}"


class EgressRefused(GuardRefusal):
    """The policy refuses the address a connection would go to."""

    def __init__(self, rule: str, ip: IPAddress, host: str | None = None) -> None:
        reason = f"refused: {rule} {display(ip)} is not allowed"
        if host is not None and host != str(ip):
            reason += f" ({host} resolves to it)"
        super().__init__(reason + allow_hint(ip))
        self.rule = rule
        self.ip = ip


def find_refusal(exc: BaseException) -> GuardRefusal | None:
    """The GuardRefusal somewhere in an exception's chain (aiohttp wraps it one or two levels deep)."""
    seen: set[int] = set()
    pending: list[BaseException] = [exc]
    while pending:
        current = pending.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, GuardRefusal):
            return current
        for linked in (current.__cause__, current.__context__, getattr(current, "os_error", None)):
            if isinstance(linked, BaseException):
                pending.append(linked)
    return None


def format_seconds(seconds: float) -> str:
    return f"{seconds:g} s"


def format_size(size: int) -> str:
    mib, kib = 1024 * 1024, 1024
    if size >= mib and size % mib == 0:
        return f"{size // mib} MB"
    if size >= kib and size % kib == 0:
        return f"{size // kib} KB"
    return f"{size} bytes"


def translate(exc: BaseException, *, connect_timeout: float) -> FetchError:
    """The FetchError for an exception aiohttp raised while talking to the origin."""
    refusal = find_refusal(exc)
    if refusal is not None:
        return FetchError(refusal.reason, retryable=False)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return FetchError(f"timed out connecting to origin after {format_seconds(connect_timeout)}", retryable=True)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return FetchError("timed out reading from origin", retryable=True)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        permanent = isinstance(exc.os_error, socket.gaierror) and exc.os_error.errno in _NO_SUCH_HOST
        return FetchError(f"could not resolve host {exc.host}", retryable=not permanent)
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return FetchError("TLS certificate of origin could not be verified", retryable=False)
    if isinstance(exc, aiohttp.ClientSSLError):
        return FetchError("TLS handshake with origin failed", retryable=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        errno = exc.os_error.errno
        detail = f" ({os.strerror(errno)})" if isinstance(errno, int) and errno > 0 else ""
        return FetchError(f"could not connect to origin{detail}", retryable=True)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return FetchError("origin closed the connection before the response was complete", retryable=True)
    if isinstance(exc, aiohttp.ClientPayloadError):
        return FetchError("response body from origin was truncated or could not be decoded", retryable=True)
    if isinstance(exc, aiohttp.InvalidURL):
        return FetchError("URL is malformed", retryable=False)
    if isinstance(exc, aiohttp.ClientResponseError):
        return FetchError("origin sent a malformed or oversized HTTP response header", retryable=False)
    if isinstance(exc, aiohttp.ClientConnectionError | OSError):
        return FetchError("connection to origin failed", retryable=True)
    return FetchError("request to origin failed", retryable=False)
