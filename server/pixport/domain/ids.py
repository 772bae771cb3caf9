"""Identifiers. Media ids are capability tokens (rendition URLs need no token), so they are 128-bit random."""

from __future__ import annotations

import secrets
import string
import uuid

_ALPHABET = string.ascii_lowercase + string.digits
_BASE62 = string.ascii_letters + string.digits


def new_job_id() -> str:
    return _random_string(_ALPHABET, 16)


def new_media_id() -> str:
    return _random_string(_BASE62, 22)


def _random_string(alphabet: str, length: int) -> str:
    """Uniform over every string of `length` from `alphabet`, like `secrets.choice` per character, but
    from one draw of the system's random source instead of one per character (a syscall each)."""
    number = secrets.randbelow(len(alphabet) ** length)
    characters = []
    for _ in range(length):
        number, digit = divmod(number, len(alphabet))
        characters.append(alphabet[digit])
    return "".join(characters)


def new_uuid() -> str:
    return str(uuid.uuid4())


def looks_like_id(value: str, *, max_length: int = 64) -> bool:
    """Cheap shape check so hostile ids (traversal, NUL, huge) never reach a query or a path."""
    return 0 < len(value) <= max_length and all(c.isalnum() or c in "-_" for c in value) and value.isascii()
