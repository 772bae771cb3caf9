"""Images generated for tests with Pillow."""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw


def jpeg(width: int = 320, height: int = 240, seed: int = 1, quality: int = 90) -> bytes:
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (rng.randrange(256), rng.randrange(256), rng.randrange(256)))
    draw = ImageDraw.Draw(image)
    for _ in range(12):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        draw.rectangle(
            (x0, y0, x0 + rng.randrange(1, width // 2), y0 + rng.randrange(1, height // 2)),
            fill=(rng.randrange(256), rng.randrange(256), rng.randrange(256)),
        )
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


def png(width: int = 200, height: int = 100, color: tuple[int, int, int, int] = (10, 200, 30, 128)) -> bytes:
    out = io.BytesIO()
    Image.new("RGBA", (width, height), color).save(out, "PNG")
    return out.getvalue()


def gif(width: int = 60, height: int = 40, frames: int = 3) -> bytes:
    images = [Image.new("P", (width, height), i * 40) for i in range(frames)]
    out = io.BytesIO()
    images[0].save(out, "GIF", save_all=True, append_images=images[1:], duration=100, loop=0)
    return out.getvalue()
