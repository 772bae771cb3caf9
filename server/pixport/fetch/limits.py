"""Bounds on a single fetch, so a hostile origin costs a bounded amount of time and memory."""

from __future__ import annotations

from dataclasses import dataclass

# aiohttp's response header limits, set explicitly so they do not drift with aiohttp releases.
MAX_LINE_SIZE = 8190  # status line and each header line, bytes
MAX_FIELD_SIZE = 8190  # one header field, bytes
MAX_HEADERS = 128  # number of response header fields
READ_CHUNK = 64 * 1024  # the most a small bounded answer (a token response) is read at a time
# How much of a response body the connection buffers before it stops reading the socket. Image bodies are
# megabytes: at 64 KiB the socket was paused and resumed several times per body, and each 256 KiB read of
# the event loop was sliced into four copies before the body was joined.
BODY_BUFFER = 1024 * 1024


@dataclass(frozen=True)
class FetchLimits:
    connect_timeout: float = 5.0  # DNS resolution plus TCP (and TLS) connect, per hop
    total_timeout: float = 30.0  # the whole fetch: every redirect hop and the body
    max_bytes: int = 25 * 1024 * 1024  # body size after Content-Encoding decoding
    max_redirects: int = 5

    def __post_init__(self) -> None:
        if self.connect_timeout <= 0 or self.total_timeout <= 0:
            raise ValueError("fetch timeouts must be positive")
        if self.max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if self.max_redirects < 0:
            raise ValueError("max_redirects must not be negative")
