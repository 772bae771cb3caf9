"""Both token styles, user tokens, rotation, isolation on every read path, and the quota."""

from __future__ import annotations

import concurrent.futures
import json
import time

import grpc
import jwt
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from pixport.v1 import import_service_pb2, import_service_pb2_grpc
from support import images
from support.origin import Origin
from support.stack import Stack


def _token_header(token: str) -> dict[str, str]:
    return {"Authorization": f'Token token="{token}"'}


def test_token_style_header_carries_x_token(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    url = origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=31))
    body = {"systemName": "t", "images": [{"url": url, "id": "a", "fileName": "a"}]}
    response = stack.request("POST", "/api/v1/import/images", body=body, headers=_token_header(org["token"]))
    assert response.status == 200, response.body
    assert response.headers["x-token"] == org["token"]
    job_id = response.json()["id"]
    status = stack.request("GET", f"/api/v1/import/images/status?id={job_id}", headers=_token_header(org["token"]))
    assert status.status == 200 and status.headers["x-token"] == org["token"]
    bearer = stack.request("GET", f"/api/v1/import/images/status?id={job_id}", token=org["token"])
    assert "x-token" not in bearer.headers


def test_token_near_expiry_is_refreshed(stack: Stack, org: dict[str, str]) -> None:
    short = stack.token(org["client_id"], ttl=60)
    response = stack.request("GET", "/api/v1/import/jobs", headers=_token_header(short))
    assert response.status == 200
    fresh = response.headers["x-token"]
    assert fresh != short
    claims = jwt.decode(fresh, org["secret"], algorithms=["HS256"])
    assert claims["iss"] == org["client_id"] and claims["exp"] > time.time() + 100
    assert stack.request("GET", "/api/v1/import/jobs", headers=_token_header(fresh)).status == 200


def test_user_tokens(stack: Stack, origin: Origin, unique: str) -> None:
    user = json.loads(stack.cli("user", "create", "--org", f"users-{unique}").stdout)
    token = stack.cli("token", "--user", user["user_id"]).stdout.strip()
    assert "iss" not in jwt.decode(token, options={"verify_signature": False})
    url = origin.serve(f"/{unique}/u.jpg", images.jpeg(seed=32))
    response = stack.request("POST", "/api/v1/import/images", headers=_token_header(token),
                             body={"systemName": "u", "images": [{"url": url, "id": "u", "fileName": "u"}]})
    assert response.status == 200 and response.headers["x-token"] == token
    claims = jwt.decode(token, options={"verify_signature": False})
    guessed = "guessed-secret-guessed-secret-32"
    forged = jwt.encode({**claims, "exp": int(time.time()) + 900}, guessed, algorithm="HS256")
    assert stack.request("GET", "/api/v1/import/jobs", headers=_token_header(forged)).status == 401
    unknown = jwt.encode({**claims, "user_id": "00000000-0000-0000-0000-000000000000"}, "x" * 32, algorithm="HS256")
    assert stack.request("GET", "/api/v1/import/jobs", headers=_token_header(unknown)).status == 401


def test_not_yet_valid_and_missing_claims_are_401(stack: Stack, org: dict[str, str]) -> None:
    now = int(time.time())
    future = jwt.encode({"iss": org["client_id"], "iat": now + 3600, "exp": now + 7200, "scope": "public-api:read"},
                        org["secret"], algorithm="HS256")
    no_exp = jwt.encode({"iss": org["client_id"], "iat": now, "scope": "public-api:read"}, org["secret"],
                        algorithm="HS256")
    hs512 = jwt.encode({"iss": org["client_id"], "iat": now, "exp": now + 60}, org["secret"], algorithm="HS512")
    for token in (future, no_exp, hs512):
        response = stack.request("GET", "/api/v1/import/jobs", token=token)
        assert response.status == 401, response.body
        assert token not in response.body.decode()


def test_rotation_keeps_old_secret_for_the_grace_period(stack: Stack, unique: str) -> None:
    client = stack.create_client(f"rotate-{unique}")
    old_token = stack.token(client["client_id"])
    first = json.loads(stack.cli("client", "rotate", "--client", client["client_id"], "--grace", "3600").stdout)
    assert first["secret"] != client["secret"]
    new_token = stack.token(client["client_id"])
    assert stack.request("GET", "/api/v1/import/jobs", token=old_token).status == 200
    assert stack.request("GET", "/api/v1/import/jobs", token=new_token).status == 200
    stack.cli("client", "rotate", "--client", client["client_id"], "--grace", "0")
    assert stack.request("GET", "/api/v1/import/jobs", token=old_token).status == 401
    assert stack.request("GET", "/api/v1/import/jobs", token=new_token).status == 401  # two generations back
    assert stack.request("GET", "/api/v1/import/jobs", token=stack.token(client["client_id"])).status == 200


def test_every_read_path_is_isolated(stack: Stack, origin: Origin, org: dict[str, str], unique: str) -> None:
    hook = origin.serve(f"/{unique}/hook", b"ok")
    url = origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=33))
    job_id = stack.import_batch(org["token"], [{"url": url, "id": "a", "fileName": "a"}], webhook=hook)
    job = stack.wait_job(job_id, org["token"])
    media_id = job["images"][0]["image"]["mediaId"]
    deadline = time.monotonic() + 20
    deliveries: list[dict[str, str]] = []
    while not deliveries and time.monotonic() < deadline:
        deliveries = stack.request("GET", f"/api/v1/webhooks/deliveries?jobId={job_id}",
                                   token=org["token"]).json()["webhookDeliveries"]
        time.sleep(0.2)
    delivery_id = deliveries[0]["id"]
    other = stack.token(stack.create_client(f"iso-{unique}")["client_id"])
    for method, path in (
        ("GET", f"/api/v1/import/images/status?id={job_id}"),
        ("GET", f"/api/v1/import/jobs/{job_id}"),
        ("POST", f"/api/v1/import/jobs/{job_id}:cancel"),
        ("GET", f"/api/v1/import/images/status/stream?id={job_id}"),
        ("GET", f"/api/v1/images/{media_id}"),
        ("GET", f"/api/v1/webhooks/deliveries/{delivery_id}"),
        ("POST", f"/api/v1/webhooks/deliveries/{delivery_id}:redeliver"),
    ):
        mine = stack.request(method, path, token=org["token"], body={} if method == "POST" else None)
        theirs = stack.request(method, path, token=other, body={} if method == "POST" else None)
        assert mine.status == 200, (path, mine.body)
        assert theirs.status == 404, (path, theirs.status, theirs.body)
    for path in ("/api/v1/import/jobs", f"/api/v1/webhooks/deliveries?jobId={job_id}"):
        listed = stack.request("GET", path, token=other).json()
        assert not any(listed.values()), (path, listed)


def test_quota_429_exactly_as_seed(stack: Stack, origin: Origin, unique: str) -> None:
    org = f"quota-{unique}"
    client = stack.create_client(org)
    token = stack.token(client["client_id"])
    stack.cli("org", "set-quota", "--org", org, "--images-per-day", "100")
    gone = origin.url(f"/{unique}/gone.jpg")
    stack.import_batch(token, [{"url": gone, "id": f"a{i}", "fileName": "a"} for i in range(99)])
    response = stack.request("POST", "/api/v1/import/images", token=token,
                             body={"systemName": "q", "images": [{"url": gone, "id": f"b{i}", "fileName": "b"}
                                                                   for i in range(10)]})
    assert response.status == 429
    assert response.json() == [{
        "status": 429, "error": "Usage Limit Exceeded",
        "error_details": {"message": "Your plan does not allow you to upload more than 100 per day. You already "
                                     "uploaded 99 in the last 24 hours and are trying to upload 10 more. "
                                     "Please try again later."},
    }]
    assert 0 < int(response.headers["retry-after"]) <= 86400
    assert response.headers["content-type"].startswith("application/json")
    invalid = stack.request("POST", "/api/v1/import/images", token=token, body={"systemName": "q", "images": []})
    assert invalid.status == 400  # validation comes first
    assert stack.request("POST", "/api/v1/import/images", token=token,
                         body={"systemName": "q", "images": [{"url": gone, "id": "c", "fileName": "c"}]}).status == 200

    with grpc.insecure_channel(stack.grpc_target) as channel, pytest.raises(grpc.RpcError) as raised:
        import_service_pb2_grpc.ImportServiceStub(channel).CreateImportJob(
            import_service_pb2.CreateImportJobRequest(system_name="q", images=[
                import_service_pb2.ImageToImport(url=gone, id="d", file_name="d")]),
            metadata=(("authorization", f"Bearer {token}"),),
        )
    assert raised.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    status = rpc_status.from_call(raised.value)
    assert status is not None
    assert any(detail.Is(error_details_pb2.QuotaFailure.DESCRIPTOR) for detail in status.details)


def test_concurrent_batches_cannot_overshoot_the_quota(stack: Stack, origin: Origin, unique: str) -> None:
    org = f"race-{unique}"
    token = stack.token(stack.create_client(org)["client_id"])
    stack.cli("org", "set-quota", "--org", org, "--images-per-day", "50")
    gone = origin.url(f"/{unique}/gone.jpg")

    def submit(n: int) -> int:
        body = {"systemName": "race", "images": [{"url": gone, "id": f"{n}-{i}", "fileName": "x"} for i in range(5)]}
        return stack.request("POST", "/api/v1/import/images", token=token, body=body).status

    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(submit, range(20)))
    assert sorted(statuses) == [200] * 10 + [429] * 10
    jobs = stack.request("GET", "/api/v1/import/jobs?pageSize=200&view=IMPORT_JOB_VIEW_FULL", token=token).json()
    assert sum(len(job["images"]) for job in jobs["importJobs"]) == 50
