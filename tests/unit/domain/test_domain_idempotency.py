from __future__ import annotations

import pytest
from pixport.domain.batch import BatchRequest, ImageSpec
from pixport.domain.idempotency import IdempotencyKeyReused, fingerprint, replay_check


def _batch(url: str = "https://example.com/a.jpg", key: str = "k1") -> BatchRequest:
    return BatchRequest(system_name="s", images=(ImageSpec(url=url, external_id="1", title="a"),), request_id=key)


def test_the_fingerprint_ignores_the_key_and_sees_the_body() -> None:
    assert fingerprint(_batch(key="k1")) == fingerprint(_batch(key="k2"))
    assert fingerprint(_batch()) != fingerprint(_batch(url="https://example.com/b.jpg"))


def test_a_replay_with_another_body_is_refused_naming_the_key() -> None:
    check = replay_check("k1", fingerprint(_batch()))
    check(fingerprint(_batch()))
    check(None)  # jobs from before fingerprints
    with pytest.raises(IdempotencyKeyReused, match="'k1'"):
        check(fingerprint(_batch(url="https://example.com/b.jpg")))
