"""Connectors: where an image's bytes come from when it is not a plain URL.

A connector is a name and an async `fetch(organization_id, ref) -> bytes`; the journey picks one by the
item's `connector` from the registry the composition root (runtime/runner.py) builds. New sources
(S3, Google Drive, ...) are one small class each, added to that list."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol


class Connector(Protocol):
    name: str

    async def fetch(self, organization_id: str, ref: str) -> bytes:
        """The bytes behind `ref`; raises pixport.fetch.FetchError with a reason a person can act on."""
        ...


def registry(connectors: Iterable[Connector]) -> dict[str, Connector]:
    """Connectors by name; two with one name are a wiring mistake, refused at start."""
    by_name: dict[str, Connector] = {}
    for connector in connectors:
        if connector.name in by_name or connector.name == "url":
            raise ValueError(f"connector name {connector.name!r} is taken")
        by_name[connector.name] = connector
    return by_name
