"""Structured JSON logs: ids, routes, statuses, timings, versions; never bodies or health data."""

import json
import logging
import sys
import time

import orjson

# Only these attributes of a record are written; anything else passed in `extra` is dropped,
# so a careless call cannot leak a request body into the logs.
FIELDS = (
    "event", "request_id", "answer_id", "method", "route", "status", "latency_ms",
    "model_version", "key", "items", "reason",
)  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts (UTC, to the second), level, msg, then the FIELDS a record has.

    A line a request: the timestamp is formatted once a second, the line encoded by orjson
    (the standard library's json when orjson refuses a value, such as a lone surrogate).
    """

    def __init__(self) -> None:
        super().__init__()
        self._stamp = (-1, "")  # (second, its text), replaced whole

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        stamp = self._stamp
        if stamp[0] != second:
            stamp = self._stamp = (
                second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
            )  # fmt: skip
        entry = {"ts": stamp[1], "level": record.levelname.lower(), "msg": record.getMessage()}
        attributes = record.__dict__
        for name in FIELDS:
            if name in attributes:
                entry[name] = attributes[name]
        try:
            return orjson.dumps(entry).decode()
        except TypeError:  # orjson.JSONEncodeError is one
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
