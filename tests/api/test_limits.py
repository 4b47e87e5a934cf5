"""Per-key rate limits: 429 with Retry-After, public routes exempt, shared through Redis."""

import contextlib
import os
import time
import uuid

import pytest
import redis

from service.db import engine_for, keys

PUBLIC = ("/livez", "/readyz", "/metrics", "/openapi.json", "/docs")
ONE = {"footwear": {"current_drop_mm": 8}}


def bearer(token):
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def tokens(db_url, app):
    """Two shop keys (made through `app`, so the database is migrated)."""
    engine = engine_for(db_url)
    return bearer(keys.create(engine, "one")), bearer(keys.create(engine, "two"))


def assert_limited(response):
    assert response.status_code == 429
    assert set(response.json) == {"code", "status", "message", "errors"}
    assert response.json["code"] == 429 and response.json["status"] == "Too Many Requests"
    assert 0 < int(response.headers["Retry-After"]) <= 60


def test_the_fourth_request_of_a_key_is_429_while_another_key_still_gets_200(make_app, tokens):
    one, two = tokens
    client = make_app(rate_limit="3/minute").test_client()
    assert [client.get("/v1/model", headers=one).status_code for _ in range(3)] == [200] * 3
    assert_limited(client.get("/v1/model", headers=one))
    assert client.get("/v1/model", headers=two).status_code == 200


def test_a_key_has_one_budget_across_routes(make_app, tokens):
    one, _ = tokens
    client = make_app(rate_limit="3/minute").test_client()
    assert client.get("/v1/model", headers=one).status_code == 200
    assert client.post("/v1/recommendations", json=ONE, headers=one).status_code == 200
    assert client.post("/v1/recommendations/batch", json={"items": [ONE]},
                       headers=one).status_code == 200  # fmt: skip
    assert_limited(client.post("/v1/recommendations", json=ONE, headers=one))


def test_public_routes_are_not_limited(make_app, tokens):
    one, _ = tokens
    client = make_app(rate_limit="2/minute").test_client()
    for path in PUBLIC:
        for headers in ({}, one):
            assert [client.get(path, headers=headers).status_code for _ in range(3)] == [200] * 3


def test_a_request_without_a_valid_key_is_401_not_counted_against_a_key(make_app, tokens):
    one, _ = tokens
    client = make_app(rate_limit="2/minute").test_client()
    for _ in range(5):
        assert client.get("/v1/model").status_code == 401
        assert client.get("/v1/model", headers=bearer("hd_unknown")).status_code == 401
    assert client.get("/v1/model", headers=one).status_code == 200


def test_each_app_applies_its_own_limit(make_app, tokens):
    """Two apps in one process, in-memory storage: neither inherits the other's limits or counts."""
    one, _ = tokens
    loose = make_app(rate_limit="100/minute").test_client()
    first, second = (make_app(rate_limit="2/minute").test_client() for _ in range(2))
    for client in (first, second):
        assert [client.get("/v1/model", headers=one).status_code for _ in range(2)] == [200] * 2
        assert_limited(client.get("/v1/model", headers=one))
    assert [loose.get("/v1/model", headers=one).status_code for _ in range(5)] == [200] * 5


@pytest.fixture
def redis_url():
    """HEELDROP_TEST_REDIS_URL and a key prefix of our own; unset skips (set but unreachable
    fails, in the test)."""
    url = os.environ.get("HEELDROP_TEST_REDIS_URL")
    if not url:
        pytest.skip("HEELDROP_TEST_REDIS_URL is not set")
    prefix = f"heeldrop-test-{uuid.uuid4().hex}"
    yield url, prefix
    client = redis.Redis.from_url(url, socket_connect_timeout=3)
    with contextlib.suppress(redis.RedisError):
        for key in client.scan_iter(f"*{prefix}*"):
            client.delete(key)
    client.close()


@pytest.mark.redis
def test_two_app_instances_sharing_redis_share_the_limit(make_app, tokens, redis_url):
    url, prefix = redis_url
    try:
        redis.Redis.from_url(url, socket_connect_timeout=3).ping()
    except redis.RedisError as exc:
        pytest.fail(f"HEELDROP_TEST_REDIS_URL={url} is set but unreachable: {exc}")
    one, two = tokens
    settings = {"rate_limit": "3/minute", "ratelimit_storage_url": url,
                "RATELIMIT_KEY_PREFIX": prefix}  # fmt: skip
    first, second = (make_app(**settings).test_client() for _ in range(2))
    assert first.get("/v1/model", headers=one).status_code == 200
    assert second.get("/v1/model", headers=one).status_code == 200
    assert first.get("/v1/model", headers=one).status_code == 200
    assert_limited(second.get("/v1/model", headers=one))
    assert_limited(first.get("/v1/model", headers=one))
    assert second.get("/v1/model", headers=two).status_code == 200


def test_a_window_that_has_passed_lets_the_key_in_again(make_app, tokens):
    """In-memory counters expire on read, though the sweep of old counters runs once a second."""

    one, _ = tokens
    client = make_app(rate_limit="2/second").test_client()
    assert [client.get("/v1/model", headers=one).status_code for _ in range(2)] == [200] * 2
    assert_limited(client.get("/v1/model", headers=one))
    time.sleep(1.05)
    assert client.get("/v1/model", headers=one).status_code == 200


def test_in_memory_limits_start_no_thread_per_request(make_app, tokens):
    import threading

    one, _ = tokens
    client = make_app(rate_limit="1000/minute").test_client()
    client.get("/v1/model", headers=one)
    before = {t.name for t in threading.enumerate()}
    started = set()
    for _ in range(100):
        client.get("/v1/model", headers=one)
        started |= {t.name for t in threading.enumerate()} - before  # names are never reused
    assert len(started) <= 1


def test_retry_after_is_only_sent_with_a_refusal(make_app, tokens):
    one, _ = tokens
    client = make_app(rate_limit="1/minute").test_client()
    ok = client.get("/v1/model", headers=one)
    assert ok.status_code == 200
    assert "Retry-After" not in ok.headers and ok.headers["X-RateLimit-Remaining"] == "0"
    assert_limited(client.get("/v1/model", headers=one))


def _sequence(client, one, two):
    """Statuses and rate-limit headers of a mixed run of requests by two keys."""
    calls = [("get", "/v1/model", one), ("post", "/v1/recommendations", one),
             ("get", "/v1/model", two), ("get", "/livez", one), ("get", "/v1/model", one),
             ("post", "/v1/recommendations", one), ("get", "/v1/model", two),
             ("get", "/v1/model", one)]  # fmt: skip
    seen = []
    for method, path, headers in calls:
        r = client.open(path, method=method.upper(), headers=headers,
                        json=ONE if method == "post" else None)  # fmt: skip
        counts = [r.headers.get(name) for name in ("X-RateLimit-Limit", "X-RateLimit-Remaining")]
        # times: whether present, and sane (they tick with the clock, so are not compared)
        reset, retry = r.headers.getlist("X-RateLimit-Reset"), r.headers.get("Retry-After")
        assert len(reset) <= 1 and all(0 < int(t) - time.time() <= 61 for t in reset)
        assert retry is None or 0 < int(retry) <= 60
        seen.append((r.status_code, *counts, bool(reset), retry is not None))
    return seen


def test_the_kept_limits_count_like_flask_limiter_s_own_check(make_app, tokens, monkeypatch):
    """KeyLimiter works out an endpoint's limits once; Flask-Limiter's full check, forced on
    every request, gives the same answers and headers."""
    from service.api.ratelimit import KeyLimiter

    one, two = tokens
    fast = _sequence(make_app(rate_limit="3/minute").test_client(), one, two)
    monkeypatch.setattr(KeyLimiter, "_resolve", lambda self, endpoint: None)
    # and Flask-Limiter's header hook, with Retry-After removed from all but refusals as before
    monkeypatch.setattr(KeyLimiter, "_inject_headers",
                        KeyLimiter._flask_limiter_headers_refusals_only)  # fmt: skip
    full = _sequence(make_app(rate_limit="3/minute").test_client(), one, two)
    assert fast == full
    statuses = [s[0] for s in fast]
    assert statuses == [200, 200, 200, 200, 200, 429, 200, 429]
    assert [s[1] for s in fast] == ["3", "3", "3", None, "3", "3", "3", "3"]
    assert [s[2] for s in fast] == ["2", "1", "2", None, "0", "0", "1", "0"]
    assert [s[3] for s in fast] == [True, True, True, False, True, True, True, True]
    assert [s[4] for s in fast] == [False, False, False, False, False, True, False, True]


def test_limits_are_worked_out_once_per_endpoint(make_app, tokens, monkeypatch):
    from service.api.ratelimit import KeyLimiter

    one, _ = tokens
    resolved = []
    original = KeyLimiter._resolve
    monkeypatch.setattr(
        KeyLimiter, "_resolve", lambda self, e: resolved.append(e) or original(self, e)
    )
    client = make_app(rate_limit="100/minute").test_client()
    for _ in range(5):
        assert client.get("/v1/model", headers=one).status_code == 200
        assert client.post("/v1/recommendations", json=ONE, headers=one).status_code == 200
        assert client.get("/livez").status_code == 200
    assert sorted(resolved) == ["health.livez", "model.Model", "recommendations.Recommendations"]


def test_a_storage_error_is_handled_by_flask_limiter(make_app, tokens, monkeypatch):
    """With RATELIMIT_SWALLOW_ERRORS a failing storage lets requests through, as Flask-Limiter
    does; without it the error is a 500 in the one error shape."""
    from service.api.ratelimit import SteadyMemoryStorage

    one, _ = tokens

    def broken(*args, **kwargs):
        raise ConnectionError("storage down")

    for method in ("incr", "count"):  # count: the one-call hit of the memory storage
        monkeypatch.setattr(SteadyMemoryStorage, method, broken)
    swallowing = make_app(rate_limit="3/minute", RATELIMIT_SWALLOW_ERRORS=True).test_client()
    assert [swallowing.get("/v1/model", headers=one).status_code for _ in range(5)] == [200] * 5
    strict = make_app(rate_limit="3/minute").test_client()
    r = strict.get("/v1/model", headers=one)
    assert r.status_code == 500 and set(r.json) == {"code", "status", "message", "errors"}


def test_the_memory_storage_s_one_call_count_is_incr_then_get_expiry():
    from service.api.ratelimit import SteadyMemoryStorage

    one_call, limits_own = SteadyMemoryStorage(), SteadyMemoryStorage()
    for key, amount in [("k", 1), ("k", 2), ("j", 1), ("k", 1), ("j", 5)]:
        count, reset = one_call.count(key, 60, amount)
        assert count == limits_own.incr(key, 60, amount)
        assert abs(reset - limits_own.get_expiry(key)) < 1
    one_call.count("short", 0.05, 3)
    time.sleep(0.06)
    count, reset = one_call.count("short", 60, 1)  # the window has passed: counting starts again
    assert count == 1 and 59 < reset - time.time() <= 60
