"""Per-key rate limits through Flask-Limiter, with less work per request.

- `memory://` without a new thread every few requests: limits' memory storage sweeps expired
  counters on a 10 ms timer and starts a new timer thread whenever the last one has finished;
  profiling put that at 0.2 ms a request. Expiry is checked on every read anyway, so the sweep
  is housekeeping: here it runs once a second. Redis URLs are used as they are.
- Which limits apply is worked out once per endpoint (`KeyLimiter`), not on every request, and
  a hit is counted with one storage key (the memory storage: one call for count and expiry).
  Together with reaching Flask-Limiter's per-request state in one lookup, a recommendation's
  rate limiting went from ~175k to ~110k instructions (callgrind, in-process).
- Retry-After only on a refusal: Flask-Limiter puts it on every answer of a limited route, but
  it means "wait" (RFC 9110), so only a 429 or 503 carries it. The X-RateLimit-* headers stay
  on every answer of a limited route.
"""

import threading
import time
from collections import defaultdict
from collections.abc import Callable, Collection
from functools import partial
from typing import Any

import flask
from flask.globals import request_ctx
from flask_limiter import HeaderNames, Limiter, RateLimitExceeded, RequestLimit
from flask_limiter._extension import LimiterContext
from limits import WindowStats
from limits.storage import MemoryStorage
from limits.strategies import FixedWindowRateLimiter

SWEEP_SECONDS = 1.0
SCHEME = "heeldrop-memory"
REFUSALS = (429, 503)  # the answers that carry Retry-After


class SteadyMemoryStorage(MemoryStorage):
    """limits' MemoryStorage, sweeping once a second on a daemon timer."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 - limits registers storages by this class attribute

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the 10 ms timer
        if not self.timer.is_alive():
            sweep = self._MemoryStorage__expire_events  # type: ignore[attr-defined]
            self.timer = threading.Timer(SWEEP_SECONDS, sweep)
            self.timer.daemon = True
            self.timer.start()

    def count(self, key: str, expiry: float, amount: int) -> tuple[int, float]:
        """`incr` then `get_expiry` in one call: the count after this hit and when its window
        ends (the expiry `incr` has just set or kept)."""
        count = self.incr(key, expiry, amount)
        return count, self.expirations.get(key, time.time())


def storage_uri(url: str) -> str:
    """The storage Flask-Limiter should use for a configured URL."""
    return f"{SCHEME}://" if url.startswith("memory://") else url


class KeyLimiter(Limiter):
    """Flask-Limiter for one budget per caller: application limits (RATELIMIT_APPLICATION, a
    fixed string) on every endpoint but the `exempt` ones.

    Flask-Limiter works out on every request which of its decorated, blueprint, default and
    application limits apply (exemption scopes, blueprint ancestry, request filters), then
    counts the hit. In-process that came to ~0.12 ms of a recommendation's ~1.15 ms and ~30 us
    of an exempt /livez; counting the hit itself is ~3 us. Here the answer depends on the
    endpoint alone, so Flask-Limiter works it out on an endpoint's first request and it is kept.
    Each hit is then counted as Flask-Limiter counts it (same storage keys, `RequestLimit`s for
    its headers, `RateLimitExceeded` for the 429). Limits that need more (meta limits,
    conditional deductions, breach or exemption callbacks, per-method lists) and any storage
    error go through Flask-Limiter's own check.

    Its header hook is replaced too: the same X-RateLimit-Limit, -Remaining and -Reset, and
    Retry-After only on a 429 or 503 (see the module's note), without setting and removing it
    on every other answer; anything it does not cover goes through Flask-Limiter's hook.
    """

    def __init__(self, key_func: Callable[[], str], exempt: Collection[str]) -> None:
        super().__init__(key_func=key_func)
        self.exempt_endpoints = frozenset(exempt)
        self.request_filter(self._is_exempt)
        self._resolved: dict[str, tuple[Any, ...] | None] = {}

    def init_app(self, app: flask.Flask) -> None:
        super().init_app(app)
        own = getattr(Limiter, "_Limiter__inject_headers")  # noqa: B009 - a mangled name
        hooks = app.after_request_funcs.setdefault(None, [])
        for i, hook in enumerate(hooks):
            if isinstance(hook, partial) and hook.func is own and hook.args == (self,):
                hooks[i] = self._inject_headers
        self._flask_limiter_headers = partial(own, self)

    @property
    def context(self) -> LimiterContext:
        """Flask-Limiter's state for this request, kept where Flask-Limiter keeps it (on the
        request context), reached with one context lookup instead of three."""
        ctx = request_ctx._get_current_object()  # type: ignore[attr-defined]
        contexts = vars(ctx).get("_limiter_request_context")
        if contexts is None:
            contexts = ctx._limiter_request_context = defaultdict(LimiterContext)
        return contexts[self]

    def _inject_headers(self, response: flask.Response) -> flask.Response:
        """X-RateLimit-* on every answer of a limited route, Retry-After on a 429 or 503."""
        context = self.context
        headers = response.headers
        refused = response.status_code in REFUSALS
        if (
            context.conditional_deductions or self._retry_after or self._storage_dead
            or (refused and "Retry-After" in headers)  # Flask-Limiter takes the later of two
        ):  # fmt: skip
            return self._flask_limiter_headers_refusals_only(response)
        limit = context.view_rate_limit
        if limit is None or not (self.enabled and self._headers_enabled and self._header_mapping):
            return response
        try:
            reset_at = limit.reset_at
            remaining = limit.remaining
        except Exception:  # storage trouble: Flask-Limiter's hook decides (raise, swallow)
            return self._flask_limiter_headers_refusals_only(response)
        names = self._header_mapping
        headers.add(names[HeaderNames.LIMIT], str(limit.limit.amount))
        headers.add(names[HeaderNames.REMAINING], str(remaining))
        headers.add(names[HeaderNames.RESET], str(reset_at))
        if refused:
            headers[names[HeaderNames.RETRY_AFTER]] = str(int(reset_at - time.time()))
        return response

    def _flask_limiter_headers_refusals_only(self, response: flask.Response) -> flask.Response:
        response = self._flask_limiter_headers(response)
        if response.status_code not in REFUSALS:
            response.headers.pop("Retry-After", None)
        return response

    def _is_exempt(self) -> bool:
        endpoint = flask.request.endpoint
        return endpoint is None or endpoint in self.exempt_endpoints

    def _check_request_limit(
        self, callable_name: str | None = None, in_middleware: bool = True
    ) -> None:
        endpoint = self.identify_request() if callable_name is None and in_middleware else None
        if not endpoint or self._storage_dead:  # explicit checks, no endpoint, storage fallback
            return super()._check_request_limit(callable_name, in_middleware)
        if endpoint not in self._resolved:
            self._resolved[endpoint] = self._resolve(endpoint)
        limits = self._resolved[endpoint]
        if limits is None:
            return super()._check_request_limit(callable_name, in_middleware)
        if not limits:
            return None
        try:
            self._hit(endpoint, limits)
        except RateLimitExceeded:
            raise
        except Exception:  # storage trouble: Flask-Limiter's own check decides (raise, swallow)
            self.context.seen_limits.clear()  # as its own retry does: check these limits again
            super()._check_request_limit(callable_name, in_middleware)
        return None

    def _resolve(self, endpoint: str) -> tuple[Any, ...] | None:
        """The limits of `endpoint` in the order Flask-Limiter checks them (tightest first), or
        None when one of them needs Flask-Limiter's own evaluation."""
        if self._meta_limits or self._on_breach:
            return None
        if not self._fail_on_first_breach:
            return None
        filter_limits = self._Limiter__filter_limits  # type: ignore[attr-defined]
        limits = filter_limits(endpoint, flask.request.blueprint, None, True)
        plain = all(
            not (lim.meta_limits or lim.deduct_when or lim.on_breach or lim.exempt_when)
            and lim.methods is None
            and not callable(lim.cost)
            and not callable(lim.scope)
            for lim in limits
        )
        return tuple(sorted(limits, key=lambda lim: lim.limit)) if plain else None

    def _count(self, request_limit: RequestLimit, cost: int) -> bool:
        """Count one hit; False when it is over the limit. A fixed window (Flask-Limiter's
        default) is counted as limits counts it, by the key RequestLimit has already built, and
        the count and expiry the storage returns are kept for the headers: one storage key and
        two storage calls (one for the memory storage) instead of four keys and four calls
        (hit, then get and expiry for the headers)."""
        limiter, item = self.limiter, request_limit.limit
        if type(limiter) is not FixedWindowRateLimiter:
            return limiter.hit(item, *request_limit.request_args, cost=cost)
        storage, key = limiter.storage, request_limit.key
        if isinstance(storage, SteadyMemoryStorage):
            count, reset = storage.count(key, item.get_expiry(), cost)
        else:
            count = storage.incr(key, item.get_expiry(), amount=cost)
            reset = storage.get_expiry(key)
        request_limit._window = WindowStats(reset, max(0, item.amount - count))
        return count <= item.amount

    def _hit(self, endpoint: str, limits: tuple[Any, ...]) -> None:
        method = flask.request.method
        context = self.context
        if self._marked_for_limiting:  # a decorated limit's own check, later, skips these
            context.seen_limits.update(limits)  # as Flask-Limiter's filtering records them
        view_limits = []
        for lim in limits:
            key, scope = lim.key_func(), lim.scope_for(endpoint, method)
            if not (key and scope):
                continue  # Flask-Limiter skips (and logs) a limit without a key
            args = [self._key_prefix, key, scope] if self._key_prefix else [key, scope]
            request_limit = RequestLimit(self, lim.limit, args, False, lim.shared)
            view_limits.append(request_limit)
            if not self._count(request_limit, lim.cost):
                self.logger.info(
                    "ratelimit %s (%s) exceeded at endpoint: %s", lim.limit, key, scope
                )
                request_limit.breached = True
                context.view_rate_limit = request_limit
                context.view_rate_limits = view_limits
                raise RateLimitExceeded(lim)
        if view_limits:
            explicit = [limit for limit in view_limits if not limit.shared]
            context.view_rate_limit = explicit[0] if explicit else view_limits[0]
        context.view_rate_limits = view_limits
