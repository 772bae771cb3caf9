"""Following a job live: the REST NDJSON stream, resumable gRPC watch, watchers on another server."""

from __future__ import annotations

import http.client
import json
import subprocess
import time
from typing import Any

import grpc
from pixport.v1 import import_service_pb2, import_service_pb2_grpc
from support import images
from support.origin import Origin
from support.stack import PIXPORT, REPO, Stack, free_port


def _slow_batch(origin: Origin, unique: str, delays: tuple[float, ...]) -> list[dict[str, str]]:
    return [
        {"url": origin.serve(f"/{unique}/{i}.jpg", images.jpeg(seed=100 + i), delay=delay), "id": f"i{i}",
         "fileName": f"image {i}"}
        for i, delay in enumerate(delays)
    ]


def test_rest_stream_sends_a_line_per_image_as_it_happens(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str
) -> None:
    batch = _slow_batch(origin, unique, (0.5, 1.5, 2.5))
    missing = origin.serve(f"/{unique}/missing.jpg", b"no", status=404, delay=1.0)
    batch.append({"url": missing, "id": "gone", "fileName": "gone"})
    job_id = stack.import_batch(org["token"], batch)
    connection = http.client.HTTPConnection("127.0.0.1", stack.http_port, timeout=60)
    connection.request("GET", f"/api/v1/import/images/status/stream?id={job_id}",
                       headers={"Authorization": f"Bearer {org['token']}"})
    response = connection.getresponse()
    assert response.status == 200
    assert not any(key.lower().startswith("grpc-") for key, _ in response.getheaders())
    arrivals: list[tuple[float, dict[str, Any]]] = []
    while line := response.readline():
        if line.strip():
            arrivals.append((time.monotonic(), json.loads(line)))
    connection.close()
    events = [event for _, event in arrivals]
    assert "snapshot" in events[0] and events[0]["snapshot"]["id"] == job_id
    items = [event["itemFinished"] for event in events if "itemFinished" in event]
    assert sorted(item["externalId"] for item in items) == ["gone", "i0", "i1", "i2"]
    assert "jobFinished" in events[-1] and events[-1]["jobFinished"]["state"] == "success"
    assert events[-1]["jobFinished"]["overview"] == {
        "total": 4, "success": 3, "skipped": 0, "failed": 1, "cancelled": 0, "pending": 0,
    }
    sequences = [int(event["sequence"]) for event in events[1:]]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    # Flushed as it happened: the last image's line came well after the first one's.
    first_item = next(at for at, event in arrivals if "itemFinished" in event)
    assert arrivals[-1][0] - first_item >= 1.0


def _watch(target: str, token: str, job_id: str, after: int, stop_after: int | None = None) -> list[Any]:
    events = []
    with grpc.insecure_channel(target) as channel:
        stream = import_service_pb2_grpc.ImportServiceStub(channel).WatchImportJob(
            import_service_pb2.WatchImportJobRequest(id=job_id, after_sequence=after),
            metadata=(("authorization", f"Bearer {token}"),), timeout=60,
        )
        for event in stream:
            events.append(event)
            if stop_after is not None and len(events) >= stop_after:
                stream.cancel()
                break
    return events


def test_grpc_watch_resumes_without_gaps_or_duplicates(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str
) -> None:
    job_id = stack.import_batch(org["token"], _slow_batch(origin, unique, (0.3, 1.2, 2.0, 2.8)))
    first = _watch(stack.grpc_target, org["token"], job_id, 0, stop_after=2)  # snapshot + one more
    assert first[0].WhichOneof("event") == "snapshot"
    resumed = _watch(stack.grpc_target, org["token"], job_id, first[-1].sequence)
    assert resumed[0].sequence == first[-1].sequence + 1
    seen = [event.sequence for event in first[1:] + resumed]
    assert seen == list(range(seen[0], seen[-1] + 1))  # contiguous: no gap, no duplicate
    assert resumed[-1].WhichOneof("event") == "job_finished"
    # A full replay from 1 is the whole log; resuming past the end ends at once.
    replay = _watch(stack.grpc_target, org["token"], job_id, 1)
    assert [event.sequence for event in replay] == list(range(2, resumed[-1].sequence + 1))
    assert _watch(stack.grpc_target, org["token"], job_id, resumed[-1].sequence) == []
    past_end = stack.request("GET", f"/api/v1/import/images/status/stream?id={job_id}&afterSequence=99999",
                             token=org["token"])
    assert past_end.status == 400 and "afterSequence" in past_end.body.decode()


def test_watcher_on_another_server_process_gets_events(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str
) -> None:
    port = free_port()
    env = {**stack.env, "PIXPORT_GRPC_PORT": str(port),
           "DATABASE_URL": f"postgresql://pixport@/pixport?host={stack.data_dir / 'postgres' / 'run'}"}
    second = subprocess.Popen([PIXPORT, "serve"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=max(1, deadline - time.monotonic()))
        job_id = stack.import_batch(org["token"], _slow_batch(origin, unique, (0.5, 1.0)))
        events = _watch(f"127.0.0.1:{port}", org["token"], job_id, 0)
        kinds = [event.WhichOneof("event") for event in events]
        assert kinds[0] == "snapshot" and kinds[-1] == "job_finished"
        finished_items = {
            event.item_finished.external_id for event in events if event.WhichOneof("event") == "item_finished"
        }
        snapshot_done = {item.external_id for item in events[0].snapshot.images if item.status != 1}
        assert finished_items | snapshot_done == {"i0", "i1"}
    finally:
        second.terminate()
        second.wait(timeout=30)


def test_watch_of_another_organisations_job_is_not_found(stack: Stack, origin: Origin, org: dict[str, str],
                                                         unique: str) -> None:
    job_id = stack.import_batch(org["token"], _slow_batch(origin, unique, (0.1,)))
    other = stack.create_client(f"watch-other-{unique}")
    token = stack.token(other["client_id"])
    try:
        _watch(stack.grpc_target, token, job_id, 0)
    except grpc.RpcError as error:
        assert error.code() == grpc.StatusCode.NOT_FOUND
    else:
        raise AssertionError("another organisation could watch the job")
    response = stack.request("GET", f"/api/v1/import/images/status/stream?id={job_id}", token=token)
    assert response.status == 404
