"""Absolute URLs on the REST edge for what pixport serves."""

from __future__ import annotations

from dataclasses import dataclass

# The rendition a browser can show, best first, for the status document's `url`.
DISPLAY_PREFERENCE = ("full", "fit2000", "original")


@dataclass(frozen=True)
class PublicUrls:
    base: str  # e.g. "https://images.example.com", no trailing slash

    def rendition(self, media_id: str, name: str, sha256: str) -> str:
        # `v` pins the content version: the URL of new bytes is a new URL, so responses can be immutable.
        return f"{self.base}/api/v1/images/{media_id}/{name}?v={sha256[:16]}"

    def original(self, media_id: str, sha256: str) -> str:
        return self.rendition(media_id, "original", sha256)

    def display(self, media_id: str, sha256: str, renditions: tuple[str, ...]) -> str:
        for name in DISPLAY_PREFERENCE:
            if name in renditions:
                return self.rendition(media_id, name, sha256)
        return self.original(media_id, sha256)
