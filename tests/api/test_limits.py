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
    """In-memory counters start again when their window has passed."""

    one, _ = tokens
    client = make_app(rate_limit="2/second").test_client()
    assert [client.get("/v1/model", headers=one).status_code for _ in range(2)] == [200] * 2
    assert_limited(client.get("/v1/model", headers=one))
    time.sleep(1.05)
    assert client.get("/v1/model", headers=one).status_code == 200


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


def test_every_limited_answer_carries_the_rate_limit_headers_and_only_refusals_retry_after(
    make_app, tokens
):
    """A mixed run of two keys against a limit of 3 a minute: the counts go down per key, the
    public route has no headers, and only the refusals say when to retry."""
    one, two = tokens
    seen = _sequence(make_app(rate_limit="3/minute").test_client(), one, two)
    assert [s[0] for s in seen] == [200, 200, 200, 200, 200, 429, 200, 429]
    assert [s[1] for s in seen] == ["3", "3", "3", None, "3", "3", "3", "3"]
    assert [s[2] for s in seen] == ["2", "1", "2", None, "0", "0", "1", "0"]
    assert [s[3] for s in seen] == [True, True, True, False, True, True, True, True]
    assert [s[4] for s in seen] == [False, False, False, False, False, True, False, True]


def test_an_unreachable_redis_falls_back_to_counting_in_memory(make_app, tokens):
    """Limits stored in a Redis that cannot be reached: the worker counts in memory instead,
    so requests are still answered and the limit still holds."""
    one, _ = tokens
    client = make_app(
        rate_limit="3/minute", ratelimit_storage_url="redis://127.0.0.1:9/0"
    ).test_client()  # port 9 (discard): nothing listens there
    assert [client.get("/v1/model", headers=one).status_code for _ in range(3)] == [200] * 3
    assert_limited(client.get("/v1/model", headers=one))


@pytest.fixture
def stopped_redis(tmp_path):
    """A private redis-server on a free loopback port, then SIGSTOPped: it accepts connections
    and never answers (a hung dependency). Skips without redis-server unless CI's Redis is set."""
    import shutil
    import signal
    import socket
    import subprocess

    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("HEELDROP_TEST_REDIS_URL"):
            pytest.fail("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                             "--appendonly", "no", "--dir", str(tmp_path)],
                            stdout=subprocess.DEVNULL)  # fmt: skip
    client = redis.Redis(port=port, socket_connect_timeout=1)
    for _ in range(50):
        with contextlib.suppress(redis.RedisError):
            if client.ping():
                break
        time.sleep(0.1)
    client.close()
    proc.send_signal(signal.SIGSTOP)
    yield f"redis://127.0.0.1:{port}/0"
    proc.send_signal(signal.SIGCONT)
    proc.terminate()
    proc.wait(timeout=10)


def test_a_hung_redis_costs_seconds_not_the_service(make_app, tokens, stopped_redis):
    """A Redis that accepts and never answers: the first request waits out the socket timeout,
    then the worker counts in memory; every answer is a 200 within a few seconds."""
    one, _ = tokens
    client = make_app(rate_limit="100/minute", ratelimit_storage_url=stopped_redis).test_client()
    started = time.monotonic()
    codes = [client.get("/v1/model", headers=one).status_code for _ in range(5)]
    assert codes == [200] * 5
    assert time.monotonic() - started < 10
    assert client.get("/livez").status_code == 200
