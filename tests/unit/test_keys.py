"""The server key client secrets are derived from: configured, or created once under the data dir."""

from __future__ import annotations

import base64
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from pixport.keys import KEY_FILE, load_server_key


def test_the_configured_key_wins_and_no_file_is_written(tmp_path: Path) -> None:
    assert load_server_key(tmp_path, {"PIXPORT_SECRET_KEY": "  shared-secret  "}) == b"shared-secret"
    assert not (tmp_path / KEY_FILE).exists()


def test_a_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    data_dir = tmp_path / "new" / "data"
    first = load_server_key(data_dir, {})
    assert len(base64.urlsafe_b64decode(first)) == 32
    assert load_server_key(data_dir, {}) == first
    assert load_server_key(data_dir, {"PIXPORT_SECRET_KEY": ""}) == first


def test_the_key_file_is_private(tmp_path: Path) -> None:
    load_server_key(tmp_path, {})
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600


def test_a_process_racing_the_creator_never_gets_an_empty_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Deterministic interleaving: a second process creates and reads the key while the first has written
    its candidate but not yet linked it into place. Both must end up with the same non-empty key."""
    seen_by_second: list[bytes] = []
    interleaved = [False]
    real_link = os.link

    def link_after_a_second_process(source: str, target: Any) -> None:
        if not interleaved[0]:
            interleaved[0] = True
            seen_by_second.append(load_server_key(tmp_path, {}))
        real_link(source, target)

    monkeypatch.setattr(os, "link", link_after_a_second_process)
    first = load_server_key(tmp_path, {})
    assert len(first) == 44
    assert seen_by_second == [first]


def test_an_empty_key_file_is_never_used_as_the_key(tmp_path: Path) -> None:
    (tmp_path / KEY_FILE).write_bytes(b"")
    try:
        key = load_server_key(tmp_path, {})
    except (RuntimeError, ValueError, OSError):
        return  # refusing to start is fine
    assert key != b""
