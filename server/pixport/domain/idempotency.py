"""Idempotent creates: a request id (the body's `requestId`, or the `Idempotency-Key` header)
returns the job it first created, for 24 hours, but only for the same request: the same key
with a different body is refused, naming the key, instead of silently answering the old job."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import asdict

from pixport.domain.batch import BatchRequest
from pixport.domain.errors import DomainError

KEY_LIFETIME_HOURS = 24


class IdempotencyKeyReused(DomainError):
    def __init__(self, key: str) -> None:
        super().__init__(
            f"idempotency key {key!r} was already used with a different request body; use a new key "
            "for a different request"
        )
        self.key = key


def fingerprint(batch: BatchRequest) -> str:
    """SHA-256 of the request's content (everything but the key itself), canonical JSON."""
    content = asdict(batch)
    content.pop("request_id", None)
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def replay_check(key: str, expected: str) -> Callable[[str | None], None]:
    """What the store runs when the key already names a job: refuse if its fingerprint differs
    (jobs stored before fingerprints existed have none and are accepted as before)."""

    def check(stored: str | None) -> None:
        if stored is not None and stored != expected:
            raise IdempotencyKeyReused(key)

    return check
