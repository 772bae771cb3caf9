"""A real S3 HTTP endpoint on loopback: moto in server mode, as a separate process."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from support.stack import free_port

MOTO_SERVER = str(Path(sys.executable).parent / "moto_server")
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "pixport-test", "AWS_SECRET_ACCESS_KEY": "pixport-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1"}


class MotoServer:
    def __init__(self, log: Path, *, authenticate: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        handle = log.open("ab")
        self.process = subprocess.Popen(
            [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)], stdout=handle, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # authenticate: every request's keys are checked against moto's (empty) IAM, so all are refused.
            env={**os.environ, **({"INITIAL_NO_AUTH_ACTION_COUNT": "0"} if authenticate else {})},
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"moto_server exited: {log.read_text()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"moto_server not listening after 30 s: {log.read_text()}")

    def env(self, bucket: str, prefix: str = "") -> dict[str, str]:
        """What a pixport process needs to use `bucket` on this endpoint."""
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": self.url, "PIXPORT_BLOB_URL": f"s3://{bucket}/{prefix}"}

    def client(self) -> Any:
        return boto3.client(
            "s3", endpoint_url=self.url, region_name="us-east-1",
            aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
            config=Config(s3={"addressing_style": "path"}),
        )

    def create_bucket(self, bucket: str) -> None:
        self.client().create_bucket(Bucket=bucket)

    def objects(self, bucket: str, prefix: str = "") -> dict[str, int]:
        """Every object's name and size, listed through the S3 API."""
        found: dict[str, int] = {}
        for page in self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            found.update({entry["Key"]: entry["Size"] for entry in page.get("Contents", [])})
        return found

    def get(self, bucket: str, name: str) -> bytes:
        return bytes(self.client().get_object(Bucket=bucket, Key=name)["Body"].read())

    def close(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
