"""Property-based fuzzing of the REST edge, gRPC and the form/bracket parser: never a 5xx, never UNKNOWN/INTERNAL.

Network safety: generated strings never contain ":" (so no generated text can become a URL with a scheme),
and every URL or webhook the strategies build names a loopback address literal followed by "/", so the
worst an accepted request can do is fetch from the local test origin (which answers 404).
"""

from __future__ import annotations

import json
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import grpc
import pytest
from google.protobuf import struct_pb2
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from pixport.v1 import import_service_pb2, import_service_pb2_grpc
from support.origin import Origin
from support.stack import Stack

FUZZ = settings(max_examples=150, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
BAD_GRPC_CODES = (grpc.StatusCode.UNKNOWN, grpc.StatusCode.INTERNAL, grpc.StatusCode.UNAVAILABLE,
                  grpc.StatusCode.DATA_LOSS)


@dataclass
class Fuzz:
    stack: Stack
    token: str
    origin: Origin
    channel: grpc.Channel


@pytest.fixture(scope="module")
def fuzz(stack: Stack, origin: Origin) -> Iterator[Fuzz]:
    client = stack.create_client("hostile-fuzz")
    with grpc.insecure_channel(stack.grpc_target) as channel:
        yield Fuzz(stack, stack.token(client["client_id"]), origin, channel)
    assert stack.request("GET", "/ready").status == 200


# Text that can never spell a URL scheme: no ":" at all (surrogates included, for the JSON escapes).
SAFE_CHARS = st.characters(codec=None, exclude_characters=":", exclude_categories=())
SAFE_TEXT = st.text(alphabet=SAFE_CHARS, max_size=24)
# The same without surrogates, which the edge refuses at once: for values meant to get through.
CLEAN_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=":"), max_size=24)


def _loopback_url(port: int, text: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    """URLs whose authority is always a loopback literal (or refused outright), then "/" and anything."""
    hosts = st.sampled_from([f"127.0.0.1:{port}", f"2130706433:{port}", f"0x7f000001:{port}", f"127.1:{port}",
                             f"[::ffff:127.0.0.1]:{port}", "[::1]", "0.0.0.0"])  # noqa: S104 (refused)
    schemes = st.sampled_from(["http", "https", "HTTP", "ftp", "javascript", "data", "file", "gopher", "ws"])
    built = st.builds(lambda scheme, host, path: f"{scheme}://{host}/fuzz-missing/{path}", schemes, hosts, text)
    junk = st.sampled_from(["", " ", "http://", "http:///x", "//127.0.0.1/x", "javascript:alert(1)",
                            "data:image/png;base64,iVBORw0KGgo=", "http://[::1", "http://%00/", "\u0000"])
    return st.one_of(built, junk, text)


JSON_SCALARS = st.one_of(
    st.none(), st.booleans(), SAFE_TEXT,
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False),
)
JSON_VALUES = st.recursive(
    JSON_SCALARS,
    lambda children: st.one_of(st.lists(children, max_size=4),
                               st.dictionaries(SAFE_TEXT, children, max_size=4)),
    max_leaves=16,
)


def _mostly(good: st.SearchStrategy[Any], weight: int = 6) -> st.SearchStrategy[Any]:
    """Usually a well-typed value (so requests get past the transcoder), sometimes any JSON at all."""
    return st.integers(0, weight).flatmap(lambda n: good if n else JSON_VALUES)


NAMES = st.one_of(st.sampled_from(["a", "b", "x y", "\u00e9t\u00e9", "../../etc/passwd", "\u202e"]),
                  CLEAN_TEXT.filter(bool), CLEAN_TEXT.filter(bool), SAFE_TEXT)
STRUCTS = st.dictionaries(st.one_of(CLEAN_TEXT, CLEAN_TEXT, SAFE_TEXT), JSON_VALUES, max_size=4)


def _url_strategy(port: int) -> st.SearchStrategy[Any]:
    """Mostly a URL of the test origin (which answers 404), else an odd or refused one, else any JSON."""
    good = st.builds(lambda path: f"http://127.0.0.1:{port}/fuzz-missing/{path}",
                     st.text(alphabet=string.ascii_letters + string.digits + "-._~/", max_size=12))
    return _mostly(st.integers(0, 2).flatmap(lambda n: good if n else _loopback_url(port, SAFE_TEXT)))


def _image_strategy(port: int) -> st.SearchStrategy[Any]:
    image = st.fixed_dictionaries({
        "url": _url_strategy(port),
        "id": _mostly(NAMES),
        "fileName": _mostly(NAMES),
    }, optional={"metadata": _mostly(STRUCTS), "mediaType": _mostly(SAFE_TEXT), "extra": JSON_VALUES})
    return _mostly(image, 10)


def _body_strategy(port: int) -> st.SearchStrategy[Any]:
    optional = {
        "webhook": _url_strategy(port),
        "context": _mostly(STRUCTS),
        "requestId": _mostly(SAFE_TEXT),
        "unknownField": JSON_VALUES,
    }
    complete = st.fixed_dictionaries({
        "systemName": _mostly(NAMES),
        "images": _mostly(st.lists(_image_strategy(port), min_size=1, max_size=4)),
    }, optional=optional)
    partial = st.fixed_dictionaries({}, optional={
        "systemName": JSON_VALUES, "images": JSON_VALUES, **optional})
    return st.integers(0, 9).flatmap(lambda n: complete if n > 1 else partial if n else JSON_VALUES)


def _assert_rest_ok(response: Any, what: object) -> None:
    assert response.status < 500, (response.status, response.body[:300], what)
    if response.status >= 400:
        assert response.headers.get("content-type", "").startswith("application/json"), (response.headers, what)
        assert "message" in response.json(), (response.body[:300], what)


def test_fuzz_rest_import_bodies(fuzz: Fuzz) -> None:
    @FUZZ
    @given(body=_body_strategy(fuzz.origin.port), ensure_ascii=st.booleans())
    def check(body: Any, ensure_ascii: bool) -> None:
        raw = json.dumps(body, ensure_ascii=ensure_ascii).encode("utf-8", "surrogatepass")
        response = fuzz.stack.request("POST", "/api/v1/import/images", token=fuzz.token, raw=raw)
        _assert_rest_ok(response, body)

    check()


def test_fuzz_rest_raw_bytes(fuzz: Fuzz) -> None:
    """Mutations of a valid body at the byte level: cut, spliced with arbitrary bytes.

    The body holds no URL and the inserted bytes hold no quote, backslash or colon, so no string in any
    mutant can contain a ":" (string boundaries never move): nothing generated here can be fetched.
    """
    valid = json.dumps({"systemName": "s", "images": [
        {"url": "not-a-url", "id": "a", "fileName": "a", "metadata": {"k": [1, "v", None, 2.5e300]}}],
        "context": {"c": {"d": []}}})
    inserts = st.binary(max_size=12).filter(lambda b: not any(c in b for c in b':"\\'))

    @FUZZ
    @given(cut=st.integers(0, len(valid)), insert=inserts, keep_rest=st.booleans())
    def check(cut: int, insert: bytes, keep_rest: bool) -> None:
        raw = valid[:cut].encode() + insert + (valid[cut:].encode() if keep_rest else b"")
        response = fuzz.stack.request("POST", "/api/v1/import/images", token=fuzz.token, raw=raw)
        _assert_rest_ok(response, raw)

    check()


def _to_value(value: Any) -> struct_pb2.Value:
    out = struct_pb2.Value()
    if value is None:
        out.null_value = struct_pb2.NULL_VALUE
    elif isinstance(value, bool):
        out.bool_value = value
    elif isinstance(value, int | float):
        out.number_value = float(value)
    elif isinstance(value, str):
        out.string_value = value
    elif isinstance(value, list):
        out.list_value.values.extend(_to_value(v) for v in value)
    else:
        out.struct_value.CopyFrom(_to_struct(value))
    return out


def _to_struct(mapping: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    for key, value in mapping.items():
        out.fields[key].CopyFrom(_to_value(value))
    return out


# Proto strings must be valid UTF-8 (the client refuses surrogates itself): CLEAN_TEXT only.
GRPC_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), CLEAN_TEXT, st.floats(allow_nan=False, allow_infinity=False),
              st.integers(-(2**60), 2**60)),
    lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(CLEAN_TEXT, children, max_size=4)),
    max_leaves=16,
)
GRPC_STRUCTS = st.dictionaries(CLEAN_TEXT, GRPC_JSON, max_size=4).map(_to_struct)


def _usually(good: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.integers(0, 5).flatmap(lambda n: good if n else other)


def _grpc_requests(port: int) -> st.SearchStrategy[import_service_pb2.CreateImportJobRequest]:
    good_url = st.builds(lambda path: f"http://127.0.0.1:{port}/fuzz-missing/{path}",
                         st.text(alphabet=string.ascii_letters + string.digits, max_size=8))
    url = _usually(good_url, _loopback_url(port, CLEAN_TEXT))
    names = _usually(CLEAN_TEXT.filter(bool), CLEAN_TEXT)
    image = st.builds(import_service_pb2.ImageToImport, url=url, id=names, file_name=names,
                      metadata=_usually(st.just(struct_pb2.Struct()), GRPC_STRUCTS),
                      media_type=_usually(st.just(""), CLEAN_TEXT))
    return st.builds(import_service_pb2.CreateImportJobRequest,
                     system_name=names, images=_usually(st.lists(image, min_size=1, max_size=4), st.lists(image)),
                     webhook=_usually(st.just(""), url), context=_usually(st.just(struct_pb2.Struct()), GRPC_STRUCTS),
                     request_id=_usually(st.just(""), CLEAN_TEXT))


def test_fuzz_grpc_create_import_job(fuzz: Fuzz) -> None:
    stub = import_service_pb2_grpc.ImportServiceStub(fuzz.channel)  # type: ignore[no-untyped-call]
    metadata = (("authorization", f"Bearer {fuzz.token}"),)

    @FUZZ
    @given(message=_grpc_requests(fuzz.origin.port))
    def check(message: import_service_pb2.CreateImportJobRequest) -> None:
        try:
            created = stub.CreateImportJob(message, metadata=metadata, timeout=30)
        except grpc.RpcError as error:
            code = error.code()
            assert code not in BAD_GRPC_CODES, (code, error.details(), message)
        else:
            assert created.id

    check()


# The form/bracket dialect of /api/v1/imports (SharinPix): keys like a[b][], metadata[k], stray brackets.
KEY_CHARS = string.ascii_letters + string.digits + "_-. "
ESCAPES = ["%", "%2", "%zz", "%00", "%ff", "%FF%FE", "%C3%A9", "%E2%80%AE", "%5B", "%5D", "%5b%5d", "%26", "%3D",
           "%2B", "+", "%25", "%0A", "%C0%AF", "%ED%A0%80"]
SEGMENTS = st.one_of(
    st.just("[]"), st.just("["), st.just("]"), st.just("[["), st.just("]]"), st.just("[][]"),
    st.builds(lambda s: f"[{s}]", st.text(alphabet=KEY_CHARS, max_size=6)),
    st.builds(lambda e: f"[{e}]", st.sampled_from(ESCAPES)),
    st.sampled_from(ESCAPES),
)
KEY_NAMES = st.one_of(st.sampled_from(["a", "metadata", "metadatas", "headers", "album_id", "filename", "url", "x",
                                       ""]), st.text(alphabet=KEY_CHARS, max_size=8))
FORM_KEYS = st.builds(lambda name, segments: name + "".join(segments), KEY_NAMES, st.lists(SEGMENTS, max_size=6))
# Values: no ":" and no "%" except the listed escapes (none of which decodes to ":").
VALUE_TEXT = st.text(alphabet=st.characters(codec="utf-8", exclude_characters=":%"), max_size=12)
FORM_VALUES = st.builds(lambda parts: "".join(parts), st.lists(st.one_of(
    VALUE_TEXT.map(lambda text: quote(text, safe="")), st.sampled_from(ESCAPES)), max_size=4))
SEPARATORS = st.sampled_from(["&", "&", "&", ";", "&&", "&=&"])


def test_fuzz_form_bracket_bodies(fuzz: Fuzz) -> None:
    pair = st.one_of(
        st.builds(lambda k, v: f"{quote(k, safe='[]%+')}={v}", FORM_KEYS, FORM_VALUES),
        st.builds(lambda k: quote(k, safe="[]%+"), FORM_KEYS),  # a key without "="
        st.builds(lambda k, v: f"{quote(k, safe='[]%+')}={v}={v}", FORM_KEYS, FORM_VALUES),
    )

    @FUZZ
    @given(pairs=st.lists(st.tuples(pair, SEPARATORS), max_size=12),
           content_type=st.sampled_from(["application/x-www-form-urlencoded",
                                         "application/x-www-form-urlencoded; charset=utf-8",
                                         "application/x-www-form-urlencoded; charset=latin1"]))
    def check(pairs: list[tuple[str, str]], content_type: str) -> None:
        raw = "".join(p + sep for p, sep in pairs).encode("utf-8")
        # A "%" escape next to quoted text could spell "%3a" (":"): such examples are skipped, not sent.
        assume(b":" not in raw and b"%3a" not in raw.lower() and b"%253a" not in raw.lower())
        response = fuzz.stack.request("POST", "/api/v1/imports", token=fuzz.token, raw=raw,
                                      headers={"Content-Type": content_type})
        assert response.status < 500, (response.status, response.body[:300], raw)

    check()


# Deterministic gRPC cases the fuzzers above deliberately avoid (they would fail on known bugs).

def _varint(value: int) -> bytes:
    out = b""
    while True:
        low, value = value & 0x7F, value >> 7
        if not value:
            return out + bytes([low])
        out += bytes([low | 0x80])


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _deep_create(depth: int) -> bytes:
    value = _field(3, b"x")  # Value.string_value
    for _ in range(depth):
        value = _field(6, _field(1, value))  # Value.list_value -> ListValue.values
    metadata = _field(1, _field(1, b"k") + _field(2, value))  # Struct.fields entry
    image = _field(1, b"http://127.0.0.1:9/a") + _field(2, b"a") + _field(3, b"a") + _field(4, metadata)
    return _field(1, b"s") + _field(4, image)


@pytest.mark.parametrize(("method", "payload"), [
    pytest.param("GetImportJob", _field(1, b"\xff\xfe"), id="invalid-utf8-id"),
    pytest.param("GetImportJob", b"\xff\xff\xff", id="corrupt-wire-format"),
    pytest.param("CreateImportJob", _field(1, b"s") + _field(4, _field(1, b"http://\xc3\x28/") + _field(2, b"a")),
                 id="invalid-utf8-url"),
    pytest.param("CreateImportJob", _deep_create(60), id="struct-nested-60"),
])
def test_undecodable_grpc_requests_are_invalid_argument(fuzz: Fuzz, method: str, payload: bytes) -> None:
    call = fuzz.channel.unary_unary(f"/pixport.v1.ImportService/{method}",
                                    request_serializer=lambda raw: raw, response_deserializer=lambda raw: raw)
    with pytest.raises(grpc.RpcError) as raised:
        call(payload, metadata=(("authorization", f"Bearer {fuzz.token}"),), timeout=30)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT, raised.value.details()
    assert "<class" not in (raised.value.details() or "")
