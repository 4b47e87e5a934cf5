"""Rate limits, counted with the `limits` library through its public API.

Three limits, each a fixed window counted per caller:
- every key has one budget (HEELDROP_RATE_LIMIT) shared by all the routes behind a key, checked
  by the request hook once the key is known (service/api/hooks.py); the public routes and the
  fitter's pages are not counted;
- requests with a missing or wrong key, per client address (HEELDROP_FAILED_KEY_LIMIT): past it,
  every keyed request from that address is refused until the window ends, so nobody can try
  keys at full speed;
- sign-in attempts on the fitter's page, per client address (service/web).

Counters live in memory, per worker process, by default; a `redis://` URL
(HEELDROP_RATELIMIT_STORAGE_URL) shares them between workers and instances, and while Redis
cannot be reached each worker counts in memory (tried again after RETRY_SECONDS). Apps that share
a Redis keep apart by RATELIMIT_KEY_PREFIX in their Flask config.

A refusal is 429 with Retry-After: the seconds until the window ends. The X-RateLimit-* headers
(the limit, what is left of it, when the window ends) go on every answer a limit counted, the
refusals included; Retry-After only on a refusal: it means "wait this long" (RFC 9110), which a
200 does not.
"""

import functools
import logging
import math
import time
from collections.abc import Callable
from typing import Any, TypeVar

import limits
import limits.storage
import limits.strategies
from flask import Response, g, request
from werkzeug.exceptions import TooManyRequests

log = logging.getLogger("heeldrop")

REDIS_TIMEOUTS = {"socket_timeout": 2, "socket_connect_timeout": 2}  # seconds
SIGN_IN_LIMIT = "10 per minute"  # sign-in attempts from one address
T = TypeVar("T")


class Window:
    """A counted request's window: whether it was allowed, what is left, when it ends."""

    __slots__ = ("allowed", "amount", "remaining", "reset")

    def __init__(self, allowed: bool, amount: int, stats: limits.WindowStats):
        self.allowed, self.amount = allowed, amount
        self.remaining, self.reset = stats.remaining, stats.reset_time


def seconds_until(reset: float) -> int:
    """Whole seconds from now until the time `reset` (at least 1): a Retry-After."""
    return max(1, math.ceil(reset - time.time()))


class Counters:
    """Fixed-window counters in one storage (memory or Redis), falling back to this process's
    memory while that storage fails."""

    RETRY_SECONDS = 30

    def __init__(self, storage_url: str, prefix: str = ""):
        options = REDIS_TIMEOUTS if storage_url.startswith(("redis://", "rediss://")) else {}
        shared = limits.storage.storage_from_string(storage_url, **options)
        self.shared = limits.strategies.FixedWindowRateLimiter(shared)
        self.memory = limits.strategies.FixedWindowRateLimiter(limits.storage.MemoryStorage())
        self.prefix = (prefix,) if prefix else ()
        self.shared_down_until = 0.0

    def hit(self, limit: limits.RateLimitItem, *key: str) -> Window:
        """Count one request under `key`; its window."""
        ids = (*self.prefix, *key)
        return self.count(lambda counter: Window(
            counter.hit(limit, *ids), limit.amount, counter.get_window_stats(limit, *ids)
        ))  # fmt: skip

    def wait(self, limit: limits.RateLimitItem, *key: str) -> int:
        """Seconds until `key` may be counted again (0: it may now), counting nothing."""
        ids = (*self.prefix, *key)

        def seconds(counter: limits.strategies.FixedWindowRateLimiter) -> int:
            if counter.test(limit, *ids):
                return 0
            return seconds_until(counter.get_window_stats(limit, *ids).reset_time)

        return self.count(seconds)

    def count(self, action: Callable[[limits.strategies.FixedWindowRateLimiter], T]) -> T:
        """`action` on the storage's counters; on any failure of the storage, on this
        process's memory from now on (until RETRY_SECONDS have passed)."""
        if time.monotonic() >= self.shared_down_until:
            try:
                return action(self.shared)
            except Exception as exc:
                self.shared_down_until = time.monotonic() + self.RETRY_SECONDS
                reason = type(exc).__name__
                log.warning("rate-limit storage unavailable; counting in memory",
                            extra={"event": "ratelimit_storage", "reason": reason})  # fmt: skip
        return action(self.memory)


class RateLimits:
    """The app's limits over one set of counters."""

    def __init__(self, rate_limit: str, failed_key_limit: str, storage_url: str, prefix: str = ""):
        self.counters = Counters(storage_url, prefix)
        self.per_key = limits.parse(rate_limit)
        self.failed_keys = limits.parse(failed_key_limit)
        self.sign_ins = limits.parse(SIGN_IN_LIMIT)

    def key(self, key_id: str) -> Window:
        """Count one request of the key `key_id` against its budget."""
        return self.counters.hit(self.per_key, "keys", key_id)

    def staff(self, user_id: int) -> Window:
        """Count one form sent by a staff user of the fitter's pages against the same budget
        as a key's: the pages answer and log recommendations as the API does."""
        return self.counters.hit(self.per_key, "staff", str(user_id))

    def blocked(self, address: str) -> int:
        """Seconds until `address` may present a key again (0: it may)."""
        return self.counters.wait(self.failed_keys, "failed-keys", address)

    def failed(self, address: str) -> None:
        """Count a request with a missing or wrong key from `address`."""
        self.counters.hit(self.failed_keys, "failed-keys", address)

    def sign_in(self, view: Callable[..., Any]) -> Callable[..., Any]:
        """Decorate the sign-in view: its POSTs (the attempts) are counted per address and
        past the limit refused with 429 (the page's own error page)."""

        @functools.wraps(view)
        def limited(*args: Any, **kwargs: Any) -> Any:
            if request.method == "POST":
                g.rate_window = window = self.counters.hit(
                    self.sign_ins, "sign-in", request.remote_addr or "-"
                )
                if not window.allowed:
                    raise TooManyRequests()
            return view(*args, **kwargs)

        return limited


def add_headers(response: Response, window: Window) -> None:
    """The X-RateLimit-* headers of a counted answer, and Retry-After on its refusal."""
    headers = response.headers
    headers["X-RateLimit-Limit"] = str(window.amount)
    headers["X-RateLimit-Remaining"] = str(window.remaining)
    headers["X-RateLimit-Reset"] = str(math.ceil(window.reset))
    if response.status_code == 429:
        headers["Retry-After"] = str(seconds_until(window.reset))
