"""The bench's own photos: distinct 12-megapixel camera JPEGs and distinct small PNGs, cached under build/.

Base photos come from pixel_bench.make_photo (gradients, shapes, blur, sensor noise: ~2.4 MB each, and
slow to draw), so a run draws a few and derives the rest: each variant gets its own coloured patch at its
own place and is encoded again, so every file differs in its pixels (and renditions), not only its bytes."""

from __future__ import annotations

import hashlib
import io
import random
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from PIL import Image

from bench.pixel_bench import make_photo

CACHE = Path(__file__).resolve().parents[1] / "build" / "bench"
_VERSION = 1


def variant(base: bytes, index: int, exif: bytes = b"") -> bytes:
    """`base` with a 64x64 patch whose colour and place depend on `index`, encoded again (quality 90)."""
    rng = random.Random(index)
    with Image.open(io.BytesIO(base)) as image:
        image.load()
        side = min(64, image.width // 3, image.height // 3)
        x, y = rng.randrange(image.width - side), rng.randrange(image.height - side)
        image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, x + side, y + side))
        out = io.BytesIO()
        image.save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


def _variant_job(args: tuple[bytes, int]) -> bytes:
    return variant(*args, exif=_camera_exif())


def _camera_exif() -> bytes:
    from PIL.TiffImagePlugin import IFDRational

    info = Image.Exif()
    info[0x010F], info[0x0110], info[0x0112], info[0x0132] = "Canon", "Canon EOS 5D Mark IV", 1, "2018:01:01 08:00:00"
    exif_ifd = info.get_ifd(0x8769)
    exif_ifd[0x829A], exif_ifd[0x8827], exif_ifd[0x9003] = IFDRational(1, 250), 200, "2018:01:01 08:00:00"
    return info.tobytes()


def photos(count: int, bases: int, processes: int = 2, cache: Path = CACHE, say: object = print) -> list[bytes]:
    """`count` distinct camera JPEGs (4000x3000) derived from `bases` drawn photos; cached between runs."""
    folder = cache / f"photos-v{_VERSION}-{bases}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"{index:05d}.jpg" for index in range(count)]
    missing = [index for index, path in enumerate(paths) if not path.exists()]
    if missing:
        say(f"drawing {bases} base photos and deriving {len(missing)} distinct 12-MP JPEGs (cached in {folder})")  # type: ignore[operator]
        with ProcessPoolExecutor(max_workers=processes) as pool:
            base_photos = list(pool.map(make_photo, range(bases)))
            made = pool.map(_variant_job, [(base_photos[index % bases], index) for index in missing])
            for index, data in zip(missing, made, strict=True):
                temporary = paths[index].with_suffix(".tmp")
                temporary.write_bytes(data)
                temporary.replace(paths[index])
    result = [path.read_bytes() for path in paths]
    if len({hashlib.sha256(data).digest() for data in result}) != len(result):
        raise RuntimeError("bench photos are not distinct")
    return result


def small_pngs(count: int, width: int = 300, height: int = 200, seed: int = 0) -> list[bytes]:
    """`count` distinct small PNGs (a logo-like gradient with a coloured block, different for each)."""
    base = Image.linear_gradient("L").resize((width, height)).convert("RGB")
    result = []
    for index in range(count):
        rng = random.Random(seed * 1_000_003 + index)
        image = base.copy()
        side = min(40, width // 3, height // 3)
        x, y = rng.randrange(width - side), rng.randrange(height - side)
        image.paste((rng.randrange(256), rng.randrange(256), rng.randrange(256)), (x, y, x + side, y + side))
        out = io.BytesIO()
        image.save(out, "PNG", compress_level=1)
        result.append(out.getvalue())
    return result
