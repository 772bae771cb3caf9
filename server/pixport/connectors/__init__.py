"""Connectors: where an image's bytes come from when it is not a plain URL.

A connector is a name and an async `fetch(organization_id, ref) -> bytes`; the worker picks one by
the item's `connector`. New sources (S3, Google Drive, ...) are one small class each."""

from __future__ import annotations

from typing import Protocol


class Connector(Protocol):
    name: str

    async def fetch(self, organization_id: str, ref: str) -> bytes:
        """The bytes behind `ref`; raises pixport.fetch.FetchError with a reason a person can act on."""
        ...
