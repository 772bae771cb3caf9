"""pixport as a cluster would run it: each role a separately started process (no `pixport up`),
all on one PostgreSQL and one bucket."""

from __future__ import annotations

import http.client
import os
import signal
import subprocess
import time
from pathlib import Path

from support.stack import PIXPORT, REPO, Response, free_port


class Cluster:
    def __init__(self, data_dir: Path, env: dict[str, str]) -> None:
        self.data_dir = data_dir
        self.logs = data_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, "PIXPORT_DATA_DIR": str(data_dir), "PIXPORT_FETCH_ALLOW_CIDRS": "127.0.0.0/8",
                    "PYTHONUNBUFFERED": "1", **env}
        self.env.pop("PIXPORT_PUBLIC_URL", None)
        self.processes: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.api_ports: list[int] = []
        self.edge_ports: list[int] = []

    def spawn(self, name: str, *args: str, **env: str) -> subprocess.Popen[bytes]:
        log = (self.logs / f"{name}.log").open("ab")
        process = subprocess.Popen([PIXPORT, *args], env={**self.env, **env}, stdout=log, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, cwd=REPO)
        self.processes.append((name, process))
        return process

    def serve(self) -> int:
        port = free_port()
        self.spawn(f"serve-{len(self.api_ports) + 1}", "serve", PIXPORT_GRPC_PORT=str(port))
        self.api_ports.append(port)
        return port

    def work(self, index: int) -> None:
        self.spawn(f"work-{index}", "work")

    def edge(self) -> int:
        port = free_port()
        addresses = ",".join(f"127.0.0.1:{api}" for api in self.api_ports)
        self.spawn(f"edge-{len(self.edge_ports) + 1}", "edge", PIXPORT_HTTP_PORT=str(port),
                   PIXPORT_ADMIN_PORT=str(free_port()), PIXPORT_API_ADDRESSES=addresses)
        self.edge_ports.append(port)
        return port

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([PIXPORT, *args], env=self.env, capture_output=True, text=True, cwd=REPO,
                                check=False, timeout=120)
        assert result.returncode == 0, f"pixport {' '.join(args)}: {result.stderr}"
        return result

    def request(self, port: int, method: str, path: str, *, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.edge_ports)
        while pending and time.monotonic() < deadline:
            self.check_alive()
            for port in list(pending):
                try:
                    if self.request(port, "GET", "/ready").status == 200:
                        pending.discard(port)
                except OSError:
                    pass
            time.sleep(0.2)
        assert not pending, f"edges {pending} not ready: {self.tail()}"

    def check_alive(self) -> None:
        dead = [(name, p.returncode) for name, p in self.processes if p.poll() is not None]
        assert not dead, f"exited: {dead}\n{self.tail()}"

    def tail(self) -> str:
        return "\n".join(f"--- {log.name}\n{log.read_text()[-1500:]}" for log in sorted(self.logs.glob("*.log")))

    def stop(self) -> dict[str, int]:
        """SIGTERM every process (edges first, as a deployment drains); their exit codes."""
        codes: dict[str, int] = {}
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for name, process in self.processes:
            try:
                codes[name] = process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                codes[name] = process.wait()
        return codes
