"""Structured JSON logs: ids, routes, statuses, timings, versions; never bodies or health data."""

import json
import logging
import sys
import time

# Only these attributes of a record are written; anything else passed in `extra` is dropped,
# so a careless call cannot leak a request body into the logs.
FIELDS = (
    "event", "request_id", "method", "route", "status", "latency_ms", "model_version",
    "key", "items", "reason",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)),
            "level": record.levelname.lower(),
            "msg": record.getMessage(),
        }
        entry.update({k: getattr(record, k) for k in FIELDS if hasattr(record, k)})
        return json.dumps(entry)


def configure(level: str = "INFO") -> None:
    """Send the `heeldrop` logger to stderr as JSON lines."""
    logger = logging.getLogger("heeldrop")
    if not any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
