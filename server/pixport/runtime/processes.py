"""Child processes that never outlive their parent."""

from __future__ import annotations

import ctypes
import signal

_PR_SET_PDEATHSIG = 1


def child_preexec() -> None:
    """Run in the child before exec: die with the parent, and start in a fresh process group
    so a terminal's Ctrl-C reaches only the supervisor, which then stops children in order."""
    import os

    os.setpgid(0, 0)
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass


def die_with_parent() -> None:
    """Get SIGTERM when the parent (e.g. `make`) dies, so a killed `make run` stops everything."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except OSError:
        pass
