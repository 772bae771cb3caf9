"""Images: reading a stored image (scoped to the organisation) and locating a rendition's bytes."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

import pytest
from pixport.domain.auth import READ_SCOPE, WRITE_SCOPE, Principal, TokenStyle
from pixport.domain.errors import NotFound, PermissionDenied
from pixport.domain.images import IMMUTABLE, REVALIDATE, Images
from pixport.domain.records import ImageRecord

SHA = "0123456789abcdef" + "a" * 48
T0 = datetime(2024, 1, 1, tzinfo=UTC)


class MemoryImages:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.analysis: dict[str, Any] = {
            "original": {"key": "orig-key"},
            "renditions": {"mini": {"key": "mini-key", "mime_type": "image/jpeg"}},
        }

    async def get_image(self, organization_id: str, media_id: str) -> ImageRecord | None:
        self.calls.append(f"get_image {media_id}")
        if organization_id != "org" or media_id != "M1":
            return None
        return ImageRecord(
            media_id="M1", organization_id="org", system_name="s", external_id="e", title="t", metadata={},
            sha256=SHA, format="png", mime_type="image/png", width=1, height=1, byte_size=1,
            analysis=self.analysis, created_at=T0, updated_at=T0,
        )

    async def get_blobs(self, media_id: str) -> dict[str, Any] | None:
        self.calls.append(f"get_blobs {media_id}")
        if media_id != "M1":
            return None
        return {"sha256": SHA, "mime_type": "image/png", "analysis": self.analysis}


def images(store: MemoryImages) -> Images:
    return Images(cast(Any, store))


def principal(org: str = "org", *scopes: str) -> Principal:
    return Principal(organization_id=org, client_id="c", scopes=frozenset(scopes or (READ_SCOPE,)),
                     style=TokenStyle.BEARER, token="t")


async def test_get_reads_the_organisations_image() -> None:
    assert (await images(MemoryImages()).get(principal(), "M1")).media_id == "M1"
    assert (await images(MemoryImages()).get(principal("org", WRITE_SCOPE), "M1")).media_id == "M1"


async def test_get_of_another_organisations_image_is_not_found() -> None:
    with pytest.raises(NotFound):
        await images(MemoryImages()).get(principal("other-org"), "M1")


async def test_get_needs_a_read_scope() -> None:
    holder = Principal(organization_id="org", client_id="c", scopes=frozenset(), style=TokenStyle.BEARER, token="t")
    with pytest.raises(PermissionDenied):
        await images(MemoryImages()).get(holder, "M1")


@pytest.mark.parametrize("media_id", ["../M1", "M1\x00", "x" * 65, ""])
async def test_hostile_media_ids_never_reach_the_store(media_id: str) -> None:
    store = MemoryImages()
    with pytest.raises(NotFound):
        await images(store).get(principal(), media_id)
    with pytest.raises(NotFound):
        await images(store).locate(media_id, "original", "")
    assert store.calls == []


async def test_locate_original_and_rendition() -> None:
    located = await images(MemoryImages()).locate("M1", "original", "")
    assert (located.key, located.mime_type) == ("orig-key", "image/png")
    located = await images(MemoryImages()).locate("M1", "mini", "")
    assert (located.key, located.mime_type) == ("mini-key", "image/jpeg")


async def test_locate_original_falls_back_to_the_sha() -> None:
    store = MemoryImages()
    store.analysis = {}
    assert (await images(store).locate("M1", "original", "")).key == SHA


@pytest.mark.parametrize("rendition", ["full", "../original", "nope"])
async def test_locate_unknown_rendition_is_not_found(rendition: str) -> None:
    with pytest.raises(NotFound):
        await images(MemoryImages()).locate("M1", rendition, "")


async def test_locate_unknown_media_is_not_found() -> None:
    with pytest.raises(NotFound):
        await images(MemoryImages()).locate("M2", "original", "")


@pytest.mark.parametrize(
    ("version", "cache"),
    [
        ("0123456789abcdef", IMMUTABLE),  # what PublicUrls puts in `v`
        ("01234567", IMMUTABLE),
        ("0123456", REVALIDATE),  # too short to pin anything
        ("", REVALIDATE),
        ("fedcba9876543210", REVALIDATE),  # an older version: its bytes are gone
    ],
)
async def test_only_the_current_version_is_cached_forever(version: str, cache: str) -> None:
    assert (await images(MemoryImages()).locate("M1", "mini", version)).cache_control == cache
