"""Prometheus text over HTTP: one process's metrics, or the sum over a stack's processes.

Under `pixport up` every child writes its metrics to files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode) and the supervisor serves their aggregate on one URL.
A process started on its own (`pixport serve` / `pixport worker` in a deployment) serves its
own metrics when PIXPORT_METRICS_PORT is set."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.multiprocess import MultiProcessCollector

log = logging.getLogger(__name__)


def serve_multiprocess(directory: Path, port: int, host: str = "127.0.0.1") -> Any:
    """Serve the sum of every process's metrics found in `directory`; returns the HTTP server."""
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=str(directory))  # type: ignore[no-untyped-call]
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return server


def serve_own_metrics_if_asked() -> None:
    """Start this process's metrics endpoint when PIXPORT_METRICS_PORT is set (loopback unless
    PIXPORT_METRICS_HOST says otherwise)."""
    port = int(os.environ.get("PIXPORT_METRICS_PORT", "0") or 0)
    if port == 0:
        return
    host = os.environ.get("PIXPORT_METRICS_HOST", "127.0.0.1")
    start_http_server(port, addr=host, registry=REGISTRY)
    log.info("metrics on http://%s:%d/metrics", host, port)
