"""The recommendation log and POST /v1/outcomes through the API, on SQLite and (when
HEELDROP_TEST_POSTGRES_URL is set) PostgreSQL: every answer logged under its key's tenant, outcomes
only from that tenant, strict validation, and 503 (nothing answered) when the database fails."""

import json

import pytest
import sqlalchemy as sa
from prometheus_client import REGISTRY

from service.db import Outcome, Recommendation, engine_for, keys

PERSON = {
    "client_ref": "SENTINEL-REF-4411",
    "footwear": {"current_drop_mm": 0, "years_in_heeled_shoes": 20, "weeks_in_current_drop": 8},
    "symptoms": {"calf_tightness": 5, "achilles_pain": 4},
    "person": {"body_mass_kg": 81.25},
}
REPORT = {"weeks_worn": 4, "drop_mm_worn": 6, "outcome": "better",
          "symptoms_after": {"calf_tightness": 2, "achilles_pain": 1}}  # fmt: skip


@pytest.fixture
def shop_app(make_app, url):
    return make_app(database_url=url)


@pytest.fixture
def web(shop_app):
    return shop_app.test_client()


@pytest.fixture
def db(shop_app):
    engine = engine_for(shop_app.config["HEELDROP"].database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def tills(db):
    """Two keys of the tenant "shop-a" and one of "shop-b"."""
    made = {
        "a1": keys.create(db, "a-till-1", tenant="shop-a"),
        "a2": keys.create(db, "a-till-2", tenant="shop-a"),
        "b": keys.create(db, "b-till", tenant="shop-b"),
    }
    return {name: {"Authorization": f"Bearer {token}"} for name, token in made.items()}


def logged(db, table=Recommendation):
    with db.connect() as connection:
        return connection.execute(sa.select(table)).all()


def recommend(web, headers, body=PERSON):
    r = web.post("/v1/recommendations", json=body, headers=headers)
    assert r.status_code == 200, r.json
    return r.json["request_id"]


def outcome(web, headers, request_id, **changes):
    return web.post("/v1/outcomes", json={"request_id": request_id, **REPORT, **changes},
                    headers=headers)  # fmt: skip


def test_an_answer_is_logged_under_its_keys_tenant_by_its_request_id(web, db, tills):
    request_id = recommend(web, tills["a1"])
    (row,) = logged(db)
    assert (row.request_id, row.tenant) == (request_id, "shop-a")
    assert row.request["person"] == {"body_mass_kg": 81.25}
    assert "SENTINEL" not in json.dumps(row.request)


def test_batch_items_are_logged_one_row_each_and_invalid_items_not_at_all(web, db, tills):
    items = [PERSON, {"footwear": {"current_drop_mm": 99}}, {"footwear": {"current_drop_mm": 8}}]
    r = web.post("/v1/recommendations/batch", json={"items": items}, headers=tills["b"])
    assert r.status_code == 200
    ids = [result.get("request_id") for result in r.json["results"]]
    assert ids[1] is None and ids[0] != ids[2]
    assert sorted((row.request_id, row.tenant) for row in logged(db)) == sorted(
        [(ids[0], "shop-b"), (ids[2], "shop-b")]
    )


def test_an_outcome_is_stored_with_a_receipt_and_counted(web, db, tills):
    request_id = recommend(web, tills["a1"])
    before = REGISTRY.get_sample_value("heeldrop_outcomes_total", {"outcome": "better"}) or 0
    r = outcome(web, tills["a2"], request_id)  # another key of the same tenant
    assert r.status_code == 201, r.json
    assert r.json["request_id"] == request_id and len(r.json["outcome_id"]) == 32
    assert r.json["received_at"].startswith("20")
    (row,) = logged(db, Outcome)
    assert (row.outcome_id, row.tenant, row.weeks_worn, row.outcome) == (
        r.json["outcome_id"], "shop-a", 4, "better"
    )  # fmt: skip
    assert row.symptoms_after == REPORT["symptoms_after"]
    after = REGISTRY.get_sample_value("heeldrop_outcomes_total", {"outcome": "better"})
    assert after == before + 1


def test_another_tenants_request_id_gets_the_same_404_as_one_that_never_existed(web, db, tills):
    request_id = recommend(web, tills["a1"])
    theirs = outcome(web, tills["b"], request_id)
    never = outcome(web, tills["b"], "0" * 32)
    assert theirs.status_code == never.status_code == 404
    assert theirs.json == never.json
    assert request_id not in theirs.get_data(as_text=True)
    assert logged(db, Outcome) == []


def test_the_same_weeks_worn_twice_is_409_and_a_later_follow_up_is_201(web, db, tills):
    request_id = recommend(web, tills["a1"])
    assert outcome(web, tills["a1"], request_id).status_code == 201
    again = outcome(web, tills["a1"], request_id, outcome="worse")
    assert again.status_code == 409 and set(again.json) == {"code", "status", "message", "errors"}
    assert outcome(web, tills["a1"], request_id, weeks_worn=12).status_code == 201
    assert sorted((row.weeks_worn, row.outcome) for row in logged(db, Outcome)) == [
        (4, "better"), (12, "better")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"weeks_worn": 105}, "weeks_worn"),
        ({"weeks_worn": 4.5}, "weeks_worn"),
        ({"weeks_worn": True}, "weeks_worn"),
        ({"weeks_worn": "4"}, "weeks_worn"),
        ({"drop_mm_worn": 31}, "drop_mm_worn"),
        ({"drop_mm_worn": -1}, "drop_mm_worn"),
        ({"outcome": "fine"}, "outcome"),
        ({"note": "she says it still hurts"}, "note"),
        ({"symptoms_after": {"achilles_pain": 11}}, "symptoms_after.achilles_pain"),
        ({"symptoms_after": {"numbness_tingling": 2}}, "symptoms_after.numbness_tingling"),
        ({"symptoms_after": {"knee_pain": "2"}}, "symptoms_after.knee_pain"),
        ({"request_id": "a b"}, "request_id"),
        ({"request_id": ""}, "request_id"),
    ],
)
def test_an_invalid_report_is_422_naming_its_field_and_nothing_is_stored(
    web, db, tills, change, field
):
    body = {"request_id": recommend(web, tills["a1"]), **REPORT, **change}
    r = web.post("/v1/outcomes", json=body, headers=tills["a1"])
    assert r.status_code == 422, r.json
    assert field in r.json["errors"]
    assert logged(db, Outcome) == []


@pytest.mark.parametrize("missing", ["request_id", "weeks_worn", "drop_mm_worn", "outcome"])
def test_a_report_missing_a_required_field_is_422(web, tills, missing):
    request_id = recommend(web, tills["a1"])
    body = {"request_id": request_id, **REPORT}
    del body[missing]
    r = web.post("/v1/outcomes", json=body, headers=tills["a1"])
    assert r.status_code == 422 and missing in r.json["errors"]


def test_symptoms_after_may_be_left_out(web, db, tills):
    request_id = recommend(web, tills["a1"])
    body = {k: v for k, v in REPORT.items() if k != "symptoms_after"}
    r = web.post("/v1/outcomes", json={"request_id": request_id, **body}, headers=tills["a1"])
    assert r.status_code == 201
    assert logged(db, Outcome)[0].symptoms_after == {}


def test_outcomes_need_a_key(web, tills):
    request_id = recommend(web, tills["a1"])
    assert web.post("/v1/outcomes", json={"request_id": request_id, **REPORT}).status_code == 401


def test_a_database_that_fails_answers_503_and_nothing_else(web, db, tills, log_text):
    request_id = recommend(web, tills["a1"])
    with db.begin() as connection:
        connection.execute(sa.text("DROP TABLE outcomes"))
        connection.execute(sa.text("DROP TABLE recommendations"))
    for path, body in (
        ("/v1/recommendations", PERSON),
        ("/v1/recommendations/batch", {"items": [PERSON, PERSON]}),
        ("/v1/outcomes", {"request_id": request_id, **REPORT}),
    ):
        r = web.post(path, json=body, headers=tills["a1"])
        assert r.status_code == 503, (path, r.json)
        assert set(r.json) == {"code", "status", "message", "errors"}
        assert "nothing was answered" in r.json["message"]
        assert r.headers["Retry-After"] == "5"
        assert "recommendation" not in r.json
    written = log_text()
    assert written.count('"event":"database_unavailable"') == 3
    for value in ("SENTINEL", "81.25", "INSERT", "achilles"):
        assert value not in written


def test_a_database_that_refuses_connections_is_503_everywhere_and_readyz_says_so(make_app):
    """PostgreSQL stopped after start: /readyz reports it, keyed requests answer 503 with the
    JSON error shape (never a 500), /livez does not wait on it."""
    app = make_app(key_cache_seconds=0)
    gone = engine_for("postgresql+psycopg://nobody@127.0.0.1:1/none")
    app.extensions["heeldrop.log"].engine = gone
    app.extensions["heeldrop.keys"].engine = gone
    web = app.test_client()
    ready = web.get("/readyz")
    assert ready.status_code == 503 and "database" in ready.json["message"]
    r = web.post(
        "/v1/recommendations", json=PERSON, headers={"Authorization": "Bearer hd_" + "x" * 43}
    )
    assert r.status_code == 503 and r.json["code"] == 503 and r.headers["Retry-After"] == "5"
    assert web.get("/livez").status_code == 200
    gone.dispose()
