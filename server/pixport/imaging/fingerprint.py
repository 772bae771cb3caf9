"""Compact signatures of the picture: a perceptual hash for near-duplicates and a placeholder preview."""

from __future__ import annotations

import imagehash
from PIL import Image

from pixport.imaging.placeholder import thumbhash


def perceptual_hash(image: Image.Image) -> str:
    """imagehash.phash as 16 hex chars; stable under re-encoding and resizing."""
    return str(imagehash.phash(image))


def placeholder(image: Image.Image) -> str:
    """ThumbHash, base64: decodes client-side to a blurred preview, with aspect ratio and alpha."""
    return thumbhash(image)
