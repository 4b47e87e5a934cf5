"""Structured JSON logs: one line per request with ids and timings, never a body or health value."""

import json
import logging
import time

import pytest

from service.db import engine_for, keys
from service.logs import JsonFormatter

SENTINELS = ("SENTINEL-CLIENT-REF-7731", "123.456", "SENTINEL_FIELD", "SENTINEL-VALUE",
             "SENTINEL-TYPE", "987.654", "17.25", "63.75", "SENTINEL-KEY-NAME")  # fmt: skip
PERSON = {"age_years": 47, "body_mass_kg": 123.456, "sex": "female"}
VALID = {
    "client_ref": "SENTINEL-CLIENT-REF-7731",
    "person": PERSON,
    "footwear": {"current_drop_mm": 10, "heel_insert_mm": 3},
    "symptoms": {"achilles_pain": 7, "calf_tightness": 4},
    "mobility": {"knee_to_wall_cm": {"left": 17.25, "right": 12},
                 "lunge_angle_deg": {"left": 63.75, "right": 40}},
}  # fmt: skip
INVALID = {
    "client_ref": "SENTINEL-CLIENT-REF-7731",
    "person": {**PERSON, "body_mass_kg": 987.654},
    "footwear": {"current_drop_mm": 10, "current_type": "SENTINEL-TYPE"},
    "SENTINEL_FIELD": "SENTINEL-VALUE",
}


@pytest.fixture
def lines(log_text):
    """What the `heeldrop` logger writes, as parsed JSON."""
    return lambda: [json.loads(line) for line in log_text().splitlines()]


@pytest.fixture
def caller(app, db_url):
    token = keys.create(engine_for(db_url), "SENTINEL-KEY-NAME")
    return token, {"Authorization": f"Bearer {token}"}


def _send_everything(client, headers):
    """Requests carrying sentinels through every answer: ok, invalid, malformed, too big, batch."""
    sent = []

    def send(method, path, status, **kwargs):
        request_id = f"log-test-{len(sent)}"
        r = client.open(path, method=method, headers={**kwargs.pop("headers", headers),
                        "X-Request-ID": request_id}, **kwargs)  # fmt: skip
        assert r.status_code == status, (path, r.status_code)
        sent.append((request_id, path, status))

    send("POST", "/v1/recommendations", 200, json=VALID)
    send("POST", "/v1/recommendations", 422, json=INVALID)
    send("POST", "/v1/recommendations", 400, data=json.dumps(VALID)[:-3],
         content_type="application/json")  # fmt: skip
    send("POST", "/v1/recommendations", 415, data=json.dumps(VALID), content_type="text/plain")
    send("POST", "/v1/recommendations", 413, json={**VALID, "client_ref": "x" * 70_000})
    send("POST", "/v1/recommendations/batch", 200, json={"items": [VALID, INVALID, VALID]})
    send("POST", "/v1/recommendations/batch", 422, json={"items": [], "SENTINEL_FIELD": 123.456})
    send("GET", "/v1/model", 200)
    send(
        "POST",
        "/v1/outcomes",
        404,
        json={
            "request_id": "SENTINEL-VALUE",
            "weeks_worn": 6,
            "drop_mm_worn": 17.25,
            "outcome": "worse",
        },
    )
    send(
        "POST",
        "/v1/outcomes",
        422,
        json={
            "request_id": "SENTINEL-VALUE",
            "weeks_worn": 6,
            "drop_mm_worn": 123.456,
            "outcome": "worse",
        },
    )
    send("POST", "/v1/recommendations", 401, json=VALID, headers={})
    return sent


def test_no_sentinel_or_health_value_reaches_any_log(client, caller, lines, caplog):
    token, headers = caller
    caplog.set_level(logging.DEBUG)
    _send_everything(client, headers)
    written = lines()
    assert written
    everything = "\n".join(json.dumps(line) for line in written)
    everything += "\n" + "\n".join(record.getMessage() for record in caplog.records)
    for sentinel in (*SENTINELS, token, token.removeprefix("hd_")):
        assert sentinel not in everything


def test_each_request_has_one_line_with_its_ids_route_status_timing_model_and_key_hash(
    client, caller, lines, registry
):
    token, headers = caller
    sent = _send_everything(client, headers)
    requests = [line for line in lines() if line.get("event") == "request"]
    keys_seen = set()
    for request_id, path, status in sent:
        (line,) = [line for line in requests if line["request_id"] == request_id]
        assert line["route"] == path
        assert line["status"] == status
        assert isinstance(line["latency_ms"], int | float) and line["latency_ms"] >= 0
        assert line["model_version"] == registry.champion()
        assert line["level"] == "info" and line["ts"]
        if status == 401:
            assert line["key"] is None
        else:
            assert isinstance(line["key"], str) and len(line["key"]) >= 8
            keys_seen.add(line["key"])
    (key_hash,) = keys_seen
    assert key_hash not in token and "SENTINEL" not in key_hash


def test_two_keys_are_told_apart_by_their_hashes(client, caller, lines, db_url):
    _, headers = caller
    other = keys.create(engine_for(db_url), "other")
    client.get("/v1/model", headers=headers)
    client.get("/v1/model", headers={"Authorization": f"Bearer {other}"})
    hashes = [line["key"] for line in lines() if line.get("event") == "request"]
    assert len(hashes) == 2 and hashes[0] != hashes[1]


def test_an_unexpected_error_is_logged_by_type_and_place_never_its_message(
    app, client, caller, lines, monkeypatch
):
    _, headers = caller
    serving = app.extensions["heeldrop"]

    def explode(*args, **kwargs):
        raise ValueError(f"cannot handle {VALID}")

    monkeypatch.setattr(serving.recommender, "explain", explode)
    r = client.post("/v1/recommendations", json=VALID, headers=headers)
    assert r.status_code == 500 and r.json["code"] == 500
    assert "SENTINEL" not in r.get_data(as_text=True)
    (error,) = [line for line in lines() if line.get("event") == "error"]
    assert error["reason"].startswith("ValueError at ")
    assert error["request_id"] == r.headers["X-Request-ID"]
    for sentinel in SENTINELS:
        assert sentinel not in json.dumps(lines())


def test_the_formatter_writes_ts_level_msg_and_only_the_known_fields():
    formatter = JsonFormatter()
    record = logging.LogRecord("heeldrop", logging.WARNING, __file__, 1, "model %s", ("x",), None)
    record.__dict__.update(event="model_refused", reason="caf\u00e9 \ud800", status=409,
                           body=VALID, latency_ms=1.5)  # fmt: skip
    for created in (1764633600.25, 1764633600.75, 1764633601.0, 1764633659.999):
        record.created = created
        line = json.loads(formatter.format(record))
        assert line == {"ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created)),
                        "level": "warning", "msg": "model x", "event": "model_refused",
                        "reason": "caf\u00e9 \ud800", "status": 409, "latency_ms": 1.5}  # fmt: skip
        assert list(line)[:3] == ["ts", "level", "msg"]
    record.reason = "plain"
    assert json.loads(formatter.format(record))["reason"] == "plain"
