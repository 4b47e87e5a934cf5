"""The recommendation log and outcomes under a real gunicorn (2 sync workers), on SQLite and
(when HEELDROP_TEST_POSTGRES_URL is set) PostgreSQL: both workers writing at once, a worker
killed and database connections cut mid-load; every answer given is logged once and every
outcome accepted is stored once."""

import os
import signal
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
import sqlalchemy as sa

from service.db import Outcome, Recommendation, engine_for
from tests.api.test_live import BODY, TIMEOUT, start_server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(registry, tmp_path, url):
    live = start_server(tmp_path / "live", registry.root.parent, db_url=url)
    yield live
    live.stop()


def stored(url, column):
    engine = engine_for(url)
    with engine.connect() as connection:
        values = list(connection.execute(sa.select(column)).scalars())
    engine.dispose()
    return values


def report(server, request_id, weeks=4):
    body = {"request_id": request_id, "weeks_worn": weeks, "drop_mm_worn": 8, "outcome": "same"}
    return requests.post(f"{server.url}/v1/outcomes", json=body, headers=server.shop,
                         timeout=TIMEOUT)  # fmt: skip


def test_two_workers_log_every_answer_once_and_store_every_outcome_once(server):
    def one(i):
        if i % 5 == 0:  # a batch of three
            r = requests.post(
                f"{server.url}/v1/recommendations/batch", json={"items": [BODY] * 3},
                headers=server.shop, timeout=TIMEOUT,
            )  # fmt: skip
            assert r.status_code == 200, r.text
            ids = [item["request_id"] for item in r.json()["results"]]
        else:
            r = server.recommend()
            assert r.status_code == 200, r.text
            ids = [r.json()["request_id"]]
        # Each answer's follow-up sent twice at once: one is stored, the other is 409.
        with ThreadPoolExecutor(2) as pool:
            codes = sorted(pool.map(lambda _: report(server, ids[0]).status_code, range(2)))
        return ids, codes

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(one, range(120)))
    answered = [rid for ids, _ in results for rid in ids]
    assert all(codes == [201, 409] for _, codes in results), Counter(
        tuple(codes) for _, codes in results
    )
    logged = stored(server.db_url, Recommendation.request_id)
    assert len(answered) == 24 * 3 + 96
    assert sorted(logged) == sorted(answered)  # each once: the answers' ids are all distinct
    outcomes = stored(server.db_url, Outcome.request_id)
    assert sorted(outcomes) == sorted(ids[0] for ids, _ in results)


def test_a_worker_killed_or_connections_cut_mid_load_lose_no_answer_given(server):
    """Answers given (200) and outcomes accepted (201) are all stored, whatever else fails.
    (A row can also be stored whose answer never arrived: the worker was killed after the
    commit. A client that retries such a follow-up gets 409, saying it is recorded.)"""
    stop = threading.Event()
    given: list[str] = []
    accepted: list[str] = []
    failed = Counter()
    lock = threading.Lock()

    def load():
        while not stop.is_set():
            try:
                r = server.recommend()
                if r.status_code != 200:
                    failed[r.status_code] += 1
                    continue
                rid = r.json()["request_id"]
                with lock:
                    given.append(rid)
                follow = report(server, rid)
                if follow.status_code == 201:
                    with lock:
                        accepted.append(rid)
            except requests.RequestException:  # a connection the killed worker held
                failed["connection"] += 1

    threads = [threading.Thread(target=load, daemon=True) for _ in range(4)]
    for thread in threads:
        thread.start()
    time.sleep(2)
    os.kill(min(server.workers()), signal.SIGKILL)
    time.sleep(2)
    if server.db_url.startswith("postgresql"):  # cut every connection the workers hold
        engine = engine_for(server.db_url)
        with engine.begin() as connection:
            connection.execute(sa.text(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ))  # fmt: skip
        engine.dispose()
    time.sleep(2)
    stop.set()
    for thread in threads:
        thread.join(timeout=60)
    assert len(given) > 50 and accepted, (len(given), failed)
    assert set(failed) <= {503, "connection"}, failed
    logged = set(stored(server.db_url, Recommendation.request_id))
    assert set(given) <= logged
    outcomes = stored(server.db_url, Outcome.request_id)
    assert set(accepted) <= set(outcomes)  # a 201 is never lost (a row whose answer a killed
    assert len(outcomes) == len(set(outcomes))  # worker never sent may be stored: a retry is 409)
