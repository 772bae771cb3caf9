"""A camera-style JPEG: photo-like pixels and the EXIF a phone or DSLR writes (IFD0, Exif IFD, GPS IFD).

The pixels are stored the way a camera held sideways stores them (landscape, `Orientation` telling the viewer
to rotate), with a red marker whose upright position tells whether a derivative was rotated correctly.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from PIL.TiffImagePlugin import IFDRational

MARKER = (230, 20, 20)

# Tag numbers (PIL.ExifTags.Base / GPS), spelled out so the generator reads like the EXIF it writes.
_MAKE, _MODEL, _ORIENTATION, _SOFTWARE, _DATETIME = 0x010F, 0x0110, 0x0112, 0x0131, 0x0132
_X_RESOLUTION, _Y_RESOLUTION, _RESOLUTION_UNIT = 0x011A, 0x011B, 0x0128
_EXIF_IFD, _GPS_IFD = 0x8769, 0x8825
_EXPOSURE_TIME, _F_NUMBER, _ISO, _DATETIME_ORIGINAL = 0x829A, 0x829D, 0x8827, 0x9003
_FOCAL_LENGTH, _MAKER_NOTE, _LENS_MODEL = 0x920A, 0x927C, 0xA434
_GPS_VERSION, _LAT_REF, _LAT, _LNG_REF, _LNG = 0x0000, 0x0001, 0x0002, 0x0003, 0x0004


@dataclass(frozen=True)
class Camera:
    make: str = "Canon"
    model: str = "Canon EOS 5D Mark IV"
    taken: str = "2018:01:01 08:00:00"
    orientation: int = 6
    latitude: tuple[float, float, float] = (48.0, 51.0, 24.0)
    latitude_ref: str = "N"
    longitude: tuple[float, float, float] = (2.0, 21.0, 3.0)
    longitude_ref: str = "E"


def decimal(dms: tuple[float, float, float], ref: str) -> float:
    """What a reader should report for degrees/minutes/seconds and a hemisphere reference."""
    value = dms[0] + dms[1] / 60 + dms[2] / 3600
    return -value if ref in ("S", "W") else value


def photo(width: int, height: int, seed: int = 1, grain: float = 0.0) -> Image.Image:
    """Photo-like content (sky gradient, ground, shapes) in blues, greens and greys: never marker red.

    `grain` adds sensor-like noise (standard deviation in levels), which makes the JPEG as large as a
    camera's rather than a few KB of flat colour.
    """
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height))
    draw = ImageDraw.Draw(image)
    for y in range(height):
        t = y / max(1, height - 1)
        draw.line((0, y, width, y), fill=(int(40 + 60 * t), int(90 + 100 * t), int(200 - 80 * t)))
    draw.rectangle((0, height * 2 // 3, width, height), fill=(50, 110, 60))
    for _ in range(25):
        x0, y0 = rng.randrange(width), rng.randrange(height)
        size = rng.randrange(width // 20, width // 5)
        shade = rng.randrange(40, 200)
        fill = (shade // 3, shade, rng.randrange(60, 220))
        if rng.random() < 0.5:
            draw.ellipse((x0, y0, x0 + size, y0 + size * 2 // 3), fill=fill)
        else:
            draw.rectangle((x0, y0, x0 + size, y0 + size // 2), fill=fill)
    if grain:
        noise = np.random.default_rng(seed).standard_normal((height, width, 3), dtype=np.float32) * grain
        pixels = np.clip(np.asarray(image, dtype=np.float32) + noise, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels, "RGB")
    return image


def _rational(value: float) -> IFDRational:
    return IFDRational(round(value * 100), 100)


def exif(camera: Camera) -> Image.Exif:
    info = Image.Exif()
    info[_MAKE] = camera.make
    info[_MODEL] = camera.model
    info[_ORIENTATION] = camera.orientation
    info[_SOFTWARE] = "Firmware Version 1.0.4"
    info[_DATETIME] = camera.taken
    info[_X_RESOLUTION] = IFDRational(72)
    info[_Y_RESOLUTION] = IFDRational(72)
    info[_RESOLUTION_UNIT] = 2
    exif_ifd = info.get_ifd(_EXIF_IFD)
    exif_ifd[_EXPOSURE_TIME] = IFDRational(1, 250)
    exif_ifd[_F_NUMBER] = IFDRational(28, 10)
    exif_ifd[_ISO] = 200
    exif_ifd[_DATETIME_ORIGINAL] = camera.taken
    exif_ifd[_FOCAL_LENGTH] = IFDRational(50)
    exif_ifd[_LENS_MODEL] = "EF50mm f/1.8 STM"
    exif_ifd[_MAKER_NOTE] = bytes(range(256)) * 4  # binary: a reader must drop it
    gps = info.get_ifd(_GPS_IFD)
    gps[_GPS_VERSION] = b"\x02\x02\x00\x00"
    gps[_LAT_REF] = camera.latitude_ref
    gps[_LAT] = tuple(_rational(value) for value in camera.latitude)
    gps[_LNG_REF] = camera.longitude_ref
    gps[_LNG] = tuple(_rational(value) for value in camera.longitude)
    return info


def camera_jpeg(
    width: int = 1200, height: int = 800, camera: Camera | None = None, seed: int = 1, quality: int = 90,
    grain: float = 4.0,
) -> bytes:
    """A JPEG stored `width`x`height` (sideways for orientation 6/8) with full camera EXIF.

    The red marker sits in the stored image at x in [w/6, w/3), y in [0, h/4): for a 1200x800 image with
    orientation 6 it lands, upright (800x1200), at the top-right corner of the centred square that the
    square renditions (`mini`, `large`) show.
    """
    camera = camera or Camera()
    image = photo(width, height, seed, grain)
    ImageDraw.Draw(image).rectangle((width // 6, 0, width // 3 - 1, height // 4 - 1), fill=MARKER)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality, exif=exif(camera))
    return out.getvalue()
