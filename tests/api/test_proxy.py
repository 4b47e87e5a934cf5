"""heeldrop behind the nginx configuration it ships (deploy/nginx.conf.template), on loopback.

The attacks of a hostile client that sync workers cannot take alone: headers and bodies sent a
line at a time, broken requests, many addresses guessing keys. nginx comes from the system
(Debian's nginx-light); without it these tests skip, unless HEELDROP_TEST_PROXY=1 (as in
.ci/run) makes that a failure. Every loop is bounded and every request has a timeout.
"""

import http.client
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.api.test_live import BODY, HOST, ROOT, LiveServer, free_port, start_server

pytestmark = pytest.mark.slow

TEMPLATE = ROOT / "deploy" / "nginx.conf.template"
PROBE_TIMEOUT = 3.0  # seconds: an answer later than this counts as none


def nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin:/usr/local/sbin")
    if found is None:
        if os.environ.get("HEELDROP_TEST_PROXY") == "1":
            pytest.fail("nginx is not installed (apt-get install nginx-light)")
        pytest.skip("nginx is not installed")
    return found


class Proxy:
    """One nginx master on a free port, with the shipped server block, until stopped."""

    def __init__(self, tmp: Path, upstream: str):
        tmp.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        server = (
            TEMPLATE.read_text()  # as envsubst would: only these two, not nginx's own $names
            .replace("${HEELDROP_LISTEN}", f"{HOST}:{self.port}")
            .replace("${HEELDROP_UPSTREAM}", upstream)
        )
        (tmp / "heeldrop.conf").write_text(server)
        temp = "\n".join(
            f"  {kind}_temp_path {tmp}/{kind};" for kind in ("client_body", "proxy", "fastcgi",
                                                             "uwsgi", "scgi")
        )  # fmt: skip
        user = "user root;\n" if os.geteuid() == 0 else ""  # workers must reach the temp folders
        (tmp / "nginx.conf").write_text(
            f"{user}daemon off;\nworker_processes 1;\npid {tmp}/nginx.pid;\n"
            f"error_log {tmp}/error.log warn;\nevents {{ worker_connections 1024; }}\n"
            f"http {{\n  access_log off;\n{temp}\n  include {tmp}/heeldrop.conf;\n}}\n"
        )
        self.log = tmp / "error.log"
        self.proc = subprocess.Popen(
            [nginx_binary(), "-p", str(tmp), "-c", str(tmp / "nginx.conf")],
            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"nginx exited: {self.log.read_text(errors='replace')}")
            try:
                socket.create_connection((HOST, self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise AssertionError("nginx did not listen within 10 s")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=5)


@pytest.fixture(scope="module")
def behind(registry, tmp_path_factory) -> Iterator[tuple[LiveServer, Proxy]]:
    """heeldrop (2 sync workers, trusting one proxy) behind nginx."""
    nginx_binary()
    tmp = tmp_path_factory.mktemp("proxied")
    server = start_server(
        tmp / "app", registry.root.parent,
        env={"HEELDROP_PROXIES": "1", "HEELDROP_FAILED_KEY_LIMIT": "3/minute"},
    )  # fmt: skip
    try:
        proxy = Proxy(tmp / "nginx", server.url.removeprefix("http://"))
        try:
            yield server, proxy
        finally:
            proxy.stop()
    finally:
        server.stop()


def trickle(port: int, head: bytes, drip: bytes, stop: threading.Event, held: list) -> None:
    """Send `head`, then one byte of `drip` a second until `stop` or the peer closes."""
    try:
        conn = socket.create_connection((HOST, port), timeout=5)
    except OSError:
        return
    held.append(conn)
    try:
        conn.sendall(head)
        for byte in drip:
            if stop.wait(1.0):
                break
            conn.sendall(bytes([byte]))
    except OSError:
        pass  # the proxy gave up on us: what it should do, eventually


def attack(port: int, key: str, stop: threading.Event, held: list) -> list[threading.Thread]:
    """50 connections trickling their headers, 20 trickling a body after complete headers."""
    slow_head = (b"GET /livez HTTP/1.1\r\n", b"X-Slow: " + b"a" * 60 + b"\r\n")
    body = json.dumps(BODY).encode()
    slow_body = (
        b"POST /v1/recommendations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + f"Authorization: {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode(),
        body,
    )
    threads = [
        threading.Thread(target=trickle, args=(port, *parts, stop, held), daemon=True)
        for parts in [slow_head] * 50 + [slow_body] * 20
    ]
    for t in threads:
        t.start()
    return threads


def probe(url: str, shop: dict[str, str], rounds: int) -> list[int | str]:
    """`rounds` x (GET /livez, POST a recommendation): each status, or 'timeout'."""
    seen: list[int | str] = []
    for _ in range(rounds):
        for method, path, kwargs in (
            ("GET", "/livez", {}),
            ("POST", "/v1/recommendations", {"json": BODY, "headers": shop}),
        ):
            try:
                r = requests.request(method, url + path, timeout=PROBE_TIMEOUT, **kwargs)
                seen.append(r.status_code)
            except requests.RequestException:
                seen.append("timeout")
        time.sleep(0.2)
    return seen


def run_attack(port: int, url: str, shop: dict[str, str], rounds: int) -> list[int | str]:
    stop, held = threading.Event(), []
    threads = attack(port, shop["Authorization"], stop, held)
    try:
        time.sleep(2)  # every attacking connection is open and has sent something
        return probe(url, shop, rounds)
    finally:
        stop.set()
        for conn in held:
            conn.close()
        for t in threads:
            t.join(timeout=5)


def test_slow_clients_hold_no_worker_behind_the_proxy(behind):
    server, proxy = behind
    seen = run_attack(proxy.port, proxy.url, server.shop, rounds=10)
    assert seen == [200] * 20
    assert server.proc.poll() is None and proxy.proc.poll() is None


def test_without_the_proxy_two_slow_clients_stop_the_sync_workers(behind):
    """Why the proxy is required: the same attack straight on gunicorn leaves no worker free."""
    server, _ = behind
    port = int(server.url.rsplit(":", 1)[1])
    seen = run_attack(port, server.url, server.shop, rounds=1)
    assert seen == ["timeout", "timeout"]
    deadline = time.monotonic() + 40  # the workers come back once the attackers have gone
    while time.monotonic() < deadline and server.recommend().status_code != 200:
        time.sleep(0.5)
    assert server.recommend().status_code == 200


def raw(port: int, request: bytes) -> tuple[int, dict]:
    """Send raw bytes; the status and JSON body of the answer."""
    conn = http.client.HTTPConnection(HOST, port, timeout=10)
    conn.connect()
    assert conn.sock is not None
    conn.sock.sendall(request)
    response = http.client.HTTPResponse(conn.sock, method="GET")
    response.begin()
    assert response.getheader("Content-Type", "").startswith("application/json")
    body = json.loads(response.read())
    conn.close()
    return response.status, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"\x16\x03\x01 not http\r\n\r\n", 400),
        (b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 400),
        (b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"POST /v1/recommendations/batch HTTP/1.1\r\nHost: x\r\nContent-Length: 9000000\r\n"
         b"Content-Type: application/json\r\n\r\n", 413),
    ],
    ids=["not-http", "huge-header", "huge-uri", "huge-body"],
)  # fmt: skip
def test_broken_requests_are_answered_in_the_json_error_shape(behind, request_bytes, status):
    _, proxy = behind
    code, body = raw(proxy.port, request_bytes)
    assert code == status
    assert body["code"] == status and body["message"] and body["errors"] == {}


def post_from(address: str, port: int, key: str) -> int:
    conn = http.client.HTTPConnection(HOST, port, timeout=10, source_address=(address, 0))
    conn.request("POST", "/v1/recommendations", body=json.dumps(BODY),
                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json",
                          "X-Forwarded-For": "203.0.113.9"})  # fmt: skip
    status = conn.getresponse().status
    conn.close()
    return status


def test_the_per_address_key_throttle_counts_each_client_behind_the_proxy(behind):
    """heeldrop takes the address nginx saw (not one a client forges in X-Forwarded-For)."""
    server, proxy = behind
    # Counted per worker (the default memory storage): 10 guesses on 2 workers put at least 5 on
    # one, whose 4th is refused; none of the first 3 can be.
    guesses = [post_from("127.0.0.2", proxy.port, f"guess-{k}") for k in range(10)]
    assert guesses[:3] == [401] * 3 and 429 in guesses and set(guesses) == {401, 429}
    assert post_from("127.0.0.3", proxy.port, "guess-x") == 401  # another client: its own count
    shop_key = server.shop["Authorization"].split()[1]
    assert post_from("127.0.0.4", proxy.port, shop_key) == 200


def test_a_dead_upstream_is_a_json_502(tmp_path):
    proxy = Proxy(tmp_path, f"{HOST}:{free_port()}")  # nothing listens there
    try:
        r = requests.get(f"{proxy.url}/livez", timeout=10)
        assert r.status_code == 502
        assert r.json()["code"] == 502
    finally:
        proxy.stop()


def test_sigterm_under_load_finishes_or_refuses_every_request_in_json(registry, tmp_path):
    """A stopping server finishes what its workers hold; nginx answers the rest 502 in the JSON
    error shape, never a reset connection (straight on gunicorn, the backlog is reset)."""
    nginx_binary()
    server = start_server(tmp_path / "app", registry.root.parent)
    try:
        proxy = Proxy(tmp_path / "nginx", server.url.removeprefix("http://"))
        seen: dict[object, int] = {}
        stop = threading.Event()

        def load() -> None:
            with requests.Session() as session:
                while not stop.is_set():
                    try:
                        r = session.post(f"{proxy.url}/v1/recommendations", json=BODY,
                                         headers=server.shop, timeout=10)  # fmt: skip
                        key: object = (r.status_code, r.json()["code"] if r.status_code != 200
                                       else 200)  # fmt: skip
                    except (requests.RequestException, ValueError) as exc:
                        key = type(exc).__name__
                    seen[key] = seen.get(key, 0) + 1

        threads = [threading.Thread(target=load) for _ in range(6)]
        for t in threads:
            t.start()
        time.sleep(2)
        server.proc.terminate()
        assert server.proc.wait(timeout=40) == 0
        time.sleep(0.5)  # and a moment with nothing listening
        stop.set()
        for t in threads:
            t.join(timeout=15)
        proxy.stop()
    finally:
        server.stop()
    assert set(seen) <= {(200, 200), (502, 502)}, seen
    assert seen.get((200, 200), 0) > 0 and seen.get((502, 502), 0) > 0
