"""Compact signatures of the picture: a perceptual hash for near-duplicates and a BlurHash placeholder."""

from __future__ import annotations

import blurhash
import imagehash
import numpy as np
from PIL import Image

# BlurHash keeps only a few low-frequency components: a 32 px copy gives the same string as the
# full image at a tiny fraction of the (pure Python) encoding time.
_PLACEHOLDER_SIZE = 32
_COMPONENTS = (4, 3)


def perceptual_hash(image: Image.Image) -> str:
    """imagehash.phash as 16 hex chars; stable under re-encoding and resizing."""
    return str(imagehash.phash(image))


def placeholder(image: Image.Image) -> str:
    """BlurHash of the image (transparent areas composited on white)."""
    small = image.convert("RGBA")
    small.thumbnail((_PLACEHOLDER_SIZE, _PLACEHOLDER_SIZE), Image.Resampling.BILINEAR)
    flattened = Image.new("RGB", small.size, (255, 255, 255))
    flattened.paste(small, mask=small.getchannel("A"))
    pixels = np.asarray(flattened, dtype=np.float64)
    return str(blurhash.encode(pixels, *_COMPONENTS))
