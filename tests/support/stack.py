"""The whole pixport stack as a user starts it (`pixport up`), on free ports and a private data dir."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
PIXPORT = str(Path(sys.executable).parent / "pixport")
# Webhook retries in seconds instead of minutes, so retry behaviour is observable in a test.
FAST_WEBHOOK_RETRIES = {"PIXPORT_WEBHOOK_RETRY_SCHEDULE": "0.5,0.5,1,1,1,1,1"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def lines(self) -> list[Any]:
        return [json.loads(line) for line in self.body.splitlines() if line.strip()]


class Stack:
    def __init__(self, data_dir: Path, extra_env: dict[str, str] | None = None) -> None:
        self.data_dir = data_dir
        self.http_port, self.grpc_port, self.admin_port = free_port(), free_port(), free_port()
        self.env = {
            **os.environ,
            "PIXPORT_DATA_DIR": str(data_dir),
            "PIXPORT_HTTP_PORT": str(self.http_port),
            "PIXPORT_GRPC_PORT": str(self.grpc_port),
            "PIXPORT_ADMIN_PORT": str(self.admin_port),
            "PIXPORT_FETCH_ALLOW_CIDRS": "127.0.0.0/8",
            **(extra_env or {}),
        }
        self.env.pop("DATABASE_URL", None)
        self.env.pop("PIXPORT_PUBLIC_URL", None)
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir / "up.log"

    @property
    def grpc_target(self) -> str:
        return f"127.0.0.1:{self.grpc_port}"

    def start(self, timeout: float = 120.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = self.log.open("ab")
        self.process = subprocess.Popen([PIXPORT, "up"], env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                        stdin=subprocess.DEVNULL, cwd=REPO)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pixport up exited: {self.log.read_text()}")
            if "ready; Ctrl-C stops everything" in self.log.read_text():
                return
            time.sleep(0.2)
        raise RuntimeError(f"stack not ready: {self.log.read_text()}")

    def stop(self, timeout: float = 60.0) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout)

    def cli(self, *args: str, check: bool = True, input_text: str | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run([PIXPORT, *args], env=self.env, capture_output=True, text=True, cwd=REPO,
                                check=False, input=input_text, timeout=120)
        if check and result.returncode != 0:
            raise AssertionError(f"pixport {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def create_client(self, org: str, *scopes: str) -> dict[str, str]:
        args = ["client", "create", "--org", org]
        for scope in scopes:
            args += ["--scope", scope]
        return json.loads(self.cli(*args).stdout)  # type: ignore[no-any-return]

    def token(self, client_id: str, *scopes: str, ttl: int = 3600) -> str:
        args = ["token", "--client", client_id, "--ttl", str(ttl)]
        for scope in scopes:
            args += ["--scope", scope]
        return self.cli(*args).stdout.strip()

    def request(
        self, method: str, path: str, *, body: Any = None, token: str | None = None, raw: bytes | None = None,
        headers: dict[str, str] | None = None, timeout: float = 30.0,
    ) -> Response:
        connection = http.client.HTTPConnection("127.0.0.1", self.http_port, timeout=timeout)
        send_headers = dict(headers or {})
        if token is not None:
            send_headers.setdefault("Authorization", f"Bearer {token}")
        payload = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if payload is not None:
            send_headers.setdefault("Content-Type", "application/json")
        try:
            connection.request(method, path, body=payload, headers=send_headers)
            response = connection.getresponse()
            return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def wait_job(self, job_id: str, token: str, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.request("GET", f"/api/v1/import/images/status?id={job_id}", token=token)
            assert response.status == 200, response.body
            status = response.json()
            if status["finished"]:
                return status  # type: ignore[no-any-return]
            time.sleep(0.2)
        raise AssertionError(f"job {job_id} not finished after {timeout} s")

    def import_batch(self, token: str, images: list[dict[str, Any]], system: str = "tests", **extra: Any) -> str:
        response = self.request("POST", "/api/v1/import/images", token=token,
                                body={"systemName": system, "images": images, **extra})
        assert response.status == 200, response.body
        return str(response.json()["id"])
