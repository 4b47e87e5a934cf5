"""Prometheus metrics, correct under several gunicorn workers (multiprocess mode).

gunicorn's config sets PROMETHEUS_MULTIPROC_DIR before workers import this module; each worker
then writes its samples to files there and /metrics aggregates them.
"""

import os

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
MODEL = Gauge(
    "heeldrop_model_info",
    "The serving model version (1 = loaded)",
    ["version"],
    multiprocess_mode="liveall",
)
_SHOWN: set[str] = set()  # versions this process has reported


def show_model(version: str) -> None:
    """Report `version` as this process's model (1) and any version it served before as 0."""
    for old in _SHOWN - {version}:
        MODEL.labels(old).set(0)
    MODEL.labels(version).set(1)
    _SHOWN.add(version)


def render() -> tuple[bytes, str]:
    """The text exposition of every worker's samples."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST
