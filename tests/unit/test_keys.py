"""The server key client secrets are derived from: configured, or created once under the data dir."""

from __future__ import annotations

import base64
import stat
import threading
from pathlib import Path

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


def test_concurrent_first_use_agrees_on_one_key(tmp_path: Path) -> None:
    keys: list[bytes] = []
    threads = [threading.Thread(target=lambda: keys.append(load_server_key(tmp_path, {}))) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8
    assert len(set(keys)) == 1
