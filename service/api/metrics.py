"""Prometheus metrics, correct under several gunicorn workers (multiprocess mode).

gunicorn's config sets PROMETHEUS_MULTIPROC_DIR before workers import this module; each worker
then writes its samples to files there and /metrics aggregates them.
"""

import os
import struct
import time
from collections.abc import Iterable, Mapping
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REQUESTS = Counter("heeldrop_http_requests_total", "HTTP requests", ["route", "method", "status"])
LATENCY = Histogram(
    "heeldrop_http_request_seconds",
    "HTTP request latency",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
BANDS = Counter("heeldrop_recommended_bands_total", "Recommended bands", ["band"])
RULES = Counter("heeldrop_rule_firings_total", "Rule firings (not overruled)", ["rule"])
REFERRALS = Counter("heeldrop_referrals_total", "Referrals to a clinician", ["urgency"])
OUTCOMES = Counter("heeldrop_outcomes_total", "Outcomes reported and stored", ["outcome"])
MODEL = Gauge(
    "heeldrop_model_info",
    "The serving model version (1 = loaded)",
    ["version"],
    multiprocess_mode="liveall",
)
_SHOWN: set[str] = set()  # versions this process has reported
# HTTP methods counted under their own name; any other token a client sends counts as "other",
# so a caller cannot grow the label sets (or the children cached below) without bound.
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

# One labelled child per label set, looked up once: `Metric.labels()` converts and checks its
# values and takes a lock on every call. Every key here has finitely many values (routes of the
# URL map, status codes, bands, rule ids, urgencies, METHODS).
_request_children: dict[tuple[str, str, int], tuple[Any, Any]] = {}
_children: dict[tuple[Any, str], Any] = {}


def _child(metric: Any, label: str) -> Any:
    key = (metric, label)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(label)
    return child


def count_request(route: str, method: str, status: int, seconds: float) -> None:
    """One answered request: its count by route, method and status, and its latency."""
    if method not in METHODS:
        method = "other"
    key = (route, method, status)
    children = _request_children.get(key)
    if children is None:
        children = REQUESTS.labels(route, method, str(status)), LATENCY.labels(route, method)
        _request_children[key] = children
    children[0].inc()
    children[1].observe(seconds)


def count_answers(responses: Iterable[Mapping[str, Any]]) -> None:
    """Bands, referrals and (not overruled) rule firings of answered requests, one increment
    per distinct label: a batch of 100 with the same three rules costs three, not 300."""
    tally: dict[tuple[Any, str], int] = {}
    for response in responses:
        rec = response["recommendation"]
        keys = [(BANDS, rec["band"])]
        if rec["referral"]:
            keys.append((REFERRALS, rec["referral"]["urgency"]))
        keys += [(RULES, f["id"]) for f in response["explanation"]["rules"] if not f["overruled"]]
        for key in keys:
            tally[key] = tally.get(key, 0) + 1
    for (metric, label), n in tally.items():
        _child(metric, label).inc(n)


def count_outcome(outcome: str) -> None:
    """One stored outcome (better, same or worse)."""
    _child(OUTCOMES, outcome).inc()


def show_model(version: str) -> None:
    """Report `version` as this process's model (1) and any version it served before as 0."""
    for old in _SHOWN - {version}:
        MODEL.labels(old).set(0)
    MODEL.labels(version).set(1)
    _SHOWN.add(version)


class FilesChanging(Exception):
    """The workers' metrics files kept changing while they were read."""


def render(attempts: int = 3) -> tuple[bytes, str]:
    """The text exposition of every worker's samples; FilesChanging if the workers' files
    keep changing under it.

    Read again when a worker's file went away (a worker that exits has its live gauges' file
    removed, gunicorn's child_exit) or is still empty: prometheus_client creates a file before
    it sizes it, and reading it in between fails (prometheus/client_python issue 1199), as a
    scrape while a worker boots would.
    """
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
    for attempt in range(attempts - 1):
        try:
            return _collect()
        except (FileNotFoundError, struct.error):
            time.sleep(0.01 * (attempt + 1))
    try:
        return _collect()
    except (FileNotFoundError, struct.error):
        raise FilesChanging() from None


def _collect() -> tuple[bytes, str]:
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    return generate_latest(registry), CONTENT_TYPE_LATEST
