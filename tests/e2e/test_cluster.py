"""Several separately started processes on one PostgreSQL and one bucket: 2 `serve`, 3 `work`,
2 `edge` (each balancing over both API processes), after two `migrate` runs at once."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from pixport.runtime.postgres import EmbeddedPostgres
from pixport.v1 import import_service_pb2, import_service_pb2_grpc
from support import images
from support.cluster import Cluster
from support.origin import Origin
from support.s3 import MotoServer
from support.stack import FAST_WEBHOOK_RETRIES, PIXPORT, REPO

BUCKET = "pixport-cluster"
PREFIX = "cluster"
JOBS = 3
IMAGES_PER_JOB = 100


@pytest.fixture(scope="module")
def postgres(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    with EmbeddedPostgres(tmp_path_factory.mktemp("cluster-pg")).running() as cluster:
        yield cluster


def watch(target: str, token: str, job_id: str, into: list[Any]) -> None:
    with grpc.insecure_channel(target) as channel:
        stream = import_service_pb2_grpc.ImportServiceStub(channel).WatchImportJob(
            import_service_pb2.WatchImportJobRequest(id=job_id, after_sequence=0),
            metadata=(("authorization", f"Bearer {token}"),), timeout=300,
        )
        into.extend(stream)


async def database_counts(dsn: str, job_ids: list[str]) -> dict[str, Any]:
    connection = await asyncpg.connect(dsn)
    try:
        return {
            "images": await connection.fetchval(
                "SELECT count(*) FROM images i JOIN organizations o ON o.id = i.organization_id WHERE o.name = $1",
                "cluster",
            ),
            "item_finished": {row["job_id"]: (row["events"], row["items"]) for row in await connection.fetch(
                "SELECT job_id, count(*) AS events, count(DISTINCT payload->>'externalId') AS items FROM job_events"
                " WHERE kind = 'item_finished' AND job_id = ANY($1) GROUP BY job_id", job_ids,
            )},
            "deliveries": {row["job_id"]: row["n"] for row in await connection.fetch(
                "SELECT job_id, count(*) AS n FROM webhook_deliveries WHERE job_id = ANY($1) GROUP BY job_id", job_ids,
            )},
        }
    finally:
        await connection.close()


@pytest.mark.slow
def test_separate_processes_import_every_image_exactly_once(
    postgres: EmbeddedPostgres, moto: MotoServer, origin: Origin, tmp_path: Path, unique: str
) -> None:
    moto.create_bucket(BUCKET)
    cluster = Cluster(tmp_path / "data", {
        "DATABASE_URL": postgres.dsn, "PIXPORT_SECRET_KEY": "cluster-test-key-0123456789abcdef",
        "PIXPORT_PIXEL_PROCESSES": "1", "PIXPORT_WORKER_CONCURRENCY": "6",
        **FAST_WEBHOOK_RETRIES, **moto.env(BUCKET, PREFIX),
    })
    # Two deploys racing: both succeed, the migrations are applied once.
    migrations = [subprocess.Popen([PIXPORT, "migrate"], env=cluster.env, stdout=subprocess.PIPE, text=True,
                                   cwd=REPO) for _ in range(2)]
    outputs = sorted(process.communicate(timeout=120)[0] for process in migrations)
    assert [process.returncode for process in migrations] == [0, 0]
    assert outputs[0] == "applied 0 migration(s)\n" and not outputs[1].startswith("applied 0 "), outputs

    apis = [cluster.serve(), cluster.serve()]
    for index in range(1, 4):
        cluster.work(index)
    edges = [cluster.edge(), cluster.edge()]
    try:
        cluster.wait_ready()
        client = json.loads(cluster.cli("client", "create", "--org", "cluster").stdout)
        token = cluster.cli("token", "--client", client["client_id"]).stdout.strip()
        auth = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

        job_ids: list[str] = []
        hooks: list[str] = []
        expected: dict[str, bytes] = {}
        streams: dict[tuple[str, int], list[Any]] = {}
        watchers: list[threading.Thread] = []
        for job in range(JOBS):
            hook = f"/{unique}/hook-{job}"
            hooks.append(hook)
            origin.serve(hook, b"", 204)
            batch = []
            for index in range(IMAGES_PER_JOB):
                data = images.jpeg(48, 32, seed=10_000 * (job + 1) + index, quality=80)
                external_id = f"{job}-{index}"
                expected[external_id] = data
                batch.append({"url": origin.serve(f"/{unique}/{external_id}.jpg", data), "id": external_id,
                              "fileName": external_id})
            body = json.dumps({"systemName": "cluster", "images": batch, "webhook": origin.url(hook)}).encode()
            created = cluster.request(edges[job % 2], "POST", "/api/v1/import/images", body=body, headers=auth)
            assert created.status == 200, created.body
            job_id = created.json()["id"]
            job_ids.append(job_id)
            for api in apis:  # live, on both API processes, from the start of the log
                events: list[Any] = []
                streams[(job_id, api)] = events
                watcher = threading.Thread(target=watch, args=(f"127.0.0.1:{api}", token, job_id, events))
                watcher.start()
                watchers.append(watcher)

        # Every stream ends after its job's job_finished event (written in the transaction that finishes
        # the job): wait for those rather than poll every job's status, which costs the 2 cores the
        # cluster runs on a full status of 100 items per poll.
        deadline = time.monotonic() + 300
        while any(watcher.is_alive() for watcher in watchers) and time.monotonic() < deadline:
            cluster.check_alive()
            time.sleep(0.2)
        assert not any(watcher.is_alive() for watcher in watchers), f"unfinished after 300 s\n{cluster.tail()}"
        statuses: dict[str, Any] = {}
        for number, job_id in enumerate(job_ids):
            got = cluster.request(edges[number % 2 - 1], "GET", f"/api/v1/import/images/status?id={job_id}",
                                  headers=auth)
            assert got.status == 200, got.body
            statuses[job_id] = got.json()
            assert statuses[job_id]["finished"], statuses[job_id]

        served: dict[str, bytes] = {}
        for job_id in job_ids:
            status = statuses[job_id]
            assert status["state"] == "success"
            assert [item["status"] for item in status["images"]] == ["success"] * IMAGES_PER_JOB, status
            for item in status["images"][::25]:  # a sample of the bytes, through both edges
                path = item["image"]["originalUrl"].split("/api/", 1)[1]
                got = cluster.request(edges[len(served) % 2], "GET", f"/api/{path}")
                assert got.status == 200
                served[item["externalId"]] = got.body
        assert all(expected[external_id] == body for external_id, body in served.items())

        for (job_id, api), events in streams.items():
            kinds = [event.WhichOneof("event") for event in events]
            assert kinds[0] == "snapshot" and kinds[-1] == "job_finished", (api, kinds[:3], kinds[-3:])
            finished = [event.item_finished.external_id for event in events
                        if event.WhichOneof("event") == "item_finished"]
            assert sorted(finished) == sorted(item["externalId"] for item in statuses[job_id]["images"]), api
            sequences = [event.sequence for event in events[1:]]
            assert sequences == sorted(set(sequences)), api

        for hook in hooks:
            deadline = time.monotonic() + 30
            while not origin.requests_to(hook) and time.monotonic() < deadline:
                time.sleep(0.2)
        time.sleep(2)  # any duplicate delivery would have arrived by now (retries are sub-second)
        assert [len(origin.requests_to(hook)) for hook in hooks] == [1] * JOBS

        counts = asyncio.run(database_counts(postgres.dsn, job_ids))
        assert counts["images"] == JOBS * IMAGES_PER_JOB
        assert counts["item_finished"] == {job_id: (IMAGES_PER_JOB, IMAGES_PER_JOB) for job_id in job_ids}
        assert counts["deliveries"] == dict.fromkeys(job_ids, 1)

        objects = moto.objects(BUCKET, PREFIX)
        for data in expected.values():
            assert f"{PREFIX}/{hashlib.sha256(data).hexdigest()}" in objects
        assert not [p for p in (cluster.data_dir / "blobs").rglob("*") if p.is_file()]
    finally:
        codes = cluster.stop()
    assert codes == dict.fromkeys(codes, 0), f"{codes}\n{cluster.tail()}"
