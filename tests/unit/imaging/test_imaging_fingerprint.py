from __future__ import annotations

import base64
import io

import imagehash
from imaging_support import RED, encode, textured
from PIL import Image
from pixport.imaging import Limits, analyse
from pixport.imaging.fingerprint import perceptual_hash, placeholder


def hamming(a: str, b: str) -> int:
    return int(imagehash.hex_to_hash(a) - imagehash.hex_to_hash(b))


def test_phash_is_16_hex_chars() -> None:
    value = perceptual_hash(textured(120, 90))
    assert len(value) == 16
    int(value, 16)


def test_phash_is_stable_under_jpeg_reencoding_and_resizing() -> None:
    original = textured(640, 480, seed=3)
    reference = analyse(encode(original, "PNG"), Limits()).phash
    reencoded = analyse(encode(original, "JPEG", quality=60), Limits()).phash
    smaller = analyse(encode(original.resize((320, 240)), "JPEG", quality=80), Limits()).phash
    assert reference is not None and reencoded is not None and smaller is not None
    assert hamming(reference, reencoded) <= 4
    assert hamming(reference, smaller) <= 4


def test_phash_tells_different_pictures_apart() -> None:
    first = analyse(encode(textured(320, 240, seed=1), "JPEG"), Limits()).phash
    second = analyse(encode(textured(320, 240, seed=2), "JPEG"), Limits()).phash
    assert first is not None and second is not None
    assert hamming(first, second) > 12


def test_placeholder_is_base64_thumbhash() -> None:
    value = placeholder(Image.new("RGB", (300, 200), RED))
    assert 5 <= len(base64.b64decode(value, validate=True)) <= 30


def test_extras_come_from_a_small_copy() -> None:
    # The analysis of a 12 MP image must not compute its hash on 12 MP: same value as from a 300 px copy.
    big = textured(1200, 900, seed=5)
    data = encode(big, "JPEG", quality=90)
    result = analyse(data, Limits())
    with Image.open(io.BytesIO(data)) as im:
        small = im.resize((300, 225), Image.Resampling.LANCZOS)
    assert result.phash is not None
    assert hamming(result.phash, perceptual_hash(small)) <= 2
