"""Structured logs: JSON lines (PIXPORT_LOG_FORMAT=json) or one readable line per record (the
default on a terminal), each carrying the request id of the request it belongs to and the
context a module passed in `extra` (job_id, organization_id, item, timings).

Nothing secret may reach a log line: a redaction filter strips URL query strings and
credential-looking values (bearer tokens, JWTs, `pxs_`/`whsec_` secrets) from every message."""

from __future__ import annotations

import contextvars
import json
import logging
import os
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# The request being served, set by the gRPC interceptor from Envoy's x-request-id.
request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("pixport_request_id", default=None)

# `extra` keys rendered on every line when present, in this order.
CONTEXT_FIELDS = (
    "request_id", "method", "code", "job_id", "organization_id", "item", "attempt",
    "duration_ms", "fetch_ms", "pixels_ms", "store_ms", "outcome",
)
_RESERVED = frozenset(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}

_QUERY = re.compile(r"(\b[a-z][a-z0-9+.-]*://[^\s?#\"']*)\?[^\s#\"']*", re.IGNORECASE)
_SECRETS = re.compile(
    r"(?i)\b(bearer|token)(\s+token=)?\s*[\"']?[A-Za-z0-9._~+/=-]{8,}[\"']?"  # Authorization values
    r"|\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"  # JWTs
    r"|\b(pxs|whsec)_[A-Za-z0-9_+/=-]+"  # pixport client and webhook secrets
)
_SENSITIVE_KEY = re.compile(r"(?i)auth|token|secret|password|cookie|session|signature|key|header")


def redact(text: str) -> str:
    """`text` without URL query strings and credential-looking values."""
    text = _QUERY.sub(r"\1?[FILTERED]", text)
    return _SECRETS.sub("[FILTERED]", text)


class RedactingFilter(logging.Filter):
    """Renders the message once, redacted, so neither formatter can leak an argument."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not lose the record
            message = str(record.msg)
        record.msg, record.args = redact(message), None
        for key, value in list(record.__dict__.items()):
            if key in _RESERVED:
                continue
            if _SENSITIVE_KEY.search(key) and key != "request_id":
                record.__dict__[key] = "[FILTERED]"
            elif isinstance(value, str):
                record.__dict__[key] = redact(value)
        if getattr(record, "request_id", None) is None:
            record.request_id = request_id.get()
        return True


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    found = {key: value for key, value in record.__dict__.items()
             if key not in _RESERVED and not key.startswith("_") and value is not None}
    ordered = {key: found.pop(key) for key in CONTEXT_FIELDS if key in found}
    return {**ordered, **found}


class JsonFormatter(logging.Formatter):
    def __init__(self, process_name: str) -> None:
        super().__init__()
        self._process_name = process_name

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "process": self._process_name,
            "pid": record.process,
            "logger": record.name,
            "message": record.getMessage(),
            **_extras(record),
        }
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(line, default=str, ensure_ascii=False)


class HumanFormatter(logging.Formatter):
    def __init__(self, process_name: str) -> None:
        super().__init__(f"%(asctime)s {process_name}[%(process)d] %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        extras = _extras(record)
        if extras:
            context = " ".join(f"{key}={value}" for key, value in extras.items())
            head, newline, tail = line.partition("\n")  # keep a traceback below the context
            line = f"{head} [{context}]{newline}{tail}"
        return line


def configure(process_name: str, *, stream: TextIO | None = None, log_format: str | None = None) -> None:
    """Install the formatter and the redaction filter on the root logger. PIXPORT_LOG_FORMAT:
    `json`, `text`, or unset (text on a terminal, JSON otherwise)."""
    stream = stream or sys.stderr
    chosen = (log_format or os.environ.get("PIXPORT_LOG_FORMAT", "")).strip().lower()
    if chosen not in ("json", "text"):
        chosen = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingFilter())
    handler.setFormatter(JsonFormatter(process_name) if chosen == "json" else HumanFormatter(process_name))
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(os.environ.get("PIXPORT_LOG_LEVEL", "INFO").upper())
