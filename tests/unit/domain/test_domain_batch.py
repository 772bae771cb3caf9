"""validate_batch: every rule a batch import request must satisfy before anything is stored."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pixport.domain.batch import (
    MAX_CONTEXT_BYTES,
    MAX_IMAGES,
    MAX_VIOLATIONS,
    BatchRequest,
    ImageSpec,
    validate_batch,
)
from pixport.domain.errors import FieldViolation, InvalidArgument


def image(index: int = 0, **overrides: Any) -> ImageSpec:
    fields: dict[str, Any] = {
        "url": f"https://example.com/{index}.jpg",
        "external_id": f"id-{index}",
        "title": f"image {index}",
        "metadata": {},
        "media_type": "",
    }
    fields.update(overrides)
    return ImageSpec(**fields)


def batch(*images: ImageSpec, **overrides: Any) -> BatchRequest:
    fields: dict[str, Any] = {"system_name": "archive", "images": images or (image(),)}
    fields.update(overrides)
    return BatchRequest(**fields)


def violations(request: BatchRequest) -> list[FieldViolation]:
    with pytest.raises(InvalidArgument) as caught:
        validate_batch(request)
    return caught.value.violations


def fields(request: BatchRequest) -> list[str]:
    return [violation.field for violation in violations(request)]


def only_violation(request: BatchRequest) -> FieldViolation:
    found = violations(request)
    assert len(found) == 1, found
    return found[0]


def test_a_valid_batch_is_returned_with_everything_kept() -> None:
    request = batch(
        image(0, metadata={"caption": "bar", "n": 1}, media_type="photo"),
        image(1),
        webhook="https://hooks.example.com/done",
        context={"run": 7},
        request_id="req-1",
    )
    result = validate_batch(request)
    assert result.system_name == "archive"
    assert result.webhook == "https://hooks.example.com/done"
    assert result.context == {"run": 7}
    assert result.request_id == "req-1"
    assert [(i.external_id, i.title, i.metadata, i.media_type) for i in result.images] == [
        ("id-0", "image 0", {"caption": "bar", "n": 1}, "photo"),
        ("id-1", "image 1", {}, ""),
    ]


# --- required fields ---------------------------------------------------------------------------


@pytest.mark.parametrize("system_name", ["", "   ", "\t\n"])
def test_system_name_is_required(system_name: str) -> None:
    violation = only_violation(batch(system_name=system_name))
    assert violation == FieldViolation("systemName", "is required")


def test_images_are_required() -> None:
    violation = only_violation(BatchRequest(system_name="archive", images=()))
    assert violation.field == "images"
    assert "required" in violation.description


def test_missing_system_name_and_images_are_both_reported() -> None:
    assert fields(BatchRequest(system_name="", images=())) == ["systemName", "images"]


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"url": ""}, "images[0].url"),
        ({"url": "   "}, "images[0].url"),
        ({"external_id": ""}, "images[0].id"),
        ({"external_id": "  "}, "images[0].id"),
        ({"title": ""}, "images[0].fileName"),
        ({"title": " \n"}, "images[0].fileName"),
    ],
)
def test_each_image_needs_url_id_and_file_name(override: dict[str, str], field: str) -> None:
    assert only_violation(batch(image(0, **override))) == FieldViolation(field, "is required")


def test_violations_name_the_index_of_the_offending_image() -> None:
    request = batch(image(0), image(1, url=""), image(2), image(3, external_id="", title=""))
    assert fields(request) == ["images[1].url", "images[3].id", "images[3].fileName"]


def test_media_type_and_request_id_and_webhook_are_optional() -> None:
    result = validate_batch(batch(image(0, media_type=""), webhook="", request_id="", context=None))
    assert result.webhook == ""
    assert result.request_id == ""
    assert result.context is None


# --- URLs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "scheme"),
    [
        ("data:image/png;base64,iVBORw0KGgo=", "data"),
        ("DATA:image/png;base64,iVBORw0KGgo=", "data"),
        ("ftp://example.com/cat.jpg", "ftp"),
        ("javascript:alert(1)", "javascript"),
        ("file:///etc/passwd", "file"),
        ("gopher://example.com/", "gopher"),
    ],
)
def test_only_http_and_https_urls_are_accepted(url: str, scheme: str) -> None:
    violation = only_violation(batch(image(0, url=url)))
    assert violation.field == "images[0].url"
    assert f'unsupported URL scheme "{scheme}"' in violation.description


def test_a_url_without_a_scheme_is_refused() -> None:
    violation = only_violation(batch(image(0, url="example.com/cat.jpg")))
    assert violation.field == "images[0].url"
    assert "no scheme" in violation.description


def test_urls_are_returned_normalised() -> None:
    result = validate_batch(batch(
        image(0, url="  HTTPS://Example.COM:443/cat.jpg?size=1  "),
        image(1, url="http://EXAMPLE.com:8080"),
        image(2, url="http://0x7f.1/x.png"),
        webhook="HTTP://Hooks.Example.com:80/done",
    ))
    assert [i.url for i in result.images] == [
        "https://example.com/cat.jpg?size=1",
        "http://example.com:8080/",
        "http://127.0.0.1/x.png",
    ]
    assert result.webhook == "http://hooks.example.com/done"


@pytest.mark.parametrize("webhook", ["ftp://hooks.example.com/", "data:,x", "not a url"])
def test_webhook_must_be_an_http_url(webhook: str) -> None:
    assert fields(batch(webhook=webhook)) == ["webhook"]


def test_a_url_longer_than_the_limit_is_refused() -> None:
    url = "https://example.com/" + "a" * 4096
    violation = only_violation(batch(image(0, url=url)))
    assert violation == FieldViolation("images[0].url", "must be at most 4096 characters")


# --- unique ids ------------------------------------------------------------------------------


def test_ids_must_be_unique_and_the_message_names_both_indexes() -> None:
    request = batch(image(0, external_id="a"), image(1, external_id="b"), image(2, external_id="a"))
    violation = only_violation(request)
    assert violation.field == "images[2].id"
    assert "images[0].id" in violation.description
    assert "'a'" in violation.description


def test_every_repeat_of_an_id_points_at_its_first_use() -> None:
    request = batch(*(image(i, external_id="same") for i in range(3)))
    found = violations(request)
    assert [v.field for v in found] == ["images[1].id", "images[2].id"]
    assert all("images[0].id" in v.description for v in found)


def test_ids_differing_only_in_case_are_distinct() -> None:
    result = validate_batch(batch(image(0, external_id="A"), image(1, external_id="a")))
    assert [i.external_id for i in result.images] == ["A", "a"]


# --- context size ----------------------------------------------------------------------------


def _context_of_size(size: int, char: str = "x") -> dict[str, Any]:
    """{"a":1,"b":"<n chars>"} whose compact UTF-8 JSON is exactly `size` bytes."""
    overhead = len(b'{"a":1,"b":""}')
    per_char = len(char.encode("utf-8"))
    assert (size - overhead) % per_char == 0
    return {"a": 1, "b": char * ((size - overhead) // per_char)}


def test_context_of_exactly_the_limit_is_accepted() -> None:
    context = _context_of_size(MAX_CONTEXT_BYTES)
    # With the default separators (", " and ": ") this would be 2 bytes over: the size is compact JSON.
    assert validate_batch(batch(context=context)).context == context


def test_context_one_byte_over_the_limit_is_refused() -> None:
    violation = only_violation(batch(context=_context_of_size(MAX_CONTEXT_BYTES + 1)))
    assert violation == FieldViolation("context", "must be at most 8192 bytes as JSON")


def test_context_size_counts_utf8_bytes_not_characters() -> None:
    # 'é' is 2 bytes in UTF-8: 4089 of them fill the limit exactly, though only ~4100 characters long.
    exact = _context_of_size(MAX_CONTEXT_BYTES, "é")
    assert validate_batch(batch(context=exact)).context == exact
    over = {"a": 1, "b": "é" * ((MAX_CONTEXT_BYTES - 14) // 2 + 1)}
    assert fields(batch(context=over)) == ["context"]


def test_context_size_counts_four_byte_characters_as_four_bytes() -> None:
    fits = _context_of_size(MAX_CONTEXT_BYTES - 2, "😀")  # 2044 characters, 8190 bytes
    assert validate_batch(batch(context=fits)).context == fits
    assert fields(batch(context={"a": 1, "b": "😀" * 2045})) == ["context"]  # 14 + 8180 bytes


def test_non_ascii_context_is_measured_unescaped() -> None:
    # Escaped (\u00e9) this would be 6 bytes per character, far over the limit; as UTF-8 it fits.
    context = {"k": "é" * 3000}
    assert validate_batch(batch(context=context)).context == context


def test_empty_context_object_is_accepted() -> None:
    assert validate_batch(batch(context={})).context == {}


# --- batch size ------------------------------------------------------------------------------


def test_exactly_the_maximum_number_of_images_is_accepted() -> None:
    result = validate_batch(batch(*(image(i) for i in range(MAX_IMAGES))))
    assert len(result.images) == MAX_IMAGES


def test_one_image_too_many_gives_a_single_violation() -> None:
    violation = only_violation(batch(*(image(i) for i in range(MAX_IMAGES + 1))))
    assert violation.field == "images"
    assert violation.description == f"must contain at most {MAX_IMAGES} images, got {MAX_IMAGES + 1}"


class _Untouchable(ImageSpec):
    """An image whose fields must never be read: validation must not look past the first 1000."""

    def __getattribute__(self, name: str) -> Any:
        if name in ("url", "external_id", "title", "metadata", "media_type"):
            raise AssertionError(f"validate_batch read {name} of an image past the limit")
        return super().__getattribute__(name)


def test_images_past_the_limit_are_not_examined() -> None:
    images = tuple(image(i) for i in range(MAX_IMAGES)) + tuple(
        _Untouchable(url="", external_id="", title="") for _ in range(5)
    )
    violation = only_violation(batch(*images))
    assert violation.field == "images"
    assert f"got {MAX_IMAGES + 5}" in violation.description


def test_a_huge_batch_is_refused_quickly() -> None:
    bad = image(0, url="ftp://x/", external_id="", title="")
    huge = batch(*([bad] * 200_000))
    started = time.perf_counter()
    found = violations(huge)
    assert time.perf_counter() - started < 2.0
    assert found[0] == FieldViolation("images", f"must contain at most {MAX_IMAGES} images, got 200000")
    assert len(found) == MAX_VIOLATIONS
    assert not any(v.field.startswith(f"images[{MAX_IMAGES}]") for v in found)


# --- NUL characters --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        (batch(system_name="arch\x00ive"), "systemName"),
        (batch(image(0, url="https://example.com/a\x00.jpg")), "images[0].url"),
        (batch(image(0, external_id="a\x00")), "images[0].id"),
        (batch(image(0, title="\x00")), "images[0].fileName"),
        (batch(image(0, media_type="photo\x00")), "images[0].mediaType"),
        (batch(image(0, metadata={"caption": "a\x00b"})), "images[0].metadata"),
        (batch(image(0, metadata={"ke\x00y": "v"})), "images[0].metadata"),
        (batch(image(0, metadata={"deep": [{"x": ["\x00"]}]})), "images[0].metadata"),
        (batch(context={"note": "\x00"}), "context"),
        (batch(context={"nested": {"\x00": 1}}), "context"),
        (batch(request_id="r\x00"), "requestId"),
        (batch(webhook="https://hooks.example.com/\x00"), "webhook"),
    ],
)
def test_nul_characters_are_refused_everywhere(request_: BatchRequest, field: str) -> None:
    violation = only_violation(request_)
    assert violation.field == field
    assert "NUL" in violation.description


def test_the_text_backslash_u0000_is_not_a_nul_character() -> None:
    literal = "\\u0000"  # six characters: backslash, 'u', four zeros
    assert "\x00" not in literal
    result = validate_batch(batch(image(0, metadata={"caption": literal}), context={"note": literal}))
    assert result.images[0].metadata == {"caption": literal}


# --- limits on lengths -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_", "field", "limit"),
    [
        (batch(system_name="s" * 256), "systemName", 255),
        (batch(image(0, external_id="i" * 256)), "images[0].id", 255),
        (batch(image(0, title="t" * 1025)), "images[0].fileName", 1024),
        (batch(request_id="r" * 129), "requestId", 128),
    ],
)
def test_overlong_strings_are_refused(request_: BatchRequest, field: str, limit: int) -> None:
    assert only_violation(request_) == FieldViolation(field, f"must be at most {limit} characters")


def test_metadata_over_its_limit_is_refused() -> None:
    violation = only_violation(batch(image(0, metadata={"x": "m" * 16384})))
    assert violation == FieldViolation("images[0].metadata", "must be at most 16384 bytes as JSON")


# --- the violation list ----------------------------------------------------------------------


def test_violations_are_capped() -> None:
    bad = [image(i, url="", external_id="", title="") for i in range(100)]  # 300 violations
    found = violations(batch(*bad, system_name=""))
    assert len(found) == MAX_VIOLATIONS == 50
    assert found[0].field == "systemName"
    assert found[-1].field == "images[16].url"  # systemName, 16 images x 3, then the 50th


def test_the_error_message_summarises_the_first_five_violations() -> None:
    with pytest.raises(InvalidArgument) as caught:
        validate_batch(batch(*(image(i, url="") for i in range(8))))
    message = caught.value.message
    assert message.startswith("invalid request: images[0].url: is required; ")
    assert "images[4].url" in message
    assert "images[5].url" not in message
    assert message.endswith("; and 3 more")
