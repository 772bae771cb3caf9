"""Domain errors: what went wrong, in the caller's terms. The API layer maps them to status codes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FieldViolation:
    field: str  # JSON path in the caller's terms, e.g. "images[3].url"
    description: str


class DomainError(Exception):
    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    def __init__(self, violations: list[FieldViolation]) -> None:
        summary = "; ".join(f"{v.field}: {v.description}" for v in violations[:5])
        if len(violations) > 5:
            summary += f"; and {len(violations) - 5} more"
        super().__init__(f"invalid request: {summary}")
        self.violations = violations


class NotFound(DomainError):
    pass


class Unauthenticated(DomainError):
    pass


class PermissionDenied(DomainError):
    pass


class FailedPrecondition(DomainError):
    pass


class Conflict(DomainError):
    """The resource is busy with something that conflicts with the request (HTTP 409); retrying later may work."""


class QuotaExceeded(DomainError):
    def __init__(self, message: str, *, limit: int, used: int, requested: int, retry_after_seconds: int) -> None:
        super().__init__(message)
        self.limit = limit
        self.used = used
        self.requested = requested
        self.retry_after_seconds = retry_after_seconds
