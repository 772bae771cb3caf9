from __future__ import annotations

import io

import pytest
from imaging_support import color_at, encode, exif_with, is_reddish, marked, stored_for_orientation, textured
from PIL import Image
from pixport.imaging import Limits, Rendition, analyse, sniff
from pixport.imaging.renditions import specs

NAMES = ("fit2000", "full", "fill100", "large", "mini")


def sizes(width: int, height: int) -> dict[str, tuple[int, int]]:
    return {spec.name: (spec.width, spec.height) for spec in specs(width, height)}


def by_name(renditions: tuple[Rendition, ...]) -> dict[str, Rendition]:
    return {rendition.name: rendition for rendition in renditions}


def test_sizes_of_a_12mp_photo() -> None:
    assert sizes(4000, 3000) == {
        "fit2000": (2000, 1500),
        "full": (1920, 1440),
        "fill100": (300, 225),
        "large": (200, 200),
        "mini": (100, 100),
    }


def test_fits_never_upscale_and_fills_are_exact() -> None:
    assert sizes(150, 100) == {
        "fit2000": (150, 100),
        "full": (150, 100),
        "fill100": (150, 100),
        "large": (200, 200),
        "mini": (100, 100),
    }


@pytest.mark.parametrize(
    ("width", "height", "expected"),
    [
        (1000, 10_000, {"fit2000": (200, 2000), "full": (192, 1920), "fill100": (300, 3000)}),
        (10_000, 250, {"fit2000": (2000, 50), "full": (1920, 48), "fill100": (300, 8)}),
        (1, 1, {"fit2000": (1, 1), "full": (1, 1), "fill100": (1, 1)}),
    ],
)
def test_extreme_aspects(width: int, height: int, expected: dict[str, tuple[int, int]]) -> None:
    found = sizes(width, height)
    assert {name: found[name] for name in expected} == expected
    assert (found["large"], found["mini"]) == ((200, 200), (100, 100))


@pytest.mark.parametrize(("width", "height"), [(1200, 900), (640, 480), (90, 300), (2500, 400), (7, 5)])
def test_encoded_renditions_have_exactly_the_declared_size(width: int, height: int) -> None:
    result = analyse(encode(textured(width, height), "JPEG", quality=85), Limits())
    renditions = by_name(result.renditions)
    assert tuple(renditions) == NAMES
    for name, (expected_width, expected_height) in sizes(width, height).items():
        rendition = renditions[name]
        assert (rendition.width, rendition.height) == (expected_width, expected_height)
        with Image.open(io.BytesIO(rendition.data)) as im:
            assert im.size == (expected_width, expected_height)
        assert rendition.mime_type == "image/jpeg" and sniff(rendition.data) == "jpeg"


def test_cascade_cuts_each_rendition_from_the_smallest_adequate_image(monkeypatch: pytest.MonkeyPatch) -> None:
    steps: list[tuple[tuple[int, int], tuple[int, int]]] = []
    resize = Image.Image.resize

    def spy(self: Image.Image, size: tuple[int, int], *args: object, **kwargs: object) -> Image.Image:
        steps.append((self.size, size))
        return resize(self, size, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(Image.Image, "resize", spy)
    analyse(encode(textured(1200, 900), "JPEG"), Limits())
    # fit2000 and full are the decoded image itself; then 300 px from it, 200 from 300, 100 from 200.
    assert steps[:3] == [((1200, 900), (300, 225)), ((300, 225), (200, 200)), ((200, 200), (100, 100))]


def test_renditions_that_are_the_same_image_are_encoded_once(monkeypatch: pytest.MonkeyPatch) -> None:
    saved: list[tuple[int, int]] = []
    save = Image.Image.save

    def spy(self: Image.Image, *args: object, **kwargs: object) -> None:
        saved.append(self.size)
        save(self, *args, **kwargs)  # type: ignore[arg-type]

    original = encode(textured(300, 200), "PNG")
    monkeypatch.setattr(Image.Image, "save", spy)
    renditions = by_name(analyse(original, Limits()).renditions)
    # fit2000, full and fill100 of a 300x200 original are the decode itself: one encode for the three.
    assert saved.count((300, 200)) == 1
    assert renditions["fit2000"].data == renditions["full"].data == renditions["fill100"].data
    assert [renditions[name].name for name in NAMES] == list(NAMES)
    assert (renditions["large"].width, renditions["mini"].width) == (200, 100)


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_orientation_dimensions_and_upright_derivatives(orientation: int) -> None:
    upright = marked(1200, 800)  # red block in the top-left corner
    stored = stored_for_orientation(upright, orientation)
    data = encode(stored, "JPEG", quality=90, exif=exif_with({0x0112: orientation}))
    result = analyse(data, Limits())
    assert (result.width, result.height) == (1200, 800)
    for rendition in result.renditions:
        assert is_reddish(color_at(rendition.data, (2, 2))), rendition.name
        corner = color_at(rendition.data, (rendition.width - 3, rendition.height - 3))
        assert min(corner) > 200, rendition.name


def test_orientation_6_reports_portrait_for_a_landscape_store() -> None:
    data = encode(Image.new("RGB", (1200, 800), "gray"), "JPEG", exif=exif_with({0x0112: 6}))
    result = analyse(data, Limits())
    assert (result.width, result.height) == (800, 1200)
    assert by_name(result.renditions)["fill100"].height == 450


def test_alpha_renditions_are_webp_and_keep_transparency() -> None:
    image = Image.new("RGBA", (400, 300), (255, 0, 0, 0))
    image.paste((0, 0, 255, 255), (200, 0, 400, 300))
    result = analyse(encode(image, "PNG"), Limits())
    assert result.has_alpha
    for rendition in result.renditions:
        assert rendition.mime_type == "image/webp" and sniff(rendition.data) == "webp"
        with Image.open(io.BytesIO(rendition.data)) as im:
            assert im.mode == "RGBA"
            assert im.getpixel((1, 1))[3] == 0  # type: ignore[index]
            assert im.getpixel((im.width - 2, 1))[3] == 255  # type: ignore[index]


def test_renditions_carry_no_exif() -> None:
    # The original keeps its metadata; derivatives are for display and must not leak the GPS position.
    gps = {1: "N", 2: (48.0, 51.0, 29.6), 3: "E", 4: (2.0, 17.0, 40.2)}
    data = encode(textured(640, 480), "JPEG", exif=exif_with(gps=gps))
    result = analyse(data, Limits())
    assert result.gps is not None
    for rendition in result.renditions:
        with Image.open(io.BytesIO(rendition.data)) as im:
            assert "exif" not in im.info
