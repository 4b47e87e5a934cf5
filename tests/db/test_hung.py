"""A PostgreSQL server that stops answering (a frozen host, SIGSTOP) without closing anything.

Between heeldrop and the test server sits a loopback relay that can freeze: it keeps every
connection open and stops passing bytes, as a stopped server does (the kernel still accepts what
is sent). Every call must fail within a few seconds (service.db.HUNG_SECONDS), as 503 in the
API, and work again once the server answers.
"""

import socket
import threading
import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from service.db import HUNG_SECONDS, Unavailable, engine_for, keys, ping, upgrade

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
BODY = {"footwear": {"current_drop_mm": 8}}


class Relay:
    """A TCP relay on loopback to `target` that passes bytes until frozen."""

    def __init__(self, target: tuple[str, int]):
        self.target = target
        self.frozen = threading.Event()
        self.closed = threading.Event()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.sockets: list[socket.socket] = [self.server]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.closed.is_set():
            try:
                client, _ = self.server.accept()
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                return
            upstream.settimeout(None)
            self.sockets += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                while self.frozen.is_set() and not self.closed.is_set():
                    time.sleep(0.05)
                b.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.closed.set()
        for s in self.sockets:
            s.close()


@pytest.fixture
def relayed(postgres_url) -> Iterator[tuple[str, Relay]]:
    """The test database's URL through a relay, and the relay."""
    url = sa.make_url(postgres_url)
    relay = Relay((url.host or "127.0.0.1", url.port or 5432))
    upgrade(postgres_url)
    yield url.set(host="127.0.0.1", port=relay.port).render_as_string(hide_password=False), relay
    relay.close()


def timed(call) -> tuple[float, BaseException | None]:
    start = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - start, exc
    return time.monotonic() - start, None


def test_a_frozen_server_fails_a_pooled_connection_within_the_deadline(relayed):
    url, relay = relayed
    engine = engine_for(url)
    ping(engine)  # a pooled connection, then the server freezes
    relay.frozen.set()
    seconds, error = timed(lambda: ping(engine))
    assert isinstance(error, Unavailable)
    assert HUNG_SECONDS - 0.5 < seconds < HUNG_SECONDS + 2
    relay.frozen.clear()
    ping(engine)  # answered again: a new connection replaces the one given up
    engine.dispose()


def test_a_frozen_server_mid_statement_fails_it_and_nothing_waits_on_a_rollback(relayed):
    url, relay = relayed
    engine = engine_for(url)
    with engine.connect() as connection:
        connection.execute(sa.text("SELECT 1"))
        relay.frozen.set()
        seconds, error = timed(lambda: connection.execute(sa.text("SELECT 2")))
    assert isinstance(error, sa.exc.OperationalError)
    assert seconds < HUNG_SECONDS + 2
    relay.frozen.clear()
    ping(engine)
    engine.dispose()


def test_the_api_answers_503_in_json_within_seconds_and_livez_does_not_wait(relayed, make_app):
    url, relay = relayed
    engine = engine_for(url)
    shop = keys.create(engine, "shop")
    engine.dispose()
    app = make_app(database_url=url, key_cache_seconds=0.0)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {shop}"}
    assert client.post("/v1/recommendations", json=BODY, headers=headers).status_code == 200
    relay.frozen.set()
    start = time.monotonic()
    r = client.post("/v1/recommendations", json=BODY, headers=headers)
    assert r.status_code == 503 and r.json["code"] == 503 and r.headers["Retry-After"]
    assert time.monotonic() - start < 2 * HUNG_SECONDS + 2  # the key check, then the log write
    assert client.get("/livez").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 503 and "database" in ready.json["message"]
    relay.frozen.clear()
    assert client.post("/v1/recommendations", json=BODY, headers=headers).status_code == 200
