"""The server key that client secrets are derived from: PIXPORT_SECRET_KEY, or a file under the
data dir created on first use (every process of one deployment must share it)."""

from __future__ import annotations

import base64
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

KEY_FILE = "server.key"


def load_server_key(data_dir: Path, environ: Mapping[str, str] = os.environ) -> bytes:
    configured = environ.get("PIXPORT_SECRET_KEY", "").strip()
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        key = base64.urlsafe_b64encode(secrets.token_bytes(32))
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        else:
            with os.fdopen(fd, "wb") as handle:
                handle.write(key)
    return path.read_bytes().strip()
