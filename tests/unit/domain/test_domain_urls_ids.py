"""PublicUrls (absolute, versioned rendition URLs) and identifier shapes."""

from __future__ import annotations

import string

import pytest
from pixport.domain.ids import looks_like_id, new_job_id, new_media_id, new_uuid
from pixport.domain.urls import PublicUrls

SHA = "0123456789abcdef" + "f" * 48
URLS = PublicUrls("https://images.example.com")


def test_rendition_url_pins_the_content_version() -> None:
    assert URLS.rendition("m1", "mini", SHA) == "https://images.example.com/api/v1/images/m1/mini?v=0123456789abcdef"


def test_original_url() -> None:
    assert URLS.original("m1", SHA) == "https://images.example.com/api/v1/images/m1/original?v=0123456789abcdef"


@pytest.mark.parametrize(
    ("renditions", "shown"),
    [
        (("fill100", "fit2000", "full", "large", "mini"), "full"),
        (("full",), "full"),
        (("fill100", "fit2000", "large", "mini"), "fit2000"),
        (("fill100", "large", "mini"), "original"),
        ((), "original"),
    ],
)
def test_display_prefers_full_then_fit2000_then_original(renditions: tuple[str, ...], shown: str) -> None:
    assert URLS.display("m1", SHA, renditions) == f"https://images.example.com/api/v1/images/m1/{shown}?v=0123456789abcdef"


def test_new_versions_get_new_urls() -> None:
    other = "fedcba9876543210" + "0" * 48
    assert URLS.original("m1", SHA) != URLS.original("m1", other)


def test_new_ids_have_their_shapes_and_pass_the_id_check() -> None:
    job_ids = {new_job_id() for _ in range(200)}
    media_ids = {new_media_id() for _ in range(200)}
    assert len(job_ids) == 200
    assert len(media_ids) == 200
    assert all(len(i) == 16 and set(i) <= set(string.ascii_lowercase + string.digits) for i in job_ids)
    assert all(len(i) == 22 and set(i) <= set(string.ascii_letters + string.digits) for i in media_ids)
    assert all(looks_like_id(i) for i in job_ids | media_ids | {new_uuid()})


def test_every_position_of_a_media_id_takes_every_character() -> None:
    # One random draw per id, spread over the 22 positions: a digit left out of the draw would show as a
    # position stuck on few characters (all 62 are missed at one position with probability ~1e-13).
    ids = [new_media_id() for _ in range(2000)]
    alphabet = set(string.ascii_letters + string.digits)
    assert all({media_id[position] for media_id in ids} == alphabet for position in range(22))


@pytest.mark.parametrize(
    "value", ["a", "k49k2grn11sravdj", "A-b_c-9", "x" * 64, "3f2504e0-4f89-11d3-9a0c-0305e82c3301"]
)
def test_looks_like_id_accepts_plain_ids(value: str) -> None:
    assert looks_like_id(value)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "../x",
        "..",
        "a/b",
        "a\\b",
        "a\x00",
        "\x00",
        "x" * 65,
        "é",
        "caf\u00e9",
        "\u0661\u0662",  # Arabic-Indic digits: isalnum() but not ASCII
        "\uff41",  # fullwidth a
        "a b",
        "a.b",
        "a%2e",
        "a\n",
    ],
)
def test_looks_like_id_rejects_hostile_values(value: str) -> None:
    assert not looks_like_id(value)


def test_looks_like_id_respects_a_custom_max_length() -> None:
    assert looks_like_id("x" * 10, max_length=10)
    assert not looks_like_id("x" * 11, max_length=10)
