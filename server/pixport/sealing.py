"""Secrets pixport must be able to read back (connector credentials) are stored sealed: Fernet
(AES-128-CBC + HMAC-SHA256) under a key derived from the server key, never in clear."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

PREFIX = "sealed:v1:"
# Connector settings that are credentials.
SECRET_FIELDS = frozenset({"client_secret", "refresh_token", "access_token", "api_secret"})


class Sealer:
    def __init__(self, server_key: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"pixport connector secrets").derive(
            server_key
        )
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def seal(self, value: str) -> str:
        return PREFIX + self._fernet.encrypt(value.encode()).decode()

    def unseal(self, value: str) -> str:
        if not value.startswith(PREFIX):
            return value  # written before sealing existed
        try:
            return self._fernet.decrypt(value[len(PREFIX):].encode()).decode()
        except InvalidToken:
            raise ValueError("a stored connector secret cannot be decrypted: was the server key changed?") from None

    def seal_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self.seal(str(v)) if k in SECRET_FIELDS and v is not None else v for k, v in config.items()}

    def unseal_config(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return {k: self.unseal(v) if k in SECRET_FIELDS and isinstance(v, str) else v for k, v in config.items()}
