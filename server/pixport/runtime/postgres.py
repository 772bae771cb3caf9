"""An embedded PostgreSQL cluster under the data dir, run with the system's server binaries."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from pixport.runtime.processes import child_preexec

DATABASE_NAME = "pixport"
SUPERUSER = "pixport"


class PostgresNotInstalled(RuntimeError):
    pass


def find_bindir() -> Path:
    """The directory holding `initdb` and `postgres`, even when it is not on PATH (Debian)."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True)
            candidates.append(Path(out.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    initdb = shutil.which("initdb")
    if initdb:
        candidates.append(Path(initdb).parent)
    for candidate in candidates:
        if (candidate / "initdb").exists() and (candidate / "postgres").exists():
            return candidate
    raise PostgresNotInstalled(
        "PostgreSQL server binaries (initdb, postgres) were not found. Install them "
        "(Debian/Ubuntu: `sudo apt-get install -y postgresql`) or set DATABASE_URL to an existing database."
    )


@dataclass
class EmbeddedPostgres:
    """A private cluster: unix socket only, no TCP listener, owned by an unprivileged user."""

    root: Path

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_file(self) -> Path:
        return self.root / "postgres.log"

    @property
    def dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@/{DATABASE_NAME}?host={self.socket_dir}"

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://{SUPERUSER}@/postgres?host={self.socket_dir}"

    def _run_as(self) -> tuple[int, int] | None:
        # initdb and postgres refuse to run as root: drop to the `postgres` account.
        if os.geteuid() != 0:
            return None
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError:
            raise PostgresNotInstalled(
                "running as root needs the `postgres` system user (created by the postgresql package)"
            ) from None
        return entry.pw_uid, entry.pw_gid

    def _chown(self, path: Path, owner: tuple[int, int] | None) -> None:
        if owner is not None:
            os.chown(path, *owner)

    def _make_reachable(self) -> None:
        """As root, the cluster runs as `postgres`, which must be able to traverse to it: grant
        search (x, not read) on root-owned ancestors that lack it, e.g. a 0700 temp dir."""
        for ancestor in self.root.resolve().parents:
            mode = ancestor.stat().st_mode
            if not mode & stat.S_IXOTH:
                ancestor.chmod(mode | stat.S_IXOTH)

    def prepare(self) -> None:
        """Create the cluster on first use."""
        bindir = find_bindir()
        owner = self._run_as()
        if owner is not None:
            self._make_reachable()
        for directory in (self.root, self.socket_dir):
            directory.mkdir(parents=True, exist_ok=True)
            directory.chmod(0o700)
            self._chown(directory, owner)
        if (self.data / "PG_VERSION").exists():
            return
        self.data.mkdir(mode=0o700, exist_ok=True)
        self._chown(self.data, owner)
        result = subprocess.run(
            [str(bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
             "-E", "UTF8", "--locale=C", "--no-sync"],
            check=False, capture_output=True, text=True, user=owner[0] if owner else None,
            group=owner[1] if owner else None, extra_groups=[] if owner else None, cwd=str(self.root),
        )
        if result.returncode != 0:
            raise RuntimeError(f"initdb failed for {self.data}:\n{result.stderr.strip()}")

    def start(self) -> subprocess.Popen[bytes]:
        """Start `postgres` in the foreground as a child, so stopping our process stops it."""
        bindir = find_bindir()
        owner = self._run_as()
        if owner is not None:
            # Again at every (re)start: something else (pytest does, for its temp root) may have
            # taken the search permission away since the cluster was prepared.
            self._make_reachable()
        log = self.log_file.open("ab")
        self._chown(self.log_file, owner)
        return subprocess.Popen(
            [str(bindir / "postgres"), "-D", str(self.data), "-k", str(self.socket_dir),
             "-c", "listen_addresses=", "-c", "unix_socket_permissions=0700",
             "-c", "max_connections=200", "-c", "fsync=on", "-c", "shared_buffers=128MB"],
            stdout=log, stderr=log, stdin=subprocess.DEVNULL, preexec_fn=child_preexec,
            user=owner[0] if owner else None, group=owner[1] if owner else None,
            extra_groups=[] if owner else None, cwd=str(self.root),
        )

    def wait_ready(self, process: subprocess.Popen[bytes], timeout: float = 30.0) -> None:
        bindir = find_bindir()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(f"PostgreSQL exited at start; see {self.log_file}")
            probe = subprocess.run(
                [str(bindir / "pg_isready"), "-q", "-h", str(self.socket_dir), "-U", SUPERUSER],
                check=False,
            )
            if probe.returncode == 0:
                self._create_database()
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not become ready in {timeout:.0f} s; see {self.log_file}")

    @contextlib.contextmanager
    def running(self) -> Iterator[EmbeddedPostgres]:
        """Prepared, started and ready for the block; stopped (fast shutdown) after it, killed if it lingers."""
        self.prepare()
        process = self.start()
        try:
            self.wait_ready(process)
            yield self
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def _create_database(self) -> None:
        from pixport.store.db import ensure_database

        asyncio.run(ensure_database(self.admin_dsn, DATABASE_NAME))
