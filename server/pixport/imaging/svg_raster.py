"""SVG renditions as PNG rasters at the promised sizes, drawn by resvg (resvg-py: a maintained Rust
renderer with no system libraries, unlike cairosvg). The document is rasterised once, at the largest
scale any rendition needs, and the renditions are cut from that raster like any other image's."""

from __future__ import annotations

import io
import math

import resvg_py
from PIL import Image

from pixport.imaging.renditions import Spec, specs
from pixport.imaging.types import ImageRejected, Rendition

PNG = "image/png"
MAX_RASTER_PIXELS = 16_000_000  # a thin sliver's square crops would otherwise ask for a huge raster


def raster_scale(width: int, height: int, wanted: tuple[Spec, ...]) -> float:
    """The scale at which every rendition can be cut without upscaling (within MAX_RASTER_PIXELS)."""
    scale = max(max(spec.width / (spec.crop[2] - spec.crop[0]), spec.height / (spec.crop[3] - spec.crop[1]))
                for spec in wanted)
    return min(scale, math.sqrt(MAX_RASTER_PIXELS / (width * height)))


def rasterise(document: bytes, width: int, height: int) -> tuple[Rendition, ...]:
    """PNG renditions of a sanitised SVG document whose size is `width` x `height` CSS pixels."""
    wanted = specs(width, height)
    scale = raster_scale(width, height, wanted)
    try:
        # No system fonts: faster, and the same pixels on every machine (text without a font is left out).
        drawn = resvg_py.svg_to_bytes(svg_string=document.decode("utf-8"), zoom=scale, skip_system_fonts=True)
    except Exception as error:  # resvg raises plain exceptions for documents it cannot draw
        raise ImageRejected(f"SVG could not be rendered: {str(error)[:200]}") from None
    with Image.open(io.BytesIO(bytes(drawn))) as opened:
        raster = opened.convert("RGBA")
    sx, sy = raster.width / width, raster.height / height
    renditions = []
    for spec in wanted:
        left, top, right, bottom = spec.crop
        box = (left * sx, top * sy, right * sx, bottom * sy)
        image = raster.resize((spec.width, spec.height), Image.Resampling.LANCZOS, box=box)
        out = io.BytesIO()
        image.save(out, "PNG", optimize=False, compress_level=6)
        renditions.append(Rendition(name=spec.name, mime_type=PNG, width=spec.width, height=spec.height,
                                    data=out.getvalue()))
    return tuple(renditions)
