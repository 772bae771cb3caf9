"""The server key that client secrets are derived from: PIXPORT_SECRET_KEY, or a file under the
data dir created on first use (every process of one deployment must share it)."""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

KEY_FILE = "server.key"
_READ_ATTEMPTS = 50


def load_server_key(data_dir: Path, environ: Mapping[str, str] = os.environ) -> bytes:
    configured = environ.get("PIXPORT_SECRET_KEY", "").strip()
    if configured:
        return configured.encode()
    path = data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    for _ in range(_READ_ATTEMPTS):
        key = path.read_bytes().strip()
        if key:
            return key
        time.sleep(0.02)
    # An empty key would make every derived secret guessable: refuse rather than use it.
    raise RuntimeError(f"{path} is empty; delete it (all client secrets change) or set PIXPORT_SECRET_KEY")


def _create(path: Path) -> None:
    """Write the whole key to a temp file, then link it into place: a reader never sees it half-written,
    and when processes race, exactly one key wins."""
    path.parent.mkdir(parents=True, exist_ok=True)
    key = base64.urlsafe_b64encode(secrets.token_bytes(32))
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".server.key.")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(key)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temp, 0o600)
        with contextlib.suppress(FileExistsError):  # another process won: its key is the key
            os.link(temp, path)
    finally:
        os.unlink(temp)
