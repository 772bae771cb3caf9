"""From the pixel pipeline's Analysis to stored blobs and the record the store upserts (synchronous form).

The worker's journey (domain/journey.py) writes through the async BlobStore and builds the record with
domain/stored.py; this module keeps the synchronous helper for callers holding a synchronous store."""

from __future__ import annotations

from pixport.blobs import BlobStore
from pixport.domain.queue import StoredImage
from pixport.domain.stored import blobs_of, image_record, signed_phash
from pixport.imaging import Analysis

__all__ = ["signed_phash", "stored_image"]


def stored_image(analysis: Analysis, blobs: BlobStore) -> StoredImage:
    """Write the original and every rendition (content-addressed: identical bytes are stored once)."""
    return image_record(analysis, [blobs.put(data) for data in blobs_of(analysis)])
