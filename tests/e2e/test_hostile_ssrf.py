"""SSRF battery through the real edge and worker: nothing outside the allowlist is ever reached.

A stack of its own allows only 127.0.0.1/32. An allowed origin listens on 127.0.0.1; a recorder listens on
127.0.0.2 (loopback, but outside the allowlist) and must never see a single request, whatever spelling,
redirect or webhook points at it. Every payload is an address literal (or `localhost`, which /etc/hosts
answers), so no DNS query leaves the machine even if the guard were broken.

Not covered: an origin slower than the total fetch timeout (30 s, not configurable, too slow for the suite).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from support import images
from support.origin import Origin
from support.stack import FAST_WEBHOOK_RETRIES, Stack

MAX_IMAGE_BYTES = 2_000_000


class ChunkedOrigin:
    """Streams `size` bytes with Transfer-Encoding: chunked and no Content-Length (so only counting stops it)."""

    def __init__(self, size: int) -> None:
        outer = self
        self.sent = 0

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Type: image/jpeg\r\nTransfer-Encoding: chunked\r\n\r\n")
                chunk = b"\xff" * 65536
                try:
                    while outer.sent < size:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                        outer.sent += len(chunk)
                    self.wfile.write(b"0\r\n\r\n")
                except OSError:
                    pass  # the fetcher hung up: what we want

        self._server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class SsrfEnv:
    stack: Stack
    token: str
    allowed: Origin  # 127.0.0.1, inside the allowlist
    recorder: Origin  # 127.0.0.2, outside it: must stay silent
    twin: Origin | None  # 127.0.0.1 on the recorder's port, where `localhost` legitimately goes


@pytest.fixture(scope="module")
def ssrf(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SsrfEnv]:
    stack = Stack(tmp_path_factory.mktemp("ssrf"), {
        **FAST_WEBHOOK_RETRIES,
        "PIXPORT_FETCH_ALLOW_CIDRS": "127.0.0.1/32",
        "PIXPORT_MAX_IMAGE_BYTES": str(MAX_IMAGE_BYTES),
    })
    allowed, recorder = Origin("127.0.0.1"), Origin("127.0.0.2")
    recorder.serve("/x.jpg", images.jpeg(seed=99))  # a bypass would show up as a success
    try:
        twin: Origin | None = Origin("127.0.0.1", recorder.port)
    except OSError:
        twin = None
    code = 0
    try:
        stack.start()
        client = stack.create_client("ssrf")
        yield SsrfEnv(stack, stack.token(client["client_id"]), allowed, recorder, twin)
    finally:
        if stack.process is not None and stack.process.poll() is None:
            code = stack.stop()
        for server in (allowed, recorder, twin):
            if server is not None:
                server.close()
    assert code == 0, stack.log.read_text()[-3000:]


def _violations(body: dict[str, Any]) -> dict[str, str]:
    for detail in body.get("details", []):
        if detail.get("@type", "").endswith("google.rpc.BadRequest"):
            return {v["field"]: v["description"] for v in detail["fieldViolations"]}
    return {}


def _submit_filtering_invalid(env: SsrfEnv, urls: dict[str, str], **extra: Any) -> tuple[str, set[str]]:
    """Submit every URL as one batch; those refused at submit (400 naming images[i].url) are dropped.

    Returns the job id and the names refused at submit.
    """
    names = list(urls)
    rejected: set[str] = set()
    while True:
        kept = [name for name in names if name not in rejected]
        assert kept, "every URL was refused at submit"
        spec = [{"url": urls[name], "id": name, "fileName": name} for name in kept]
        response = env.stack.request("POST", "/api/v1/import/images", token=env.token,
                                     body={"systemName": "ssrf", "images": spec, **extra})
        if response.status == 200:
            return str(response.json()["id"]), rejected
        assert response.status == 400, (response.status, response.body)
        fields = _violations(response.json())
        assert fields, response.body
        for field in fields:
            assert field.startswith("images[") and field.endswith("].url"), fields
            rejected.add(kept[int(field[len("images["):-len("].url")])])


def _assert_refused(item: dict[str, Any]) -> None:
    assert item["status"] == "failed", item
    reason = item["reason"]
    assert reason.startswith("refused") or "redirect to an invalid URL" in reason, item
    assert "Traceback" not in reason and len(reason) < 300, item


def _recorder_silent(env: SsrfEnv) -> None:
    assert env.recorder.requests == [], [(r.method, r.path) for r in env.recorder.requests]


RECORDER_SPELLINGS = [
    "127.0.0.2", "2130706434", "0x7f000002", "0X7F000002", "0177.0.0.2", "0177.0000.0000.0002", "0x7f.0.0.2",
    "0x7f.0x0.0x0.0x2", "127.2", "127.0.2", "0x7f.2", "017700000002", "127.000.000.002", "127.0.0.2.",
    "[::ffff:127.0.0.2]", "[::ffff:7f00:2]", "[0:0:0:0:0:ffff:7f00:2]", "[::127.0.0.2]", "[::1]",
    "[0:0:0:0:0:0:0:1]", "[2002:7f00:2::]", "[64:ff9b::7f00:2]", "[64:ff9b::127.0.0.2]", "[64:ff9b:1:7f00:2::]",
    "[2001:0:4136:e378:8000:63bf:80ff:fffd]",  # Teredo whose client address is 127.0.0.2
    "\uff11\uff12\uff17.\uff10.\uff10.\uff12",  # fullwidth digits: IDNA maps them to 127.0.0.2
    "127\u30020\u30020\u30022",  # ideographic full stops
]
# Forbidden networks: the port is the recorder's, but nothing there may be connected to at all.
UNSPECIFIED = "0.0.0.0"  # noqa: S104 (a URL host that must be refused, nothing binds it)
FORBIDDEN_HOSTS = [
    UNSPECIFIED, "0", "0x0", "[::]", "169.254.169.254", "[::ffff:169.254.169.254]", "[fd00:ec2::254]", "10.0.0.1",
    "172.16.0.1", "192.168.0.1", "100.64.0.1", "224.0.0.1", "255.255.255.255", "[fe80::1]", "[fc00::1]",
    "[fec0::1]", "[ff02::1]", "192.0.0.1", "198.18.0.1", "240.0.0.1",
]
# Refused at submit (400) or at fetch: both are fine, as long as nothing is reached.
SYNTAX_TRICKS = [
    "http://127.0.0.1@{rec}/x.jpg", "http://127.0.0.1:{aport}@{rec}/x.jpg", "http://u:p@{rec}/x.jpg",
    "http://127.0.0.1:{aport}\\@{rec}/x.jpg", "HTTP://{rec}/x.jpg", "hTtP://{rec}/x.jpg",
    "http://{rec}#@127.0.0.1:{aport}/x.jpg", "http://{rec}?@127.0.0.1:{aport}/x.jpg",
    "http://127.0.0.2%2e:{rport}/x.jpg", "http://127%2e0%2e0%2e2:{rport}/x.jpg", "http:///{rec}/x.jpg",
    "http:/{rec}/x.jpg", "http:{rec}/x.jpg", "//{rec}/x.jpg", "ftp://{rec}/x.jpg", "gopher://{rec}/_x",
    "file:///etc/passwd", "dict://{rec}/", "http://[::ffff:127.0.0.2%25eth0]:{rport}/x.jpg",
    " http://{rec}/x.jpg", "http://{rec}/x.jpg\t",
]
LOCALHOSTS = ["localhost", "LOCALHOST", "LocalHost", "localhost."]


def test_direct_payloads_are_refused_before_connecting(ssrf: SsrfEnv) -> None:
    rport, aport = ssrf.recorder.port, ssrf.allowed.port
    rec = f"127.0.0.2:{rport}"
    urls = {f"spelling-{i}": f"http://{host}:{rport}/x.jpg" for i, host in enumerate(RECORDER_SPELLINGS)}
    urls |= {f"forbidden-{i}": f"http://{host}:{rport}/x.jpg" for i, host in enumerate(FORBIDDEN_HOSTS)}
    urls |= {f"trick-{i}": t.format(rec=rec, rport=rport, aport=aport) for i, t in enumerate(SYNTAX_TRICKS)}
    job_id, rejected = _submit_filtering_invalid(ssrf, urls)
    job = ssrf.stack.wait_job(job_id, ssrf.token, timeout=60)
    assert job["state"] == "failed"
    assert len(job["images"]) + len(rejected) == len(urls)
    for item in job["images"]:
        _assert_refused(item)
    by_id = {item["externalId"]: item["reason"] for item in job["images"]}
    # The rule is named, and the refusal happens at the guard (no connection attempt at all).
    assert "loopback" in by_id["spelling-0"]
    assert "to allow it, add 127.0.0.2/32 (or its network) to PIXPORT_FETCH_ALLOW_CIDRS" in by_id["spelling-0"]
    assert "metadata" in by_id[f"forbidden-{FORBIDDEN_HOSTS.index('169.254.169.254')}"]
    assert "metadata" in by_id[f"forbidden-{FORBIDDEN_HOSTS.index('[fd00:ec2::254]')}"]
    assert "RFC 1918" in by_id[f"forbidden-{FORBIDDEN_HOSTS.index('10.0.0.1')}"]
    assert "carrier-grade NAT" in by_id[f"forbidden-{FORBIDDEN_HOSTS.index('100.64.0.1')}"]
    assert "6to4" in by_id[f"spelling-{RECORDER_SPELLINGS.index('[2002:7f00:2::]')}"]
    assert "NAT64" in by_id[f"spelling-{RECORDER_SPELLINGS.index('[64:ff9b::7f00:2]')}"]
    assert "IPv4-mapped" in by_id[f"spelling-{RECORDER_SPELLINGS.index('[::ffff:127.0.0.2]')}"]
    assert "unspecified" in by_id[f"forbidden-{FORBIDDEN_HOSTS.index(UNSPECIFIED)}"]
    _recorder_silent(ssrf)


def test_userinfo_is_a_400_naming_the_url(ssrf: SsrfEnv) -> None:
    url = f"http://127.0.0.1@127.0.0.2:{ssrf.recorder.port}/x.jpg"
    response = ssrf.stack.request("POST", "/api/v1/import/images", token=ssrf.token,
                                  body={"systemName": "ssrf", "images": [{"url": url, "id": "u", "fileName": "u"}]})
    assert response.status == 400
    fields = _violations(response.json())
    assert "images[0].url" in fields and "credentials" in fields["images[0].url"]
    _recorder_silent(ssrf)


def test_localhost_goes_only_where_it_resolves(ssrf: SsrfEnv) -> None:
    """`localhost` resolves (via /etc/hosts) to 127.0.0.1, which this stack allows; it must never reach .2."""
    if ssrf.twin is None:
        pytest.fail("port of the recorder is taken on 127.0.0.1")
    ssrf.twin.serve("/lh.jpg", b"nope", status=404)
    urls = {f"localhost-{i}": f"http://{host}:{ssrf.recorder.port}/lh.jpg" for i, host in enumerate(LOCALHOSTS)}
    job_id, rejected = _submit_filtering_invalid(ssrf, urls)
    assert not rejected
    job = ssrf.stack.wait_job(job_id, ssrf.token, timeout=60)
    for item in job["images"]:
        assert item["status"] == "failed" and item["reason"] == "HTTP 404 Not Found from origin", item
    assert len(ssrf.twin.requests_to("/lh.jpg")) == len(LOCALHOSTS)
    _recorder_silent(ssrf)


def _redirect(origin: Origin, path: str, location: str, status: int = 302) -> str:
    return origin.serve(path, b"", status=status, Location=location)


def test_redirects_into_the_recorder_are_refused(ssrf: SsrfEnv) -> None:
    allowed, rport = ssrf.allowed, ssrf.recorder.port
    targets = {
        "r301": (301, f"http://127.0.0.2:{rport}/x.jpg"),
        "r302": (302, f"http://127.0.0.2:{rport}/x.jpg"),
        "r303": (303, f"http://127.0.0.2:{rport}/x.jpg"),
        "r307": (307, f"http://127.0.0.2:{rport}/x.jpg"),
        "r308": (308, f"http://127.0.0.2:{rport}/x.jpg"),
        "decimal": (302, f"http://2130706434:{rport}/x.jpg"),
        "hex": (302, f"http://0x7f000002:{rport}/x.jpg"),
        "octal": (307, f"http://0177.0.0.2:{rport}/x.jpg"),
        "short": (308, f"http://127.2:{rport}/x.jpg"),
        "mapped": (302, f"http://[::ffff:127.0.0.2]:{rport}/x.jpg"),
        "scheme-relative": (302, f"//127.0.0.2:{rport}/x.jpg"),
        "metadata": (302, "http://169.254.169.254/latest/meta-data/"),
        "metadata6": (302, "http://[fd00:ec2::254]/latest/meta-data/"),
        "private": (302, "http://10.0.0.1/"),
        "nat64": (302, f"http://[64:ff9b::7f00:2]:{rport}/x.jpg"),
        "userinfo": (302, f"http://127.0.0.1:{allowed.port}@127.0.0.2:{rport}/x.jpg"),
        "file": (302, "file:///etc/passwd"),
        "gopher": (302, f"gopher://127.0.0.2:{rport}/_GET"),
        "uppercase": (302, f"HTTP://127.0.0.2:{rport}/x.jpg"),
        "trailing-dot": (302, f"http://127.0.0.2.:{rport}/x.jpg"),
    }
    urls = {name: _redirect(allowed, f"/redir/{name}", location, status)
            for name, (status, location) in targets.items()}
    # A five-hop chain inside the allowed origin whose last hop leaves for the recorder.
    for hop in range(1, 5):
        _redirect(allowed, f"/chain/{hop}", allowed.url(f"/chain/{hop + 1}"), 307 if hop % 2 else 302)
    _redirect(allowed, "/chain/5", f"http://127.0.0.2:{rport}/x.jpg", 308)
    urls["chain5"] = allowed.url("/chain/1")
    job_id, rejected = _submit_filtering_invalid(ssrf, urls)
    assert not rejected
    job = ssrf.stack.wait_job(job_id, ssrf.token, timeout=60)
    assert job["state"] == "failed"
    for item in job["images"]:
        _assert_refused(item)
        if item["externalId"] not in ("userinfo", "file", "gopher"):
            assert "reached through a redirect" in item["reason"], item
    assert len(allowed.requests_to("/chain/5")) == 1  # the chain was really followed up to its last hop
    _recorder_silent(ssrf)


def test_redirect_chain_longer_than_five_hops_stops(ssrf: SsrfEnv) -> None:
    allowed = ssrf.allowed
    for hop in range(1, 7):
        _redirect(allowed, f"/long/{hop}", allowed.url(f"/long/{hop + 1}"))
    allowed.serve("/long/7", images.jpeg(seed=3))
    job_id, _ = _submit_filtering_invalid(ssrf, {"long": allowed.url("/long/1")})
    [item] = ssrf.stack.wait_job(job_id, ssrf.token)["images"]
    assert item["status"] == "failed" and "too many redirects" in item["reason"], item
    assert allowed.requests_to("/long/7") == []


def test_allowed_origin_still_works(ssrf: SsrfEnv) -> None:
    """The guard is not simply refusing everything: the allowlisted origin, and redirects within it, work."""
    allowed = ssrf.allowed
    direct = allowed.serve("/ok.jpg", images.jpeg(200, 100, seed=21))
    via = _redirect(allowed, "/ok-redirect", allowed.url("/ok.jpg"), 307)
    numeric = f"http://2130706433:{allowed.port}/ok.jpg"  # 127.0.0.1 spelled as a number: allowed too
    job_id, _ = _submit_filtering_invalid(ssrf, {"direct": direct, "via": via, "numeric": numeric})
    job = ssrf.stack.wait_job(job_id, ssrf.token)
    assert [item["status"] for item in job["images"]] == ["success", "success", "success"], job
    assert job["images"][0]["image"]["width"] == 200


def test_oversize_responses_fail_with_the_limit(ssrf: SsrfEnv) -> None:
    allowed = ssrf.allowed
    big = allowed.serve("/big.jpg", images.jpeg(64, 64) + b"\0" * 3_000_000)
    bomb = allowed.serve("/gzip.jpg", gzip.compress(b"\0" * 6_000_000), Content_Encoding="gzip",
                         Content_Type="image/jpeg")
    chunked = ChunkedOrigin(3_200_000)
    try:
        stream = f"http://127.0.0.1:{chunked.port}/stream.jpg"
        job_id, _ = _submit_filtering_invalid(ssrf, {"big": big, "gzip": bomb, "chunked": stream})
        job = ssrf.stack.wait_job(job_id, ssrf.token, timeout=60)
    finally:
        chunked.close()
    for item in job["images"]:
        assert item["status"] == "failed", item
        assert item["reason"].startswith("response larger than"), item
        assert "2000000 bytes" in item["reason"] or "MB" in item["reason"] or "KB" in item["reason"], item


def _single_import(env: SsrfEnv, url: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A SharinPix single import (POST /api/v1/imports) of `url`, waited for; the 400 body if refused at once."""
    response = env.stack.request("POST", "/api/v1/imports", token=env.token,
                                 body={"album_id": "ssrf", "url": url, "headers": headers or {}})
    if response.status == 400:
        return {"status": "rejected", "body": response.json()}
    assert response.status == 200, (response.status, response.body)
    record_id = response.json()["id"]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = env.stack.request("GET", f"/api/v1/imports/{record_id}", token=env.token).json()
        if record.get("status") not in (None, "pending"):
            return dict(record)
        time.sleep(0.2)
    raise AssertionError(f"single import {record_id} still pending")


def test_single_imports_are_guarded_too(ssrf: SsrfEnv) -> None:
    rport = ssrf.recorder.port
    probe = ssrf.stack.request("POST", "/api/v1/imports", token=ssrf.token, raw=b"{}")
    if probe.status == 404:
        pytest.fail("no single-import endpoint in this build")
    to_recorder = _redirect(ssrf.allowed, "/single-redirect", f"http://127.0.0.2:{rport}/x.jpg", 302)
    for url in [f"http://127.0.0.2:{rport}/x.jpg", f"http://2130706434:{rport}/x.jpg", f"http://127.2:{rport}/x.jpg",
                f"http://[::ffff:127.0.0.2]:{rport}/x.jpg", "http://169.254.169.254/latest/meta-data/",
                f"http://127.0.0.1@127.0.0.2:{rport}/x.jpg", to_recorder]:
        record = _single_import(ssrf, url, {"Authorization": "Bearer caller-secret"})
        if record["status"] == "rejected":
            assert "url" in _violations(record["body"]), record
            continue
        assert record["status"] == "failed", record
        assert record["error"].startswith("refused") and "caller-secret" not in json.dumps(record), record
    _recorder_silent(ssrf)


def test_caller_headers_never_follow_a_redirect_to_another_origin(ssrf: SsrfEnv) -> None:
    probe = ssrf.stack.request("POST", "/api/v1/imports", token=ssrf.token, raw=b"{}")
    if probe.status == 404:
        pytest.fail("no single-import endpoint in this build")
    other = Origin("127.0.0.1")  # allowed, but another origin (port) than the one the caller named
    try:
        target = other.serve("/elsewhere.jpg", images.jpeg(seed=51))
        start = _redirect(ssrf.allowed, "/to-elsewhere", target, 307)
        secrets = {"Authorization": "Bearer caller-secret", "X-Api-Key": "caller-key", "Cookie": "session=caller"}
        record = _single_import(ssrf, start, secrets)
        assert record["status"] == "done", record
        [first] = ssrf.allowed.requests_to("/to-elsewhere")
        assert first.headers.get("Authorization") == "Bearer caller-secret"  # meant for this origin: sent
        [second] = other.requests_to("/elsewhere.jpg")
        leaked = {k: v for k, v in second.headers.items() if "caller" in v}
        assert leaked == {}, leaked
        assert "caller" not in json.dumps(record)  # echoed params are redacted
    finally:
        other.close()


def test_header_injection_in_single_imports_is_a_400(ssrf: SsrfEnv) -> None:
    probe = ssrf.stack.request("POST", "/api/v1/imports", token=ssrf.token, raw=b"{}")
    if probe.status == 404:
        pytest.fail("no single-import endpoint in this build")
    url = ssrf.allowed.serve("/inject.jpg", images.jpeg(seed=52))
    for headers in ({"Host": "127.0.0.2"}, {"X-A": "a\r\nHost: 127.0.0.2"}, {"X-B\r\nInjected": "1"},
                    {"Transfer-Encoding": "chunked"}, {"Content-Length": "0"}):
        record = _single_import(ssrf, url, headers)
        assert record["status"] == "rejected", (headers, record)
        assert any(field.startswith("headers") for field in _violations(record["body"])), record
    assert ssrf.allowed.requests_to("/inject.jpg") == []
    _recorder_silent(ssrf)


def _connected_org(env: SsrfEnv, name: str, *connector: str) -> str:
    """A new organisation with a connector configured through the CLI; returns a token for it."""
    client = env.stack.create_client(name)
    env.stack.cli("connector", *connector, "--org", name)
    return env.stack.token(client["client_id"])


def _wait_single(env: SsrfEnv, token: str, record_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        record = env.stack.request("GET", f"/api/v1/imports/{record_id}", token=token).json()
        if record.get("status") not in (None, "pending"):
            return dict(record)
        time.sleep(0.2)
    raise AssertionError(f"single import {record_id} still pending")


def test_salesforce_connector_cannot_reach_forbidden_instances(ssrf: SsrfEnv) -> None:
    """The connector's instance URL is an operator setting, but its fetches go through the same guard."""
    rport = ssrf.recorder.port
    if ssrf.stack.request("POST", "/api/v1/imports", token=ssrf.token, raw=b"{}").status == 404:
        pytest.fail("no single-import endpoint in this build")
    # The token endpoint of an allowed instance redirects into the recorder: a POST is never redirected.
    ssrf.allowed.serve("/sf/services/data/v59.0/sobjects/Attachment/00P000000000002/Body", b"expired", status=401)
    _redirect(ssrf.allowed, "/sf/services/oauth2/token", f"http://127.0.0.2:{rport}/token", 307)
    common = ["--client-id", "id", "--client-secret", "sf-client-secret-value", "--refresh-token", "sf-refresh-value"]
    cases = [
        ("ssrf-sf-direct", f"http://2130706434:{rport}", ["--access-token", "tok"], "00P000000000001", "refused"),
        ("ssrf-sf-refresh", f"http://127.0.0.2:{rport}", [], "00P000000000001", "refused"),
        ("ssrf-sf-redirect", ssrf.allowed.url("/sf"), ["--access-token", "tok"], "00P000000000002", "307"),
    ]
    for org, instance, extra, attachment, expected in cases:
        token = _connected_org(ssrf, org, "salesforce", "--instance-url", instance, *common, *extra)
        response = ssrf.stack.request("POST", "/api/v1/imports", token=token, body={
            "album_id": "sf", "import_type": "salesforce", "attachment_id": attachment})
        assert response.status == 200, response.body
        record = _wait_single(ssrf, token, response.json()["id"])
        assert record["status"] == "failed" and expected in record["error"], (org, record)
        assert "sf-client-secret-value" not in json.dumps(record) and "sf-refresh-value" not in json.dumps(record)
    _recorder_silent(ssrf)


def test_direct_upload_urls_are_guarded(ssrf: SsrfEnv) -> None:
    """A correctly signed Cloudinary upload result whose secure_url points somewhere forbidden."""
    rport = ssrf.recorder.port
    token = _connected_org(ssrf, "ssrf-cloudinary", "cloudinary", "--api-secret", "cloud-secret")
    probe = ssrf.stack.request("GET", "/api/v1/albums/direct/images", token=token)
    if probe.status == 404 and "resolve" in probe.body.decode():
        pytest.fail("no album endpoint in this build")
    # Each URL carries its upload's /v{version}/{public_id} path, so it passes the signature check and
    # reaches the egress guard.
    hosts = [f"http://127.0.0.2:{rport}", f"http://0x7f000002:{rport}", "http://169.254.169.254",
             f"http://[::ffff:127.0.0.2]:{rport}", None]
    urls = []
    for index, host in enumerate(hosts):
        public_id, version = f"hostile{index}", str(1000 + index)
        path = f"/v{version}/{public_id}.jpg"
        url = f"{host}{path}" if host else _redirect(ssrf.allowed, path, f"http://127.0.0.2:{rport}/x.jpg", 302)
        urls.append(url)
        signature = hashlib.sha1(f"public_id={public_id}&version={version}cloud-secret".encode()).hexdigest()  # noqa: S324
        response = ssrf.stack.request("POST", "/api/v1/albums/direct/images", token=token, body={"cloudinary": {
            "public_id": public_id, "version": version, "signature": signature, "secure_url": url, "format": "jpg"}})
        assert response.status in (200, 400), response.body
    deadline = time.monotonic() + 30
    while True:
        listed = ssrf.stack.request("GET", "/api/v1/albums/direct/images", token=token).json()["images"]
        errors = [image.get("processing_error") for image in listed]
        if all(errors) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert len(listed) == len(urls)
    for image in listed:
        assert image["processed"] is False and str(image["processing_error"]).startswith("refused"), image
    _recorder_silent(ssrf)


WEBHOOK_PAYLOADS = [
    "http://127.0.0.2:{rport}/hook", "http://2130706434:{rport}/hook", "http://0x7f000002:{rport}/hook",
    "http://0177.0.0.2:{rport}/hook", "http://127.2:{rport}/hook", "http://[::ffff:127.0.0.2]:{rport}/hook",
    "http://[::1]:{rport}/hook", "http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/hook",
    "http://10.0.0.1/hook", "http://[64:ff9b::7f00:2]:{rport}/hook", "http://" + UNSPECIFIED + ":{rport}/hook",
]


def _deliveries(env: SsrfEnv, job_id: str) -> list[dict[str, Any]]:
    response = env.stack.request("GET", f"/api/v1/webhooks/deliveries?jobId={job_id}", token=env.token)
    assert response.status == 200, response.body
    return list(response.json()["webhookDeliveries"])


def test_webhooks_to_forbidden_addresses_are_refused(ssrf: SsrfEnv) -> None:
    rport = ssrf.recorder.port
    image = ssrf.allowed.serve("/hook-image.jpg", images.jpeg(seed=31))
    # A webhook is never redirected: a 3xx from an allowed receiver is an answer, not a hop.
    hop = _redirect(ssrf.allowed, "/hook-redirect", f"http://127.0.0.2:{rport}/hook", 307)
    refused: list[str] = []
    for index, template in enumerate([*WEBHOOK_PAYLOADS, "http://127.0.0.1@127.0.0.2:{rport}/hook"]):
        webhook = template.format(rport=rport)
        response = ssrf.stack.request("POST", "/api/v1/import/images", token=ssrf.token, body={
            "systemName": "ssrf-hooks", "webhook": webhook,
            "images": [{"url": image, "id": f"h{index}", "fileName": "h"}]})
        if response.status == 400:
            assert "webhook" in _violations(response.json()), response.body
            continue
        assert response.status == 200, response.body
        refused.append(str(response.json()["id"]))
    redirected = ssrf.stack.import_batch(ssrf.token, [{"url": image, "id": "hr", "fileName": "h"}],
                                         system="ssrf-hooks", webhook=hop)
    for job_id in refused:
        ssrf.stack.wait_job(job_id, ssrf.token)
    deadline = time.monotonic() + 20
    pending = set(refused)
    while pending and time.monotonic() < deadline:
        for job_id in list(pending):
            deliveries = _deliveries(ssrf, job_id)
            if deliveries and str(deliveries[0]["state"]).endswith("FAILED"):  # FAILED or STATE_FAILED
                error = deliveries[0]["lastError"]
                assert error.startswith("refused"), deliveries
                pending.discard(job_id)
        time.sleep(0.2)
    assert not pending, "deliveries not refused in time"
    ssrf.stack.wait_job(redirected, ssrf.token)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not ssrf.allowed.requests_to("/hook-redirect"):
        time.sleep(0.1)
    assert ssrf.allowed.requests_to("/hook-redirect"), "the allowed receiver was never called"
    time.sleep(1.0)  # room for a (wrongly) followed redirect to arrive
    _recorder_silent(ssrf)


def test_recorder_never_reached(ssrf: SsrfEnv) -> None:
    """Last in the module: after every payload above, the recorder is still untouched and the stack healthy."""
    _recorder_silent(ssrf)
    assert ssrf.stack.request("GET", "/ready").status == 200
    with socket.create_connection(("127.0.0.2", ssrf.recorder.port), timeout=5):
        pass  # the recorder was listening the whole time: silence is not an accident
    assert len(ssrf.recorder.requests) == 0
