"""The single import's params echo: caller headers (redacted) while pending, none once final."""

from __future__ import annotations

from datetime import UTC, datetime

from pixport.domain.sharinpix import ImportView
from pixport.store.sharinpix import SingleImportRow

T0 = datetime(2024, 1, 1, tzinfo=UTC)
STORED = {"album_id": "a", "filename": "f", "url": "https://e.com/x.jpg", "controller": "api/v1/imports",
          "action": "create"}


def row(status: str, headers: dict[str, str] | None) -> SingleImportRow:
    return SingleImportRow(id="i", organization_id="o", album_id="a", import_type=None, params=STORED,
                           created_at=T0, updated_at=T0, item_status=status, reason=None, image_id=None,
                           pending_headers=headers)


def test_pending_import_echoes_headers_redacted_in_the_seed_order() -> None:
    view = ImportView(row("pending", {"Authorization": "Token token=\"secret\"", "Accept": "image/*"}))
    assert list(view.params) == ["album_id", "filename", "url", "headers", "controller", "action"]
    assert view.params["headers"] == {"Authorization": "[FILTERED]", "Accept": "image/*"}


def test_final_import_has_no_headers_left() -> None:
    assert ImportView(row("success", None)).params == STORED
    assert "headers" not in ImportView(row("failed", None)).params
