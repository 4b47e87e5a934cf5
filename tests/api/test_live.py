"""A real gunicorn (`heeldrop serve`, 2 sync workers) on 127.0.0.1: the paths the test client skips.

Each server runs over a copy of the session registry and its own SQLite database and metrics
folder, and is terminated in a finalizer. Every loop is bounded and every request has a timeout.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.db import engine_for, keys, upgrade
from service.registry import Registry

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
BOOT_SECONDS = 180  # a busy 2-core machine can take long to import the stack in 2 workers
TIMEOUT = (5, 60)  # connect, read: a HUP queues requests while new workers boot
BODY = {
    "client_ref": "live-1",
    "person": {"age_years": 41, "body_mass_kg": 70, "sex": "female"},
    "footwear": {"current_drop_mm": 10, "current_type": "road_running",
                 "weeks_in_current_drop": 30},
    "activity": {"primary": "running", "running_km_per_week": 25},
    "symptoms": {"calf_tightness": 3},
}  # fmt: skip


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def children(pid: int) -> set[int]:
    """Live child processes of `pid` (the gunicorn workers of a master), from /proc."""
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields_ = stat[stat.rindex(")") + 2 :].split()
        if int(fields_[1]) == pid and fields_[0] != "Z":
            found.add(int(entry.name))
    return found


@dataclass
class LiveServer:
    """One `heeldrop serve` process tree and what it was started with."""

    url: str
    proc: subprocess.Popen[bytes]
    models_dir: Path
    metrics_dir: Path
    log_path: Path
    shop: dict[str, str]
    admin: dict[str, str]
    _log: Any = field(repr=False, default=None)
    db_url: str = ""

    @property
    def registry(self) -> Registry:
        return Registry(self.models_dir)

    def workers(self) -> set[int]:
        return children(self.proc.pid)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def recommend(self, **kwargs: Any) -> requests.Response:
        return requests.post(
            f"{self.url}/v1/recommendations", json=BODY, headers=self.shop, timeout=TIMEOUT,
            **kwargs,
        )  # fmt: skip

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        """The /metrics samples as {(name, sorted labels): value}."""
        text = requests.get(f"{self.url}/metrics", timeout=TIMEOUT).text
        return {
            (s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
        }

    def wait_ready(self, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"gunicorn exited with {self.proc.returncode}:\n{self.log()}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.25)
        raise AssertionError(f"not ready after {BOOT_SECONDS} s:\n{self.log()[-4000:]}")

    def wait_workers_replaced(self, old: set[int], deadline: float) -> set[int]:
        """Wait until none of `old` remain and 2 workers answer; the new worker pids."""
        while time.monotonic() < deadline:
            now = self.workers()
            if len(now) == 2 and not now & old:
                self.wait_ready(deadline)
                return now
            time.sleep(0.2)
        raise AssertionError(f"workers {old} were not replaced: {self.workers()}\n{self.log()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # gunicorn: graceful shutdown of all workers
            try:
                self.proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)  # our own session, started below
                self.proc.wait(timeout=10)
        if self._log is not None:
            self._log.close()


def start_server(
    tmp: Path,
    models_src: Path,
    env: dict[str, str] | None = None,
    workers: int = 2,
    db_url: str | None = None,
) -> LiveServer:
    """Copy the models, make a database (SQLite in `tmp` unless `db_url` is given) with a shop
    and an admin key, start `heeldrop serve`."""
    tmp.mkdir(parents=True, exist_ok=True)
    models = tmp / "models"
    shutil.copytree(models_src, models, ignore=shutil.ignore_patterns(".lock", ".serving"))
    db_url = db_url or f"sqlite:///{tmp}/heeldrop.db"
    upgrade(db_url)
    engine = engine_for(db_url)
    shop, admin = keys.create(engine, "shop"), keys.create(engine, "admin", admin=True)
    engine.dispose()
    metrics_dir = tmp / "prometheus"
    metrics_dir.mkdir()
    port = free_port()
    full_env = {
        k: v for k, v in os.environ.items()
        if not k.startswith(("HEELDROP_", "PROMETHEUS_", "GUNICORN_"))
    }  # fmt: skip
    full_env.update(
        HEELDROP_MODELS_DIR=str(models),
        HEELDROP_DATABASE_URL=db_url,
        HEELDROP_RATE_LIMIT="1000000/minute",
        HEELDROP_SECRET_KEY="test-only-secret",  # not a key file in the checkout
        PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        PYTHONUNBUFFERED="1",
    )
    full_env.update(env or {})
    log_path = tmp / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed by LiveServer.stop
    cmd = [sys.executable, "-m", "service.cli", "serve", "--host", HOST, "--port", str(port),
           "--workers", str(workers)]  # fmt: skip
    proc = subprocess.Popen(
        cmd, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    server = LiveServer(
        f"http://{HOST}:{port}", proc, models, metrics_dir, log_path,
        {"Authorization": f"Bearer {shop}"}, {"Authorization": f"Bearer {admin}"}, log, db_url,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + BOOT_SECONDS
        server.wait_ready(deadline)
        # One worker can answer /readyz before the master has forked the others.
        while len(server.workers()) < workers and time.monotonic() < deadline:
            time.sleep(0.1)
        if len(server.workers()) != workers:
            raise AssertionError(f"{server.workers()} are not {workers} workers:\n{server.log()}")
    except BaseException:
        server.stop()
        raise
    return server


@pytest.fixture(scope="module")
def live(registry, tmp_path_factory) -> Iterator[LiveServer]:
    """A server shared by the read-only tests of this module."""
    server = start_server(tmp_path_factory.mktemp("live"), registry.root.parent)
    yield server
    server.stop()


@pytest.fixture
def fresh_live(registry, tmp_path) -> Iterator[LiveServer]:
    """A server of its own, for tests that change the registry or restart workers."""
    server = start_server(tmp_path / "live", registry.root.parent)
    # Every worker has loaded its model before a test changes the registry: a worker still
    # booting could otherwise load a champion promoted in the test before it is damaged.
    versions_by_worker(server)
    yield server
    server.stop()


def add_version(registry: Registry, source: str) -> str:
    """Register a copy of `source` under a new version name (what a retrain would add)."""
    version = registry.new_version()
    shutil.copytree(registry.root / source, registry.root / version)
    meta_path = registry.root / version / "metadata.json"
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    meta["version"] = version
    meta_path.write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    return version


def spread(server: LiveServer, n: int, threads: int = 4) -> list[requests.Response]:
    """`n` recommendation requests from several threads at once, so both workers serve some."""
    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(lambda _: server.recommend(), range(n)))


def versions_by_worker(server: LiveServer, attempts: int = 200) -> dict[str, set[str]]:
    """{worker slot: model versions it reports}, once as many workers as run have reported.

    heeldrop_model_info is a live-process gauge: each worker sets its own sample (labelled with
    its slot, gunicorn_conf.py) when it serves /metrics, so concurrent scrapes reach both
    workers; a dead worker's sample is removed when it exits.
    """
    wanted = len(server.workers())
    seen: dict[str, set[str]] = {}
    with ThreadPoolExecutor(4) as pool:
        for _ in range(attempts // 4):
            for samples in pool.map(lambda _: server.metrics(), range(4)):
                seen = {}
                for (name, labels), value in samples.items():
                    lab = dict(labels)
                    if name == "heeldrop_model_info" and value == 1:
                        seen.setdefault(lab["pid"], set()).add(lab["version"])
            if len(seen) == wanted:
                return seen
    raise AssertionError(f"not every one of {wanted} workers reported its model: {seen}")


class Load:
    """Threads sending recommendation requests until stopped; every outcome is kept."""

    def __init__(self, server: LiveServer, threads: int = 4):
        self.server = server
        self.stop_event = threading.Event()
        self.lock = threading.Lock()
        self.outcomes: list[tuple[float, int | str, str | None, float]] = []
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def _run(self) -> None:
        while not self.stop_event.is_set():
            started = time.monotonic()
            try:
                r = self.server.recommend()
                outcome: tuple[int | str, str | None] = (
                    r.status_code,
                    r.headers.get("X-Model-Version"),
                )
            except requests.RequestException as exc:
                outcome = (f"{type(exc).__name__}: {exc}", None)
            with self.lock:
                self.outcomes.append((started, *outcome, time.monotonic() - started))

    def __enter__(self) -> "Load":
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(timeout=90)

    def count(self) -> int:
        with self.lock:
            return len(self.outcomes)

    def wait_for(self, more: int, seconds: float) -> None:
        """Let at least `more` further requests finish (bounded by `seconds`)."""
        target, deadline = self.count() + more, time.monotonic() + seconds
        while self.count() < target and time.monotonic() < deadline:
            time.sleep(0.05)


def poll(check: Callable[[], bool], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


# --- answers over real HTTP -----------------------------------------------------------------


def test_a_recommendation_answers_over_real_http(live, registry):
    r = requests.post(
        f"{live.url}/v1/recommendations", json=BODY,
        headers={**live.shop, "X-Request-ID": "live-req-1"}, timeout=TIMEOUT,
    )  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert r.headers["X-Request-ID"] == "live-req-1" != body["request_id"]
    assert body["client_ref"] == "live-1"
    assert r.headers["X-Model-Version"] == registry.champion()
    assert body["explanation"]["model"]["version"] == registry.champion()
    assert body["degraded"] is False
    assert 0 <= body["recommendation"]["drop_mm"]["min"] <= body["recommendation"]["drop_mm"]["max"]

    batch = requests.post(
        f"{live.url}/v1/recommendations/batch",
        json={"items": [BODY, {"footwear": {"current_drop_mm": 99}}]},
        headers=live.shop, timeout=TIMEOUT,
    )  # fmt: skip
    assert batch.status_code == 200
    first, second = batch.json()["results"]
    assert "recommendation" in first
    assert second["index"] == 1 and second["error"]["code"] == 422


def test_auth_and_scope_on_the_real_server(live):
    no_key = requests.post(f"{live.url}/v1/recommendations", json=BODY, timeout=TIMEOUT)
    assert no_key.status_code == 401 and set(no_key.json()) == {
        "code", "status", "message", "errors"
    }  # fmt: skip
    shop_on_admin = requests.post(f"{live.url}/admin/reload", headers=live.shop, timeout=TIMEOUT)
    assert shop_on_admin.status_code == 403 and shop_on_admin.json()["code"] == 403
    assert requests.get(f"{live.url}/livez", timeout=TIMEOUT).status_code == 200


def test_metrics_add_up_the_requests_of_both_workers(live):
    key = (
        "heeldrop_http_requests_total",
        (("method", "POST"), ("route", "/v1/recommendations"), ("status", "200")),
    )
    hist = ("heeldrop_http_request_seconds_count",
            (("method", "POST"), ("route", "/v1/recommendations")))  # fmt: skip
    before = live.metrics()
    n = 60
    responses = spread(live, n)
    assert [r.status_code for r in responses] == [200] * n
    after = live.metrics()
    assert after[key] - before.get(key, 0.0) == n
    assert after[hist] - before.get(hist, 0.0) == n
    # Both workers wrote samples: one counter file per worker slot in the multiprocess folder.
    writers = {p.stem.rsplit("_", 1)[1] for p in live.metrics_dir.glob("counter_*.db")}
    assert writers == {"w0", "w1"}, writers


def test_recycled_workers_keep_the_counts_in_a_bounded_number_of_files(registry, tmp_path):
    """Workers recycled every 10 requests: the counts of the dead ones stay in /metrics, and
    the metrics folder holds the files of two worker slots, not of every pid that came."""
    server = start_server(
        tmp_path / "live", registry.root.parent,
        env={"GUNICORN_CMD_ARGS": "--max-requests 10 --max-requests-jitter 0"},
    )  # fmt: skip
    try:
        first = server.workers()
        key = (
            "heeldrop_http_requests_total",
            (("method", "POST"), ("route", "/v1/recommendations"), ("status", "200")),
        )
        n = 80
        responses = [server.recommend() for _ in range(n)]
        assert [r.status_code for r in responses] == [200] * n
        assert not first & server.workers()  # every worker was replaced, several times
        assert server.metrics()[key] == n
        files = sorted(p.name for p in server.metrics_dir.iterdir())
        assert {name.rsplit("_", 1)[1] for name in files} <= {"w0.db", "w1.db"}, files
    finally:
        server.stop()


def test_a_body_over_the_limit_is_413_from_the_real_server(live):
    big = {**BODY, "client_ref": "x" * (100 * 1024)}  # over the 64 KiB single-request limit
    r = requests.post(
        f"{live.url}/v1/recommendations", json=big, headers=live.shop, timeout=TIMEOUT
    )
    assert r.status_code == 413
    assert r.json()["code"] == 413
    huge = b'{"items": [' + b"1," * (5 * 1024 * 1024) + b"1]}"  # ~10 MiB, over the batch limit
    r = requests.post(
        f"{live.url}/v1/recommendations/batch", data=huge,
        headers={**live.shop, "Content-Type": "application/json"}, timeout=TIMEOUT,
    )  # fmt: skip
    assert r.status_code == 413
    assert r.json()["code"] == 413
    # Without Content-Length (chunked), the limit is counted while reading.
    chunks = (json.dumps(big).encode()[i : i + 4096] for i in range(0, 110 * 1024, 4096))
    r = requests.post(
        f"{live.url}/v1/recommendations", data=chunks,
        headers={**live.shop, "Content-Type": "application/json"}, timeout=TIMEOUT,
    )  # fmt: skip
    assert r.status_code == 413
    assert r.json()["code"] == 413
    assert live.recommend().status_code == 200


def test_slow_and_broken_clients_do_not_break_other_callers(live):
    """One stalled client holds one sync worker (up to gunicorn's timeout); the other serves."""
    stalled = socket.create_connection((HOST, int(live.url.rsplit(":", 1)[1])), timeout=5)
    try:
        stalled.sendall(b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Le")
        for junk in (b"\x00\xff garbage\r\n\r\n", b"GET / HTTP/1.1\r\nContent-Length: 50\r\n\r\n{"):
            with socket.create_connection((HOST, int(live.url.rsplit(":", 1)[1])), timeout=5) as s:
                s.sendall(junk)  # then hang up without waiting
        responses = [live.recommend() for _ in range(10)]
        assert [r.status_code for r in responses] == [200] * 10
    finally:
        stalled.close()
    assert live.proc.poll() is None


# --- reloads under load ---------------------------------------------------------------------


def test_reload_and_hup_under_load_lose_no_request(fresh_live):
    server = fresh_live
    reg = server.registry
    v1 = reg.champion()
    assert v1
    workers_v1 = server.workers()
    assert len(workers_v1) == 2
    with Load(server) as load:
        load.wait_for(40, 60)

        # 1. A new champion and POST /admin/reload: this worker loads it, then HUPs the master.
        v2 = add_version(reg, v1)
        reg.promote(v2)
        r = requests.post(f"{server.url}/admin/reload", headers=server.admin, timeout=TIMEOUT)
        assert r.status_code == 200, r.text
        assert r.json() == {"version": v2, "previous": v1, "all_workers": True}
        workers_v2 = server.wait_workers_replaced(workers_v1, time.monotonic() + BOOT_SECONDS)
        load.wait_for(40, 60)

        # 2. Another champion and a plain `kill -HUP <master>`.
        v3 = add_version(reg, v1)
        reg.promote(v3)
        os.kill(server.proc.pid, signal.SIGHUP)
        workers_v3 = server.wait_workers_replaced(workers_v2, time.monotonic() + BOOT_SECONDS)
        load.wait_for(40, 60)
        marker = time.monotonic()
        load.wait_for(40, 60)

    outcomes = load.outcomes
    failed = [o for o in outcomes if o[1] != 200]
    assert not failed, f"{len(failed)} of {len(outcomes)} requests failed: {failed[:5]}"
    assert len(outcomes) >= 160
    seen = {o[2] for o in outcomes}
    assert seen <= {v1, v2, v3} and {v1, v3} <= seen
    assert {o[2] for o in outcomes if o[0] >= marker} == {v3}
    assert list(versions_by_worker(server).values()) == [{v3}] * len(workers_v3)
    slowest = max(o[3] for o in outcomes)
    print(f"{len(outcomes)} requests through 2 restarts, slowest {slowest:.2f} s")
    # Workers boot from modules the master imported: a restart is a pause of well under a
    # second, not the 10-20 s of re-importing scikit-learn with every worker.
    assert slowest < 10, f"a request waited {slowest:.1f} s during a restart"


def test_a_tampered_champion_is_refused_and_the_old_model_serves_on(fresh_live):
    server = fresh_live
    reg = server.registry
    workers = server.workers()
    v1, _ = promote_a_tampered_copy(reg)
    r = requests.post(f"{server.url}/admin/reload", headers=server.admin, timeout=TIMEOUT)
    assert r.status_code == 409, r.text
    assert r.json()["code"] == 409 and "sha256" in r.json()["message"]
    responses = spread(server, 20)
    assert {(x.status_code, x.headers["X-Model-Version"]) for x in responses} == {(200, v1)}
    ready = requests.get(f"{server.url}/readyz", timeout=TIMEOUT)
    assert ready.status_code == 200 and ready.json()["model_version"] == v1
    assert server.workers() == workers  # refused: no restart was asked for
    assert list(versions_by_worker(server).values()) == [{v1}] * len(workers)

    # A HUP now: the new workers refuse the champion and fall back to the version served before.
    os.kill(server.proc.pid, signal.SIGHUP)
    workers = server.wait_workers_replaced(workers, time.monotonic() + BOOT_SECONDS)
    responses = spread(server, 20)
    assert {(x.status_code, x.headers["X-Model-Version"]) for x in responses} == {(200, v1)}
    assert list(versions_by_worker(server).values()) == [{v1}] * len(workers)


@pytest.mark.parametrize("pointer", ['{"version": 5}', "[]"])
def test_a_malformed_champion_pointer_is_409_and_a_hup_keeps_the_server_up(fresh_live, pointer):
    server = fresh_live
    v1 = server.registry.champion()
    workers = server.workers()
    (server.registry.root / "champion.json").write_text(pointer)
    r = requests.post(f"{server.url}/admin/reload", headers=server.admin, timeout=TIMEOUT)
    assert r.status_code == 409 and "malformed" in r.json()["message"], r.text
    os.kill(server.proc.pid, signal.SIGHUP)
    workers = server.wait_workers_replaced(workers, time.monotonic() + BOOT_SECONDS)
    assert server.proc.poll() is None  # the master is still up
    responses = spread(server, 10)
    assert {(x.status_code, x.headers["X-Model-Version"]) for x in responses} == {(200, v1)}


def test_workers_that_can_load_no_model_boot_degraded_and_the_server_stays_up(fresh_live):
    """Champion and fallback both refused at a HUP: rules only and /readyz 503, not a dead server
    (gunicorn halts when a worker fails to boot)."""
    server = fresh_live
    reg = server.registry
    workers = server.workers()
    v1, _ = promote_a_tampered_copy(reg)
    tamper(reg, v1)
    os.kill(server.proc.pid, signal.SIGHUP)
    deadline = time.monotonic() + BOOT_SECONDS
    while time.monotonic() < deadline and server.proc.poll() is None:
        now = server.workers()
        if len(now) == 2 and not now & workers:
            break
        time.sleep(0.2)
    assert server.proc.poll() is None, f"gunicorn stopped:\n{server.log()[-3000:]}"
    assert poll(lambda: requests.get(f"{server.url}/livez", timeout=TIMEOUT).ok, 60)
    ready = requests.get(f"{server.url}/readyz", timeout=TIMEOUT)
    assert ready.status_code == 503 and "sha256" in ready.json()["message"]
    r = server.recommend()
    assert r.status_code == 200 and r.json()["degraded"] is True
    assert "X-Model-Version" not in r.headers


def promote_a_tampered_copy(registry: Registry) -> tuple[str, str]:
    """Register a copy of the champion, promote it, then damage its model file: the champion
    before and the new, unloadable one."""
    before = registry.champion()
    assert before
    after = add_version(registry, before)
    registry.promote(after)
    tamper(registry, after)
    return before, after


def tamper(registry: Registry, version: str) -> None:
    with open(registry.root / version / "model.skops", "ab") as fh:
        fh.write(b"tampered")
