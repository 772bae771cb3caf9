"""Signed webhooks: retried with the same webhook-id, verified with the standardwebhooks package,
delivered after a receiver outage spanning a server restart."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook
from support import images
from support.origin import Origin
from support.stack import FAST_WEBHOOK_RETRIES, Stack, free_port


def _wait_for(predicate: Any, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def test_retried_until_accepted_with_same_id_and_valid_signature(
    stack: Stack, origin: Origin, org: dict[str, str], unique: str
) -> None:
    hook = origin.serve_sequence(f"/{unique}/hook", (500, b"oops"), (500, b"oops"), (200, b"ok"))
    image = origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=9))
    job_id = stack.import_batch(org["token"], [{"url": image, "id": "a", "fileName": "a"}], webhook=hook,
                                context={"myIdentifier": unique})
    _wait_for(lambda: len(origin.requests_to(f"/{unique}/hook")) >= 3)
    time.sleep(1.5)  # no fourth attempt after the 200
    attempts = origin.requests_to(f"/{unique}/hook")
    assert len(attempts) == 3
    assert len({attempt.headers["webhook-id"] for attempt in attempts}) == 1
    secret = stack.cli("webhook-secret", "--org", org["org"]).stdout.strip()
    assert secret.startswith("whsec_")
    for attempt in attempts:
        payload = Webhook(secret).verify(attempt.body, attempt.headers)
        assert payload == {
            "id": job_id, "state": "success",
            "overview": {"total": 1, "success": 1, "skipped": 0, "failed": 0, "cancelled": 0, "pending": 0},
            "context": {"myIdentifier": unique},
        }
    log = stack.request("GET", f"/api/v1/webhooks/deliveries?jobId={job_id}", token=org["token"]).json()
    [delivery] = log["webhookDeliveries"]
    assert delivery["id"] == attempts[0].headers["webhook-id"]
    assert delivery["state"] == "STATE_DELIVERED" and delivery["attemptCount"] == 3
    assert [a["statusCode"] for a in delivery["attempts"]] == [500, 500, 200]

    redelivered = stack.request("POST", f"/api/v1/webhooks/deliveries/{delivery['id']}:redeliver", token=org["token"],
                                body={})
    assert redelivered.status == 200
    _wait_for(lambda: len(origin.requests_to(f"/{unique}/hook")) == 4)
    assert origin.requests_to(f"/{unique}/hook")[-1].headers["webhook-id"] == delivery["id"]


def test_410_stops_retries(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    hook = origin.serve_sequence(f"/{unique}/hook", (410, b"gone"))
    image = origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=10))
    job_id = stack.import_batch(org["token"], [{"url": image, "id": "a", "fileName": "a"}], webhook=hook)
    _wait_for(lambda: len(origin.requests_to(f"/{unique}/hook")) >= 1)
    time.sleep(2.0)
    assert len(origin.requests_to(f"/{unique}/hook")) == 1
    [delivery] = stack.request("GET", f"/api/v1/webhooks/deliveries?jobId={job_id}",
                               token=org["token"]).json()["webhookDeliveries"]
    assert delivery["state"] == "STATE_FAILED" and "410" in delivery["lastError"]


def test_webhook_to_a_forbidden_address_is_refused(stack: Stack, origin: Origin, org: dict[str, str],
                                                   unique: str) -> None:
    image = origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=11))
    job_id = stack.import_batch(org["token"], [{"url": image, "id": "a", "fileName": "a"}],
                                webhook="http://169.254.169.254/latest/meta-data/")
    stack.wait_job(job_id, org["token"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        [delivery] = stack.request("GET", f"/api/v1/webhooks/deliveries?jobId={job_id}",
                                   token=org["token"]).json()["webhookDeliveries"]
        if delivery["state"] == "STATE_FAILED":
            break
        time.sleep(0.2)
    assert delivery["state"] == "STATE_FAILED" and "refused" in delivery["lastError"]


@pytest.fixture
def own_stack(tmp_path: Path) -> Any:
    stack = Stack(tmp_path / "restart", {**FAST_WEBHOOK_RETRIES,
                                         "PIXPORT_WEBHOOK_RETRY_SCHEDULE": "0.5,2,2,2,2,2,2,2,2,2"})
    stack.start()
    yield stack
    if stack.process is not None and stack.process.poll() is None:
        stack.stop()


def test_delivery_survives_receiver_outage_and_server_restart(own_stack: Stack, origin: Origin, unique: str) -> None:
    stack = own_stack
    client = stack.create_client(f"restart-{unique}")
    token = stack.token(client["client_id"])
    receiver_port = free_port()
    hook = f"http://127.0.0.1:{receiver_port}/hook"  # nothing listens yet
    image = origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=12))
    job_id = stack.import_batch(token, [{"url": image, "id": "a", "fileName": "a"}], webhook=hook)
    stack.wait_job(job_id, token)

    def attempts() -> list[dict[str, Any]]:
        deliveries = stack.request("GET", f"/api/v1/webhooks/deliveries?jobId={job_id}",
                                   token=token).json()["webhookDeliveries"]
        return list(deliveries[0]["attempts"]) if deliveries else []

    _wait_for(lambda: len(attempts()) >= 1)
    assert attempts()[0]["statusCode"] == 0 and "connect" in attempts()[0]["error"]
    assert stack.stop() == 0

    receiver = Origin(port=receiver_port)
    receiver.serve("/hook", b"ok")
    try:
        stack.start()
        _wait_for(lambda: len(receiver.requests_to("/hook")) >= 1, timeout=60)
        [received] = receiver.requests_to("/hook")
        assert json.loads(received.body)["id"] == job_id
        secret = stack.cli("webhook-secret", "--org", f"restart-{unique}").stdout.strip()
        Webhook(secret).verify(received.body, received.headers)
    finally:
        receiver.close()
