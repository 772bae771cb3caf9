"""Connector credentials are sealed at rest and read back only with the same server key."""

from __future__ import annotations

import pytest
from pixport.sealing import PREFIX, Sealer


def test_secret_fields_are_sealed_and_others_kept() -> None:
    sealer = Sealer(b"server-key-one")
    config = {"instance_url": "https://x.my.salesforce.com", "client_id": "id", "client_secret": "s3cret",
              "refresh_token": "r", "access_token": None}
    sealed = sealer.seal_config(config)
    assert sealed["instance_url"] == config["instance_url"] and sealed["client_id"] == "id"
    assert sealed["client_secret"].startswith(PREFIX) and "s3cret" not in sealed["client_secret"]
    assert sealed["access_token"] is None
    assert sealer.unseal_config(sealed) == config


def test_sealing_is_randomised() -> None:
    sealer = Sealer(b"k")
    assert sealer.seal("same") != sealer.seal("same")


def test_another_server_key_cannot_unseal() -> None:
    sealed = Sealer(b"key-a").seal("secret")
    with pytest.raises(ValueError, match="server key"):
        Sealer(b"key-b").unseal(sealed)


def test_values_stored_before_sealing_read_as_they_are() -> None:
    assert Sealer(b"k").unseal("plain-old-value") == "plain-old-value"
