"""One `pixport up` per data dir: an exclusive lock on `$PIXPORT_DATA_DIR/pixport.pid`, held for the life of
the process (the kernel drops it when the process dies, so a stale file never blocks a restart)."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO

PID_FILE = "pixport.pid"
_held: list[IO[str]] = []  # keeps the locked file open for the process's lifetime


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None, data_dir: Path) -> None:
        running = f"pid {pid}" if pid else "pid unknown"
        super().__init__(f"pixport is already running ({running}) on the data dir {data_dir}; "
                         "stop it first, or give this one its own PIXPORT_DATA_DIR")
        self.pid = pid


def hold(data_dir: Path) -> None:
    """Lock the data dir for this process and write its pid; raises AlreadyRunning if another holds it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / PID_FILE
    handle = path.open("a+", encoding="ascii")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        text = handle.read().strip()
        handle.close()
        raise AlreadyRunning(int(text) if text.isdigit() else None, data_dir) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    _held.append(handle)
