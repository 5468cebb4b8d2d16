"""Structured logs: one JSON object per line with the Sync, revision and reason on every line.

Lines about no Sync (start-up, leader election) carry the keys with empty values, so a log query
on `sync` or `reason` never has to guess whether the key exists. `--log-format text` prints the
same fields for a person at a terminal.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
import time

FIELDS = ("sync", "revision", "reason")
current_sync: contextvars.ContextVar[str] = contextvars.ContextVar("current_sync", default="")
"""The Sync a worker thread is reconciling: lines logged by the engine underneath carry it too."""


class _Context(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "sync", ""):
            record.sync = current_sync.get()
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
            **{key: str(getattr(record, key, "") or "") for key in FIELDS},
        }
        for key in ("duration", "result", "counts", "error"):
            value = getattr(record, key, None)
            if value is not None:
                line[key] = value
        if record.exc_info and record.exc_info[0] is not None:
            line["error"] = self.formatException(record.exc_info).splitlines()[-1]
        return json.dumps(line, separators=(",", ":"), default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{key}={getattr(record, key)}" for key in FIELDS if getattr(record, key, ""))
        stamp = time.strftime("%H:%M:%S", time.localtime(record.created))
        return f"{stamp} {record.levelname:<7} {record.getMessage()}{'  ' + extra if extra else ''}"


def setup(fmt: str, level: int = logging.INFO) -> None:
    """Route the controller's (and the engine's) loggers to stderr in `fmt` (json or text)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(_Context())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
