"""From the pixel pipeline's Analysis to stored blobs and the record the store upserts.

The worker's journey (domain/journey.py) does the same through its own ports; this helper serves callers
that hold a BlobStore directly (tools, tests)."""

from __future__ import annotations

from pixport.blobs import BlobStore
from pixport.domain.queue import StoredImage
from pixport.domain.stored import blobs_of, image_record, signed_phash
from pixport.imaging import Analysis

__all__ = ["signed_phash", "stored_image"]


async def stored_image(analysis: Analysis, blobs: BlobStore) -> StoredImage:
    """Write the original and every rendition in one batch (content-addressed: identical bytes are stored once)."""
    return image_record(analysis, await blobs.put_all(blobs_of(analysis)))
