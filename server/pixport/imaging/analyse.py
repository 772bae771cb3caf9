"""One image in, everything pixport keeps about it out: pure, synchronous, run inside the pixel pool."""

from __future__ import annotations

import hashlib

from pixport.imaging import colors, fingerprint, png, svg, svg_raster
from pixport.imaging.decode import decode, load_pixels
from pixport.imaging.limits import check_byte_size, count_frames, open_image
from pixport.imaging.metadata import read_metadata
from pixport.imaging.renditions import render
from pixport.imaging.sniff import looks_like_polyglot, sniff
from pixport.imaging.types import MIME_TYPES, Analysis, ImageRejected, Limits

NOT_AN_IMAGE = "not an image: the content is not PNG, JPEG, GIF, WebP or SVG"


def analyse(data: bytes, limits: Limits) -> Analysis:
    """Type, limits, metadata, fingerprints and renditions of one image; raises ImageRejected."""
    check_byte_size(data, limits)
    fmt = sniff(data)
    if fmt is None:
        raise ImageRejected(NOT_AN_IMAGE)
    try:
        if fmt == "svg":
            return _analyse_svg(data)
        return _analyse_raster(data, fmt, limits)
    except MemoryError:
        # Caught here so the pool process can report it and carry on; RLIMIT_AS makes this the usual way
        # an oversized decode ends.
        raise ImageRejected("image processing ran out of memory") from None


def _analyse_raster(data: bytes, fmt: str, limits: Limits) -> Analysis:
    if looks_like_polyglot(data):
        raise ImageRejected("refused: the file starts like an image but also contains HTML or script")
    if fmt == "png":
        png.check_chunks(data)
    # Everything stays inside the block: the decoded image may be the opened file's own pixels.
    with open_image(data, fmt, limits) as im:
        frame_count = count_frames(im, limits)
        if fmt != "jpeg":
            # Decoded first, so truncation reads as such: Pillow's PNG reader loads the whole image to
            # look for EXIF, and metadata reading forgives every error. JPEG waits: its draft comes first.
            load_pixels(im)
        metadata = read_metadata(im)
        decoded = decode(im, metadata.orientation)
        renditions, small = render(decoded)
        sample = colors.sample(small)
        phash = fingerprint.perceptual_hash(small)
        placeholder = fingerprint.placeholder(small)
    return Analysis(
        format=fmt,
        mime_type=MIME_TYPES[fmt],
        width=decoded.width,
        height=decoded.height,
        byte_size=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        original=data,
        exif=metadata.exif,
        taken_at=metadata.taken_at,
        gps=metadata.gps,
        frame_count=frame_count,
        has_alpha=decoded.has_alpha,
        is_grayscale=decoded.source_grayscale or colors.is_grayscale(sample),
        phash=phash,
        colors=colors.dominant_colors(sample),
        placeholder=placeholder,
        renditions=renditions,
    )


def _analyse_svg(data: bytes) -> Analysis:
    # The original stays the sanitised document; the renditions are PNG rasters of it at their sizes.
    document, (width, height) = svg.sanitise(data)
    renditions = svg_raster.rasterise(document, width, height)
    return Analysis(
        format="svg",
        mime_type=MIME_TYPES["svg"],
        width=width,
        height=height,
        byte_size=len(document),
        sha256=hashlib.sha256(document).hexdigest(),
        original=document,
        exif={},
        taken_at=None,
        gps=None,
        frame_count=1,
        has_alpha=True,
        is_grayscale=False,
        phash=None,
        colors=(),
        placeholder=None,
        renditions=renditions,
    )
