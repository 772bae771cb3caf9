"""`pixport up` as a user runs it: side by side with another stack, and SIGTERM leaves nothing behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

from support.stack import Stack


def descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    pending = [pid]
    while pending:
        for child in children.get(pending.pop(), []):
            if child not in found:
                found.add(child)
                pending.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_sigterm_stops_everything_and_a_second_stack_runs_beside_the_first(stack: Stack, tmp_path: Path) -> None:
    second = Stack(tmp_path / "second")
    second.start()
    assert second.process is not None
    try:
        assert second.request("GET", "/ready").status == 200
        assert stack.request("GET", "/ready").status == 200  # the session's stack is unaffected
        started = descendants(second.process.pid)
        names = {Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
                 for pid in started if alive(pid)}
        assert any("postgres" in name for name in names) and any("envoy" in name for name in names)
        assert any("pixport.cli serve" in name for name in names)
        assert any("pixport.cli work" in name for name in names)
    finally:
        assert second.stop() == 0
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(alive(pid) for pid in started):
        time.sleep(0.1)
    leftovers = [pid for pid in started if alive(pid)]
    assert leftovers == [], [Path(f"/proc/{pid}/cmdline").read_bytes() for pid in leftovers]
    assert stack.request("GET", "/ready").status == 200
    assert os.path.exists(second.data_dir / "postgres" / "data" / "PG_VERSION")
