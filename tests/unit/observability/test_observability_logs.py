from __future__ import annotations

import io
import json
import logging

import pytest
from pixport.observability import logs


@pytest.fixture
def captured() -> io.StringIO:
    stream = io.StringIO()
    logs.configure("test", stream=stream, log_format="json")
    return stream


def _lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_request_id_and_extras(captured: io.StringIO) -> None:
    token = logs.request_id.set("req-123")
    try:
        logging.getLogger("pixport.test").info("item %s done", 7, extra={"job_id": "j1", "organization_id": "o1",
                                                                        "item": 7, "fetch_ms": 12.5})
    finally:
        logs.request_id.reset(token)
    [line] = _lines(captured)
    assert line["message"] == "item 7 done" and line["level"] == "info" and line["process"] == "test"
    assert (line["request_id"], line["job_id"], line["organization_id"], line["item"], line["fetch_ms"]) == \
        ("req-123", "j1", "o1", 7, 12.5)


def test_secrets_and_query_strings_never_reach_a_line(captured: io.StringIO) -> None:
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJhYmMifQ.c2lnbmF0dXJlLXZhbHVl"
    log = logging.getLogger("pixport.test")
    log.warning("fetching %s with %s", "https://example.com/a.jpg?X-Amz-Signature=abc&token=zzz",
                f"Authorization: Bearer {jwt}")
    log.info("secret pxs_abcdefgh12345 and whsec_Zm9vYmFy", extra={"api_token": "t0ps3cret"})
    text = captured.getvalue()
    for leaked in ("X-Amz-Signature", "zzz", jwt, "pxs_abcdefgh12345", "whsec_Zm9vYmFy", "t0ps3cret"):
        assert leaked not in text
    first, second = _lines(captured)
    assert first["message"] == "fetching https://example.com/a.jpg?[FILTERED] with Authorization: [FILTERED]"
    assert second["api_token"] == "[FILTERED]"


def test_text_format_is_one_readable_line_with_context() -> None:
    stream = io.StringIO()
    logs.configure("worker", stream=stream, log_format="text")
    logging.getLogger("pixport.test").info("done", extra={"job_id": "j9"})
    line = stream.getvalue().strip()
    assert " worker[" in line and line.endswith("pixport.test: done [job_id=j9]")
