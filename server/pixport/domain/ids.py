"""Identifiers. Media ids are capability tokens (rendition URLs need no token), so they are 128-bit random."""

from __future__ import annotations

import secrets
import string
import uuid

_ALPHABET = string.ascii_lowercase + string.digits
_BASE62 = string.ascii_letters + string.digits


def new_job_id() -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(16))


def new_media_id() -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(22))


def new_uuid() -> str:
    return str(uuid.uuid4())


def looks_like_id(value: str, *, max_length: int = 64) -> bool:
    """Cheap shape check so hostile ids (traversal, NUL, huge) never reach a query or a path."""
    return 0 < len(value) <= max_length and all(c.isalnum() or c in "-_" for c in value) and value.isascii()
