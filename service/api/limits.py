"""Per-key rate limits, with Flask-Limiter configured as its documentation shows.

One budget per caller (its key's id; its address before a key is known) shared by every route
behind a key: Flask-Limiter's application limits, HEELDROP_RATE_LIMIT. The public routes are
exempt. Counters live in memory, per worker process, by default; a `redis://` URL
(HEELDROP_RATELIMIT_STORAGE_URL) shares them between workers and instances, and if Redis cannot
be reached each worker counts in memory until it can again (Flask-Limiter's in-memory fallback).

A refusal is 429 with Retry-After. The X-RateLimit-* headers go on every answer of a limited
route; Retry-After only on a refusal: it means "wait this long" (RFC 9110), which a 200 does not.
On a 429 it is the limiter's; on another refusal (503: the database failed) the one its handler
set in `g.retry_after`, never the rate limit's window, which says nothing about that wait.
"""

import logging
import math
import time
from collections.abc import Collection

import limits
import limits.storage
import limits.strategies
from flask import Flask, Response, g, request
from flask_limiter import Limiter

log = logging.getLogger("heeldrop")

REDIS_TIMEOUTS = {"socket_timeout": 2, "socket_connect_timeout": 2}  # seconds


def init_limits(app: Flask, rate_limit: str, storage_url: str, public: Collection[str]) -> Limiter:
    """Bind a limiter to `app`: `rate_limit` per caller on every route but the `public`
    endpoints, counted in `storage_url`. Settings the app's config already holds (such as
    RATELIMIT_KEY_PREFIX or RATELIMIT_SWALLOW_ERRORS) are kept."""
    app.config.setdefault("RATELIMIT_APPLICATION", rate_limit)
    app.config.setdefault("RATELIMIT_STORAGE_URI", storage_url)
    app.config.setdefault("RATELIMIT_HEADERS_ENABLED", True)
    app.config.setdefault("RATELIMIT_IN_MEMORY_FALLBACK_ENABLED", True)
    if storage_url.startswith(("redis://", "rediss://")):  # a Redis that hangs fails in 2 s
        app.config.setdefault("RATELIMIT_STORAGE_OPTIONS", REDIS_TIMEOUTS)
    limiter = Limiter(key_func=_caller)
    limiter.request_filter(lambda: request.endpoint is None or request.endpoint in public)
    # Flask runs after-request functions in the reverse order of their registration: this one,
    # registered before the limiter's, runs after it has added its headers.
    app.after_request(_retry_after_only_with_a_refusal)
    limiter.init_app(app)
    return limiter


def _caller() -> str:
    return g.get("caller_key") or request.remote_addr or "-"


def _retry_after_only_with_a_refusal(response: Response) -> Response:
    if response.status_code == 429:
        return response
    wait = g.get("retry_after")
    if wait:
        response.headers["Retry-After"] = wait
    else:
        response.headers.pop("Retry-After", None)
    return response


class FailedKeys:
    """Requests with a missing or wrong key, counted per client address: past `limit` in its
    window, every keyed request from that address is refused (429) until the window ends, so
    nobody can try keys at full speed. Counted in the rate limits' storage (the `limits`
    library that Flask-Limiter uses, through its public API); while that storage fails, in this
    process's memory (tried again after RETRY_SECONDS), as Flask-Limiter's own fallback does."""

    RETRY_SECONDS = 30

    def __init__(self, limit: str, storage_url: str):
        self.limit = limits.parse(limit)
        options = REDIS_TIMEOUTS if storage_url.startswith(("redis://", "rediss://")) else {}
        shared = limits.storage.storage_from_string(storage_url, **options)
        self.shared = limits.strategies.FixedWindowRateLimiter(shared)
        self.memory = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
        self._shared_down_until = 0.0

    def _counter(self) -> limits.strategies.FixedWindowRateLimiter:
        return self.memory if time.monotonic() < self._shared_down_until else self.shared

    def _down(self, exc: Exception) -> None:
        self._shared_down_until = time.monotonic() + self.RETRY_SECONDS
        log.warning("failed-key counter storage unavailable; counting in memory",
                    extra={"event": "ratelimit_storage", "reason": type(exc).__name__})  # fmt: skip

    def blocked(self, address: str) -> int:
        """Seconds until `address` may try again (0: it may)."""
        try:
            counter = self._counter()
            if counter.test(self.limit, "failed-keys", address):
                return 0
            reset = counter.get_window_stats(self.limit, "failed-keys", address).reset_time
        except Exception as exc:  # any storage failure: count in memory from now on
            self._down(exc)
            return self.blocked(address)
        return max(1, math.ceil(reset - time.time()))

    def failed(self, address: str) -> None:
        try:
            self._counter().hit(self.limit, "failed-keys", address)
        except Exception as exc:  # as above
            self._down(exc)
            self.memory.hit(self.limit, "failed-keys", address)
