"""The SharinPix dialect (seeds 000, 001, 003) through Envoy: the seeds' own requests, form-encoded
with bracket keys and a Token header, adapted to local URLs."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
from pixport.runtime.postgres import find_bindir
from support import images
from support.origin import Origin
from support.salesforce import FakeSalesforce
from support.stack import Response, Stack

SEED_HEADERS = {
    "cache-control": "no-cache, no-store",
    "pragma": "no-cache",
    "expires": "Fri, 01 Jan 1990 00:00:00 GMT",
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "x-xss-protection": "1; mode=block",
    "x-download-options": "noopen",
    "x-permitted-cross-domain-policies": "none",
    "referrer-policy": "origin-when-cross-origin, strict-origin-when-cross-origin",
    "content-type": "application/json; charset=utf-8",
}
IMPORT_RECORD_KEYS = {"id", "organization_id", "image_id", "import_type", "album_id", "params", "created_at",
                      "updated_at"}
# The seed's own token text, sent as a header the origin must receive.
SEED_ORIGIN_AUTH = 'Token token="eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJleHAiOjE1NTQ3NTk1MzcsImlhdCI6MTU1NDc0NTEzNywiaXNzIjoiMGZjMmFhZTctMzZlNi00NzgxLWIwZDktOTc3OGQxMWI0MGRlIiwiYWJpbGl0aWVzIjp7ImltcG9ydGVkX2FsYnVtIjp7IkFjY2VzcyI6eyJpbWFnZV91cGxvYWQiOnRydWV9fX19.EEPhtY0Ectmul56PGVJfJjEOuSlRtl5qZVkyBZCmunA"'  # noqa: E501
ALBUM_IMAGE_KEYS = {
    "id", "public_id", "infos", "exifs", "gps", "gps_ip", "gps_exifs", "gps_html", "created_at", "updated_at",
    "taken_at", "width", "height", "rotation", "crop_x", "crop_y", "crop_w", "crop_h", "metadatas", "original_url",
    "original_width", "original_height", "external_urls", "filename", "format", "title", "description", "page",
    "group_id", "color", "size", "processed", "processing_error", "album_id", "thumbnails",
}


def form(stack: Stack, path: str, body: str, token: str) -> Response:
    return stack.request("POST", path, raw=body.encode(), headers={
        "Authorization": f'Token token="{token}"', "Content-Type": "application/x-www-form-urlencoded",
    })


def assert_seed_headers(response: Response, token: str) -> None:
    for key, value in SEED_HEADERS.items():
        assert response.headers.get(key) == value, (key, response.headers)
    assert response.headers["x-token"] == token
    assert response.headers["x-request-id"]
    assert float(response.headers["x-runtime"]) >= 0
    assert not any(key.startswith("grpc-") for key in response.headers)


def wait_import(stack: Stack, import_id: str, token: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        record = stack.request("GET", f"/api/v1/imports/{import_id}", headers={
            "Authorization": f'Token token="{token}"'}).json()
        if record["status"] != "pending":
            return record  # type: ignore[no-any-return]
        time.sleep(0.2)
    raise AssertionError("import did not finish")


@pytest.fixture
def album_org(stack: Stack, unique: str) -> dict[str, str]:
    client = stack.create_client(f"sp-{unique}")
    minted = stack.cli("token", "--client", client["client_id"], "--album", "imported_album")
    client["album_token"] = minted.stdout.strip()
    return client


def test_seed_000_url_import_with_headers(stack: Stack, origin: Origin, album_org: dict[str, str], unique: str) -> None:
    url = origin.serve(f"/{unique}/100/100/", images.jpeg(100, 100, seed=40))
    body = ("album_id=imported_album&filename=image123_asdasd.JpG&metadata[attachmentId]=00P24000003vSXsEAM"
            f"&url={urllib.parse.quote(url, safe='')}"
            f"&headers[Authorization]={urllib.parse.quote_plus(SEED_ORIGIN_AUTH)}")
    response = form(stack, "/api/v1/imports", body, album_org["album_token"])
    assert response.status == 200, response.body
    assert_seed_headers(response, album_org["album_token"])
    record = response.json()
    assert set(record) == IMPORT_RECORD_KEYS
    assert record["image_id"] is None and record["import_type"] is None
    assert record["album_id"] == "imported_album" and record["organization_id"] == album_org["organization_id"]
    assert record["params"] == {
        "album_id": "imported_album", "filename": "image123_asdasd.JpG",
        "metadata": {"attachmentId": "00P24000003vSXsEAM"}, "url": url,
        "headers": {"Authorization": "[FILTERED]"}, "controller": "api/v1/imports", "action": "create",
    }
    assert SEED_ORIGIN_AUTH not in response.body.decode()
    assert record["created_at"] == record["updated_at"] and record["created_at"].endswith("+00:00")

    done = wait_import(stack, record["id"], album_org["album_token"])
    assert done["status"] == "done" and isinstance(done["image_id"], str)
    # Final: the caller's headers are gone from the record, its params echo included.
    assert done["params"] == {key: value for key, value in record["params"].items() if key != "headers"}
    [received] = origin.requests_to(f"/{unique}/100/100/")
    assert received.headers["Authorization"] == SEED_ORIGIN_AUTH
    album = stack.request("GET", "/api/v1/albums/imported_album/images",
                          headers={"Authorization": f'Token token="{album_org["album_token"]}"'}).json()
    [image] = [i for i in album["images"] if i["id"] == done["image_id"]]
    assert image["processed"] is True and (image["width"], image["height"]) == (100, 100)
    assert image["filename"] == "image123_asdasd.JpG" and image["metadatas"] == {"attachmentId": "00P24000003vSXsEAM"}

    other = stack.token(stack.create_client(f"sp-other-{unique}")["client_id"])
    for path in (f"/api/v1/imports/{record['id']}", f"/api/v1/albums/imported_album/images/{done['image_id']}"):
        assert stack.request("GET", path, token=other).status == 404, path
    assert stack.request("GET", "/api/v1/albums/imported_album/images", token=other).json()["images"] == []


def test_json_body_and_redirects(stack: Stack, origin: Origin, album_org: dict[str, str], unique: str) -> None:
    other_host = Origin("127.0.0.3")
    try:
        final = other_host.serve(f"/{unique}/final.jpg", images.jpeg(64, 48, seed=41))
        hop2 = origin.redirect(f"/{unique}/hop2", final, 307)
        hop1 = origin.redirect(f"/{unique}/hop1", hop2, 302)
        authorization = {"Authorization": f'Token token="{album_org["album_token"]}"'}
        response = stack.request("POST", "/api/v1/imports", headers=authorization,
                                 body={"album_id": "imported_album", "url": hop1,
                                       "headers": {"Authorization": "Bearer origin-secret", "Accept": "image/*"}})
        assert response.status == 200, response.body
        assert response.json()["params"]["headers"] == {"Authorization": "[FILTERED]", "Accept": "image/*"}
        done = wait_import(stack, response.json()["id"], album_org["album_token"])
        assert done["status"] == "done", done
        assert origin.requests_to(f"/{unique}/hop1")[0].headers["Authorization"] == "Bearer origin-secret"
        assert origin.requests_to(f"/{unique}/hop2")[0].headers["Authorization"] == "Bearer origin-secret"
        [at_other_host] = other_host.requests_to(f"/{unique}/final.jpg")
        assert "Authorization" not in at_other_host.headers  # dropped when the redirect left the host
    finally:
        other_host.close()


def test_album_not_in_abilities_is_403(stack: Stack, origin: Origin, album_org: dict[str, str], unique: str) -> None:
    url = origin.serve(f"/{unique}/a.jpg", images.jpeg(seed=42))
    body = f"album_id=someone_elses_album&url={urllib.parse.quote(url, safe='')}"
    response = form(stack, "/api/v1/imports", body, album_org["album_token"])
    assert response.status == 403 and "someone_elses_album" in response.json()["message"]


@pytest.mark.parametrize("body", ["a[b=1", "x=1&x[y]=2", "x[y]=2&x=1", "list[][name]=1", "[]=1"])
def test_malformed_forms_are_400_naming_the_key(stack: Stack, album_org: dict[str, str], body: str) -> None:
    response = form(stack, "/api/v1/imports", body, album_org["album_token"])
    assert response.status == 400, response.body
    assert "field" in response.json()["message"]


def test_validation_names_fields(stack: Stack, album_org: dict[str, str]) -> None:
    for body, field in (("album_id=imported_album", "url"), ("album_id=imported_album&url=ftp%3A%2F%2Fx", "url"),
                        ("album_id=imported_album&import_type=dropbox", "import_type"),
                        ("album_id=imported_album&import_type=salesforce&attachment_id=x", "attachment_id")):
        response = form(stack, "/api/v1/imports", body, album_org["album_token"])
        assert response.status == 400, (body, response.body)
        violations = next(d for d in response.json()["details"] if d["@type"].endswith("BadRequest"))
        assert field in {v["field"] for v in violations["fieldViolations"]}


@pytest.fixture
def salesforce() -> Iterator[FakeSalesforce]:
    fake = FakeSalesforce("consumer-key", "consumer-secret", "refresh-me")
    yield fake
    fake.close()


def test_seed_001_salesforce_attachment(stack: Stack, salesforce: FakeSalesforce, unique: str) -> None:
    org = f"sf-{unique}"
    user = json.loads(stack.cli("user", "create", "--org", org).stdout)
    token = stack.cli("token", "--user", user["user_id"]).stdout.strip()
    stack.cli("connector", "salesforce", "--org", org, "--instance-url", salesforce.url, "--client-id", "consumer-key",
              "--client-secret", "consumer-secret", "--refresh-token", "refresh-me", "--access-token", "stale")
    stored = subprocess.run(
        [str(find_bindir() / "psql"), "-h", str(stack.data_dir / "postgres" / "run"), "-U", "pixport",
         "-d", "pixport", "-tAc", "SELECT config::text FROM connectors"], capture_output=True, text=True, check=True,
    ).stdout
    assert "consumer-key" in stored and "consumer-secret" not in stored and "refresh-me" not in stored
    salesforce.files["00P4I00000zyw3eUAA"] = images.jpeg(120, 90, seed=43)
    salesforce.files["0684I000001AbCdQAK"] = images.png(30, 20)
    body = ("album_id=5005800000HEXCtAAP&filename=Image123.jpg&import_type=salesforce"
            "&metadatas[attachmentId]=00P4I00000zyw3eUAA&attachment_id=00P4I00000zyw3eUAA")
    response = form(stack, "/api/v1/imports", body, token)
    assert response.status == 200, response.body
    assert_seed_headers(response, token)
    record = response.json()
    assert set(record) == IMPORT_RECORD_KEYS and record["import_type"] == "salesforce"
    assert record["params"] == {
        "album_id": "5005800000HEXCtAAP", "filename": "Image123.jpg", "import_type": "salesforce",
        "metadatas": {"attachmentId": "00P4I00000zyw3eUAA"}, "attachment_id": "00P4I00000zyw3eUAA",
        "controller": "api/v1/imports", "action": "create",
    }
    done = wait_import(stack, record["id"], token)
    assert done["status"] == "done", done
    assert salesforce.refreshes == 1  # the stale token got a 401, then one refresh
    assert salesforce.downloads[0][1] == "Bearer stale" and salesforce.downloads[-1][1] == "Bearer access-1"
    assert salesforce.downloads[-1][0].endswith("/sobjects/Attachment/00P4I00000zyw3eUAA/Body")
    image = stack.request("GET", f"/api/v1/albums/5005800000HEXCtAAP/images/{done['image_id']}",
                          headers={"Authorization": f'Token token="{token}"'}).json()
    assert (image["width"], image["height"]) == (120, 90)
    assert image["metadatas"] == {"attachmentId": "00P4I00000zyw3eUAA"}

    files = form(stack, "/api/v1/imports", "album_id=5005800000HEXCtAAP&import_type=salesforce"
                 "&attachment_id=0684I000001AbCdQAK", token)
    assert wait_import(stack, files.json()["id"], token)["status"] == "done"
    assert salesforce.downloads[-1][0].endswith("/sobjects/ContentVersion/0684I000001AbCdQAK/VersionData")
    assert salesforce.refreshes == 1  # the refreshed token was kept

    missing = form(stack, "/api/v1/imports", "album_id=a&import_type=salesforce&attachment_id=00P000000000000AAA",
                   token)
    failed = wait_import(stack, missing.json()["id"], token)
    assert failed["status"] == "failed" and "no attachment" in failed["error"]


def _seed_003_body(secure_url: str, signature: str) -> str:
    return (
        "cloudinary[public_id]=c6y8knpw2ywwwfc6cykj&cloudinary[version]=1484586860"
        f"&cloudinary[signature]={signature}&cloudinary[width]=295&cloudinary[height]=171&cloudinary[format]=jpg"
        "&cloudinary[resource_type]=image&cloudinary[created_at]=2017-01-16T17%3A14%3A20Z"
        "&cloudinary[tags][]=a0Ab000000u975pEAA&cloudinary[bytes]=10668&cloudinary[type]=authenticated"
        "&cloudinary[etag]=acf8af3e54c78cbf24a53a93c93bab43"
        f"&cloudinary[url]={urllib.parse.quote(secure_url, safe='')}"
        f"&cloudinary[secure_url]={urllib.parse.quote(secure_url, safe='')}"
        "&cloudinary[image_metadata][JFIFVersion]=1.01&cloudinary[image_metadata][ResolutionUnit]=None"
        "&cloudinary[image_metadata][XResolution]=1&cloudinary[image_metadata][YResolution]=1"
        "&cloudinary[image_metadata][Colorspace]=RGB"
        "&cloudinary[image_metadata][DateTimeOriginal]=2018%3A01%3A01+08%3A00%3A00"
        "&cloudinary[colors][]=%23EBF1F9&cloudinary[colors][]=13.2&cloudinary[colors][]=%23D9E5F5"
        "&cloudinary[colors][]=8.8&cloudinary[predominant][google][]=blue&cloudinary[predominant][google][]=51.5"
        "&cloudinary[phash]=d8c926d5c28b6c67&cloudinary[coordinates][faces][]="
        "&cloudinary[illustration_score]=0.30062443017959595&cloudinary[semi_transparent]=false"
        "&cloudinary[grayscale]=false&cloudinary[original_filename]=download&metadatas[meta]=data"
    )


def test_seed_003_direct_upload(stack: Stack, origin: Origin, unique: str) -> None:
    org = f"cl-{unique}"
    user = json.loads(stack.cli("user", "create", "--org", org).stdout)
    token = stack.cli("token", "--user", user["user_id"], "--album", "00100000123BB146").stdout.strip()
    stack.cli("connector", "cloudinary", "--org", org, "--api-secret", "cloudinary-api-secret")
    secure_url = origin.serve(f"/{unique}/v1484586860/c6y8knpw2ywwwfc6cykj.jpg", images.jpeg(295, 171, seed=44),
                              delay=0.5)
    # Cloudinary's scheme is SHA-1; the test computes what a genuine upload result carries.
    signed = b"public_id=c6y8knpw2ywwwfc6cykj&version=1484586860cloudinary-api-secret"
    signature = hashlib.sha1(signed).hexdigest()  # noqa: S324

    seed_signature = "8ae13af1294831022d2af7fd71f1e9ab063c673c"  # signed with someone else's secret
    forged = form(stack, "/api/v1/albums/00100000123BB146/images/", _seed_003_body(secure_url, seed_signature), token)
    assert forged.status == 400 and "cloudinary[signature]" in forged.body.decode()

    elsewhere = origin.serve(f"/{unique}/elsewhere.jpg", images.jpeg(10, 10, seed=45))
    replayed = form(stack, "/api/v1/albums/00100000123BB146/images/", _seed_003_body(elsewhere, signature), token)
    assert replayed.status == 400 and "cloudinary[secure_url]" in replayed.body.decode()  # genuine result, other URL

    response = form(stack, "/api/v1/albums/00100000123BB146/images/", _seed_003_body(secure_url, signature), token)
    assert response.status == 200, response.body
    assert_seed_headers(response, token)
    image = response.json()
    assert set(image) == ALBUM_IMAGE_KEYS
    assert image["id"] == image["public_id"] and image["album_id"] == "00100000123BB146"
    assert image["processed"] is False and image["processing_error"] is None
    assert image["infos"]["public_id"] == "c6y8knpw2ywwwfc6cykj" and image["infos"]["width"] == "295"
    assert image["infos"]["tags"] == ["a0Ab000000u975pEAA"] and image["infos"]["coordinates"] == {"faces": [""]}
    assert image["infos"]["colors"][:2] == ["#EBF1F9", "13.2"]
    assert image["exifs"]["DateTimeOriginal"] == "2018:01:01 08:00:00"
    assert image["taken_at"] == "2018-01-01T08:00:00.000+00:00"
    assert (image["width"], image["height"], image["size"], image["format"]) == (295, 171, "10668", "jpg")
    assert image["metadatas"] == {"meta": "data"} and image["filename"] == "download"
    assert image["gps"] is None and image["title"] is None and image["group_id"] is None and image["page"] == 1
    assert isinstance(image["crop_x"], int | float) and image["rotation"] == 0
    assert set(image["thumbnails"]) == {"original", "full_no_sharinpix", "full", "large", "mini"}
    assert set(image["external_urls"]) == {"fill100", "fit2000", "mini", "large", "full"}

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        current = stack.request("GET", f"/api/v1/albums/00100000123BB146/images/{image['id']}",
                                headers={"Authorization": f'Token token="{token}"'}).json()
        if current["processed"]:
            break
        time.sleep(0.2)
    assert current["processed"] is True and current["processing_error"] is None
    assert (current["width"], current["height"]) == (295, 171)
    assert current["color"].startswith("#") and len(current["color"]) == 7
    mini = stack.request("GET", current["thumbnails"]["mini"].split(str(stack.http_port), 1)[1])
    assert mini.status == 200 and mini.headers["content-type"] == "image/jpeg"

    wrong_album = form(stack, "/api/v1/albums/another_album/images", _seed_003_body(secure_url, signature), token)
    assert wrong_album.status == 403
