"""Shared fixtures: the real stack (PostgreSQL, server, workers, Envoy) and a local image origin."""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from support.origin import Origin
from support.s3 import MotoServer
from support.stack import FAST_WEBHOOK_RETRIES, Stack

_ids = itertools.count(1)



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    running = Stack(tmp_path_factory.mktemp("stack"), FAST_WEBHOOK_RETRIES)
    running.start()
    yield running
    assert running.stop() == 0, running.log.read_text()[-3000:]


@pytest.fixture(scope="session")
def origin() -> Iterator[Origin]:
    server = Origin()
    yield server
    server.close()


@pytest.fixture
def org(stack: Stack) -> dict[str, str]:
    """A fresh organisation with a client allowed every scope, and a token for it."""
    client = stack.create_client(f"org-{next(_ids)}-{id(stack)}")
    client["token"] = stack.token(client["client_id"])
    return client


@pytest.fixture
def unique() -> str:
    return f"u{next(_ids)}"


@pytest.fixture(scope="session")
def moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    """A real S3 HTTP endpoint on a loopback port (moto in server mode, its own process)."""
    server = MotoServer(tmp_path_factory.mktemp("moto") / "moto.log")
    yield server
    server.close()
