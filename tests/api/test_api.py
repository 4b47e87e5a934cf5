"""The HTTP contract through the Flask test client."""

import json
import re
import shutil

import pytest
import sklearn
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.test import EnvironBuilder, run_wsgi_app

from service.core.fields import FIELDS
from service.core.rules import rules_version
from tests.strategies import JSON, put, requests

ONE = {"footwear": {"current_drop_mm": 8}}
BANDS = {"zero", "low", "moderate", "high", "lift"}
DIRECTIONS = {"keep", "lower_gradually", "raise", "step_back_up"}
SPEC_ROUTES = {
    ("post", "/v1/recommendations"),
    ("post", "/v1/recommendations/batch"),
    ("get", "/v1/model"),
    ("get", "/v1/rules"),
    ("get", "/livez"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("post", "/admin/reload"),
}


def assert_error(response, code):
    """The one error shape, with `code` as both the status and the body's code."""
    assert response.status_code == code
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"code", "status", "message", "errors"}
    assert body["code"] == code
    assert body["status"] == HTTP_STATUS_CODES[code]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], dict)
    assert "Traceback" not in response.get_data(as_text=True)
    return body


def post(client, headers, body, path="/v1/recommendations"):
    return client.post(path, json=body, headers=headers)


@pytest.fixture
def champion(registry):
    return registry.champion()


@pytest.fixture
def rules_only_client(make_app, tmp_path, shop):
    """A client of an app whose registry is empty: rules only."""
    return make_app(models_dir=tmp_path / "empty").test_client()


# --- POST /v1/recommendations -------------------------------------------------------------


def test_a_recommendation_has_every_field_of_the_spec(client, shop, champion):
    body = {"client_ref": "order-17", "footwear": {"current_drop_mm": 12},
            "symptoms": {"achilles_pain": 6}}  # fmt: skip
    r = post(client, shop, body)
    assert r.status_code == 200 and r.mimetype == "application/json"
    out = r.get_json()
    assert set(out) == {"request_id", "client_ref", "recommendation", "explanation", "advice",
                        "degraded"}  # fmt: skip
    rec = out["recommendation"]
    assert set(rec) == {"drop_mm", "band", "direction", "transition_plan", "confidence",
                        "refer_to_clinician", "referral", "follow_up"}  # fmt: skip
    assert 0 <= rec["drop_mm"]["min"] <= rec["drop_mm"]["max"] <= 30
    assert rec["band"] in BANDS and rec["direction"] in DIRECTIONS
    assert 0.0 <= rec["confidence"] <= 1.0
    assert rec["refer_to_clinician"] is (rec["referral"] is not None)
    assert set(rec["follow_up"]) == {"retest_weeks", "step_back_if"}
    explanation = out["explanation"]
    assert set(explanation) == {"summary", "rules", "model", "missing_inputs"}
    assert explanation["summary"]
    assert "HD011" in [rule["id"] for rule in explanation["rules"]]
    for rule in explanation["rules"]:
        assert set(rule) == {"id", "name", "effect", "message", "rationale", "overruled"}
    model = explanation["model"]
    assert set(model) == {"version", "trained_on", "band_probabilities", "top_band",
                          "factors_explain", "top_factors", "overridden_by_rules"}  # fmt: skip
    assert model["trained_on"] == "simulated"
    assert model["factors_explain"] == model["top_band"]
    for factor in model["top_factors"]:
        assert set(factor) == {"feature", "label", "value", "unit", "contribution"}
    assert model["version"] == champion
    assert set(model["band_probabilities"]) == BANDS
    assert all(set(a) == {"id", "text"} for a in out["advice"])
    assert out["degraded"] is False


def test_an_answer_is_the_json_flask_s_own_encoder_writes(app, client, shop):
    from flask.json.provider import DefaultJSONProvider

    r = post(client, shop, {"client_ref": "caf\u00e9 17", "footwear": {"current_drop_mm": 12},
                            "symptoms": {"achilles_pain": 6}})  # fmt: skip
    assert r.status_code == 200 and r.mimetype == "application/json"
    raw = r.get_data()
    assert raw.endswith(b"}\n") and "café 17".encode() in raw
    flask_s = DefaultJSONProvider(app)
    flask_s.sort_keys = False
    body = json.loads(raw)
    assert body["client_ref"] == "café 17"
    assert json.loads(flask_s.dumps(body)) == body
    assert list(body) == ["request_id", "client_ref", "recommendation", "explanation", "advice",
                          "degraded"]  # fmt: skip  # the order the code builds it in


def test_what_orjson_refuses_is_encoded_by_flask_s_encoder(app):
    import dataclasses
    import datetime
    import decimal
    import uuid

    @dataclasses.dataclass
    class Point:
        x: int

    when = datetime.datetime(2026, 11, 25, 8, 30, tzinfo=datetime.UTC)
    cases = [
        {"ref": "a\ud800b"},  # a lone surrogate, as an echoed client_ref may hold
        {"big": 2**70, "small": -(2**70)},
        {1: "non-string key", "k": None},
        {"when": when, "day": when.date(), "p": Point(3), "d": decimal.Decimal("1.5"),
         "u": uuid.UUID(int=7)},
        [1.5, 0.1, 1e-7, 1e300, -0.0, True, None, "x", (1, 2)],
    ]  # fmt: skip
    for obj in cases:
        flask_s = json.dumps(obj, default=app.json.default, sort_keys=False)
        assert json.loads(app.json.dumps(obj)) == json.loads(flask_s)
        with app.app_context():
            response = app.json.response(obj)
        assert json.loads(response.get_data()) == json.loads(flask_s)
    assert json.loads(app.json.dumps({"when": when}))["when"] == "Wed, 25 Nov 2026 08:30:00 GMT"
    with pytest.raises(TypeError):
        app.json.dumps({"x": object()})
    # the one difference: non-finite floats are null (Flask's encoder writes NaN, not JSON)
    assert json.loads(app.json.dumps([float("nan"), float("inf"), 1.0])) == [None, None, 1.0]


def test_the_client_ref_is_echoed_and_null_when_absent(client, shop):
    assert post(client, shop, {**ONE, "client_ref": "shop-42/a"}).json["client_ref"] == "shop-42/a"
    assert post(client, shop, ONE).json["client_ref"] is None


def test_a_given_request_id_is_echoed_and_the_answer_gets_an_id_of_its_own(client, shop):
    """The caller's X-Request-ID correlates; the answer's id (what outcomes quote) is issued by
    the service, so two answers never share one, whatever callers send."""
    first = post(client, {**shop, "X-Request-ID": "trace-1.a_B"}, ONE)
    again = post(client, {**shop, "X-Request-ID": "trace-1.a_B"}, ONE)
    assert first.headers["X-Request-ID"] == "trace-1.a_B" == again.headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", first.json["request_id"])
    assert first.json["request_id"] != again.json["request_id"]


def test_a_request_id_is_generated_when_none_is_given(client, shop):
    first, second = post(client, shop, ONE), post(client, shop, ONE)
    assert first.headers["X-Request-ID"] == first.json["request_id"]
    assert re.fullmatch(r"[A-Za-z0-9._-]{8,64}", first.headers["X-Request-ID"])
    assert first.headers["X-Request-ID"] != second.headers["X-Request-ID"]


@pytest.mark.parametrize("given", ["has space", "x" * 65, "a/b", "<script>", "a;b=c"])
def test_an_invalid_request_id_is_replaced(client, shop, given):
    r = post(client, {**shop, "X-Request-ID": given}, ONE)
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] != given
    assert r.json["request_id"] == r.headers["X-Request-ID"]  # none given: one id for both
    assert re.fullmatch(r"[A-Za-z0-9._-]{1,64}", r.headers["X-Request-ID"])


def test_answers_carry_the_serving_model_version(client, shop, champion):
    r = post(client, shop, ONE)
    assert r.headers["X-Model-Version"] == champion


# --- errors -------------------------------------------------------------------------------


def test_malformed_json_is_400(client, shop):
    r = client.post("/v1/recommendations", data='{"footwear": ', headers=shop,
                    content_type="application/json")  # fmt: skip
    assert_error(r, 400)


def test_no_key_is_401_naming_the_bearer_scheme(client):
    r = post(client, {}, ONE)
    assert_error(r, 401)
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_shop_key_on_an_admin_route_is_403(client, shop):
    assert_error(client.post("/admin/reload", headers=shop), 403)


@pytest.mark.parametrize("path", ["/v1/nope", "/nope", "/v1/recommendations/1"])
def test_an_unknown_path_is_404(client, shop, path):
    assert_error(client.get(path, headers=shop), 404)


def test_a_wrong_method_is_405_naming_the_allowed_ones(client, shop):
    r = client.get("/v1/recommendations", headers=shop)
    assert_error(r, 405)
    assert "POST" in r.headers["Allow"]
    assert_error(client.delete("/v1/model", headers=shop), 405)


def test_a_body_over_max_body_bytes_is_413(make_app, shop_key):
    app = make_app(max_body_bytes=1000)
    headers = {"Authorization": f"Bearer {shop_key}"}
    client = app.test_client()
    big = {**ONE, "client_ref": "x" * 1000}
    body = assert_error(post(client, headers, big), 413)
    assert "1000" in body["message"]
    # the batch route has its own, larger limit
    batch = {"items": [ONE] + [{"footwear": {"current_drop_mm": 99}}] * 40}
    assert len(json.dumps(batch)) > 1000
    assert post(client, headers, batch, "/v1/recommendations/batch").status_code == 200


def test_a_batch_over_max_batch_body_bytes_is_413(make_app, shop_key):
    client = make_app(max_batch_body_bytes=2000).test_client()
    batch = {"items": [ONE] * 100}
    r = post(client, {"Authorization": f"Bearer {shop_key}"}, batch, "/v1/recommendations/batch")
    assert_error(r, 413)


def test_a_chunked_body_over_the_limit_is_413_too(make_app, shop_key):
    app = make_app(max_body_bytes=1000)
    data = json.dumps({**ONE, "client_ref": "x" * 5000}).encode()
    environ = EnvironBuilder(
        path="/v1/recommendations", method="POST", data=data, content_type="application/json",
        headers={"Authorization": f"Bearer {shop_key}"},
    ).get_environ()  # fmt: skip
    del environ["CONTENT_LENGTH"]  # as gunicorn passes a chunked body on
    environ["wsgi.input_terminated"] = True
    body, status, _ = run_wsgi_app(app, environ, buffered=True)
    assert status.startswith("413")
    assert json.loads(b"".join(body))["code"] == 413


@pytest.mark.parametrize(
    "kwargs",
    [
        {"data": "footwear.current_drop_mm=8", "content_type": "application/x-www-form-urlencoded"},
        {"data": json.dumps(ONE), "content_type": "text/plain"},
        {"data": json.dumps(ONE)},
    ],
    ids=["form", "text", "no-content-type"],
)
def test_a_body_that_is_not_json_is_415(client, shop, kwargs):
    assert_error(client.post("/v1/recommendations", headers=shop, **kwargs), 415)


def test_invalid_fields_are_422_keyed_by_field_path(client, shop):
    body = {
        "footwear": {"current_drop_mm": 31, "surprise": 1},
        "mobility": {"knee_to_wall_cm": {"left": 26}},
        "symptoms": {"achilles_pain": 2.5},
        "unknown_group": {},
    }
    errors = assert_error(post(client, shop, body), 422)["errors"]
    assert set(errors) == {
        "footwear.current_drop_mm", "footwear.surprise", "mobility.knee_to_wall_cm.left",
        "symptoms.achilles_pain", "unknown_group",
    }  # fmt: skip
    assert all(isinstance(m, list) and m and all(isinstance(s, str) for s in m)
               for m in errors.values())  # fmt: skip


def test_a_missing_current_drop_is_422_naming_it(client, shop):
    errors = assert_error(post(client, shop, {"footwear": {"heel_insert_mm": 3}}), 422)["errors"]
    assert list(errors) == ["footwear.current_drop_mm"]
    assert "footwear" in assert_error(post(client, shop, {}), 422)["errors"]


def test_a_client_ref_over_64_characters_is_422(client, shop):
    errors = assert_error(post(client, shop, {**ONE, "client_ref": "x" * 65}), 422)["errors"]
    assert list(errors) == ["client_ref"]


# --- batch --------------------------------------------------------------------------------


@pytest.fixture(params=["model", "rules_only"])
def batch_client(request, client, rules_only_client):
    return client if request.param == "model" else rules_only_client


def test_a_batch_answers_in_order_with_invalid_items_in_place(batch_client, shop):
    items = [
        {"client_ref": "a", "footwear": {"current_drop_mm": 0}},
        {"client_ref": "b", "footwear": {"current_drop_mm": 99}},
        {"client_ref": "c", "footwear": {"current_drop_mm": 12}},
        None,
        {"client_ref": "e", "footwear": {"current_drop_mm": 4}},
        [1, 2],
    ]
    r = post(batch_client, shop, {"items": items}, "/v1/recommendations/batch")
    assert r.status_code == 200
    results = r.json["results"]
    assert len(results) == len(items)
    assert [results[i]["client_ref"] for i in (0, 2, 4)] == ["a", "c", "e"]
    for i in (1, 3, 5):
        assert set(results[i]) == {"index", "error"} and results[i]["index"] == i
        error = results[i]["error"]
        assert set(error) == {"code", "status", "message", "errors"} and error["code"] == 422
    assert list(results[1]["error"]["errors"]) == ["footwear.current_drop_mm"]


def test_a_batch_with_one_valid_item_answers_it_like_the_single_route(client, shop):
    items = [{"footwear": {}}, {**ONE, "client_ref": "x"}, {"footwear": {"current_drop_mm": -1}}]
    results = post(client, shop, {"items": items}, "/v1/recommendations/batch").json["results"]
    single = post(client, shop, {**ONE, "client_ref": "x"}).json
    assert results[1]["recommendation"] == single["recommendation"]
    assert [results[0]["index"], results[2]["index"]] == [0, 2]


def test_a_batch_of_1000_items_is_accepted(batch_client, shop):
    items = [{"client_ref": str(i), "footwear": {"current_drop_mm": i % 31}} for i in range(1000)]
    r = post(batch_client, shop, {"items": items}, "/v1/recommendations/batch")
    assert r.status_code == 200
    assert [result["client_ref"] for result in r.json["results"]] == [str(i) for i in range(1000)]


@pytest.mark.parametrize(
    "body",
    [{"items": []}, {"items": [ONE] * 1001}, {"items": ONE}, {"items": "x"}, {}, {"items": [ONE],
     "extra": 1}],
    ids=["empty", "1001", "object", "string", "missing", "unknown-key"],
)  # fmt: skip
def test_a_batch_outside_1_to_1000_items_or_not_a_list_is_422(client, shop, body):
    errors = assert_error(post(client, shop, body, "/v1/recommendations/batch"), 422)["errors"]
    assert set(errors) <= {"items", "extra"} and errors


# --- the model, health and reloads --------------------------------------------------------


def test_the_model_route_describes_the_serving_model(client, shop, registry, champion):
    r = client.get("/v1/model", headers=shop)
    assert r.status_code == 200
    info = r.json
    assert info["version"] == champion == r.headers["X-Model-Version"]
    assert info["trained_at"] == registry.metadata(champion)["trained_at"]
    assert {"macro_f1", "log_loss"} <= set(info["metrics"])
    assert info["scikit_learn_version"] == sklearn.__version__
    assert re.fullmatch(r"[0-9a-f]{64}", info["training_data_digest"])
    assert info["trained_on"] == "simulated"
    assert info["training_rows"] == {"files (simulated)": 4000}
    assert info["degraded"] is False


def test_livez_is_200(client):
    assert client.get("/livez").status_code == 200


def test_readyz_is_200_with_a_model(client, champion):
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json["model_version"] == champion


def test_an_empty_registry_is_not_ready_but_still_recommends_with_the_rules(
    rules_only_client, shop
):
    body = assert_error(rules_only_client.get("/readyz"), 503)
    assert "champion" in body["message"]
    r = post(rules_only_client, shop, {"footwear": {"current_drop_mm": 0},
                                       "symptoms": {"achilles_pain": 6}})  # fmt: skip
    assert r.status_code == 200
    assert r.json["degraded"] is True
    assert r.json["explanation"]["model"]["version"] is None
    assert "HD011" in [rule["id"] for rule in r.json["explanation"]["rules"]]
    assert "X-Model-Version" not in r.headers
    assert rules_only_client.get("/v1/model", headers=shop).json["degraded"] is True


def test_an_admin_reload_loads_the_champion(client, admin, champion):
    r = client.post("/admin/reload", headers=admin)
    assert r.status_code == 200
    assert r.json["version"] == champion and r.json["previous"] == champion


def test_a_tampered_champion_is_refused_and_the_old_model_keeps_serving(
    make_app, registry, tmp_path, champion
):
    models = tmp_path / "models"
    shutil.copytree(registry.root.parent, models)
    app = make_app(models_dir=models)
    from service.db import engine_for, keys

    engine = engine_for(app.config["HEELDROP"].database_url)
    admin = {"Authorization": f"Bearer {keys.create(engine, 'ops', admin=True)}"}
    client = app.test_client()
    with open(models / "registry" / champion / "model.skops", "ab") as fh:
        fh.write(b"tampered")
    body = assert_error(client.post("/admin/reload", headers=admin), 409)
    assert champion in body["message"]
    assert client.get("/v1/model", headers=admin).json["version"] == champion
    r = post(client, admin, ONE)
    assert r.status_code == 200 and r.headers["X-Model-Version"] == champion
    assert client.get("/readyz").status_code == 200


# --- documents and metrics ----------------------------------------------------------------


def test_openapi_json_is_a_valid_openapi_3_document_of_every_spec_route(client):
    from schemathesis.specs.openapi.definitions import OPENAPI_30_VALIDATOR

    r = client.get("/openapi.json")
    assert r.status_code == 200
    doc = r.json
    assert doc["openapi"].startswith("3.")
    OPENAPI_30_VALIDATOR.validate(doc)
    listed = {(method, path) for path, ops in doc["paths"].items() for method in ops}
    assert listed >= SPEC_ROUTES


def test_docs_is_a_page_naming_every_path(client):
    r = client.get("/docs")
    assert r.status_code == 200 and r.mimetype == "text/html"
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    page = r.get_data(as_text=True)
    for _, path in SPEC_ROUTES:
        assert path in page


def test_answers_about_a_person_are_never_cached(client, shop):
    """Recommendations and refusals behind a key say no-store; every answer says nosniff."""
    for r in (
        post(client, shop, ONE),
        post(client, shop, {"footwear": {}}),
        client.get("/v1/model"),
        client.post("/v1/recommendations/batch", json={"items": [ONE]}, headers=shop),
    ):
        assert r.headers["Cache-Control"] == "no-store", r.status_code
        assert r.headers["X-Content-Type-Options"] == "nosniff"
    for path in ("/livez", "/openapi.json", "/docs"):
        r = client.get(path)
        assert "Cache-Control" not in r.headers and r.headers["X-Content-Type-Options"] == "nosniff"


def _operations(doc):
    return [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def test_the_errors_a_route_answers_with_are_in_its_document(client, shop):
    """Each keyed route's 401, each body route's 415 and 400, the admin route's 403 for a shop
    key: the status the server gives is one the operation documents, with the error schema."""
    doc = client.get("/openapi.json").json
    error = {"$ref": "#/components/schemas/Error"}
    answered = set()
    for method, path, op in _operations(doc):
        calls = []
        if op.get("security", doc["security"]) != []:
            calls.append(getattr(client, method)(path))
        if method == "post" and path.startswith("/v1/"):
            calls.append(client.post(path, data="x", headers=shop))
            calls.append(
                client.post(path, data="{", headers={**shop, "Content-Type": "application/json"})
            )
        if path.startswith("/admin"):
            calls.append(client.post(path, headers=shop))
        for r in calls:
            answered.add(r.status_code)
            documented = op["responses"].get(str(r.status_code))
            assert documented, (method, path, r.status_code)
            ref = documented["$ref"].rsplit("/", 1)[1]
            assert (
                doc["components"]["responses"][ref]["content"]["application/json"]["schema"]
                == error
            )
    assert answered == {400, 401, 403, 415}
    for method, path, op in _operations(doc):  # answered by the limiter and the size check
        if op.get("security", doc["security"]) != []:
            assert "429" in op["responses"], (method, path)
        if method == "post" and path.startswith("/v1/"):
            assert "413" in op["responses"], (method, path)


def _samples(client):
    text = client.get("/metrics").get_data(as_text=True)
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_requests_bands_rules_and_the_model_version(client, shop, champion):
    before = _samples(client)
    answers = [post(client, shop, {"footwear": {"current_drop_mm": d}}).json for d in (0, 8, 8)]
    post(client, shop, {"footwear": {"current_drop_mm": 99}})
    after = _samples(client)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    route = "/v1/recommendations"
    assert delta("heeldrop_http_requests_total", route=route, method="POST", status="200") == 3
    assert delta("heeldrop_http_requests_total", route=route, method="POST", status="422") == 1
    assert delta("heeldrop_http_request_seconds_count", route=route, method="POST") == 4
    bands = [a["recommendation"]["band"] for a in answers]
    for band in set(bands):
        assert delta("heeldrop_recommended_bands_total", band=band) == bands.count(band)
    fired = [rule["id"] for a in answers for rule in a["explanation"]["rules"]
             if not rule["overruled"]]  # fmt: skip
    assert fired
    for rule in set(fired):
        assert delta("heeldrop_rule_firings_total", rule=rule) == fired.count(rule)
    assert after[("heeldrop_model_info", (("version", champion),))] == 1


def test_metrics_count_each_batch_item_and_referrals(client, shop):
    items = [
        {"footwear": {"current_drop_mm": 0}},
        {"footwear": {"current_drop_mm": 8}, "symptoms": {"calf_swelling_one_side": True}},
        {"footwear": {"current_drop_mm": 8}, "symptoms": {"numbness_tingling": 6}},
        {"footwear": {"current_drop_mm": 99}},  # invalid: counted by no band or rule
        {"footwear": {"current_drop_mm": 8}, "symptoms": {"numbness_tingling": 6}},
        {"footwear": {"current_drop_mm": 12}, "symptoms": {"achilles_pain": 6}},
    ]
    before = _samples(client)
    r = post(client, shop, {"items": items}, "/v1/recommendations/batch")
    single = post(client, shop, items[5])
    after = _samples(client)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    answers = [*(a for a in r.json["results"] if "recommendation" in a), single.json]
    assert len(answers) == 6
    bands = [a["recommendation"]["band"] for a in answers]
    for band in set(bands):
        assert delta("heeldrop_recommended_bands_total", band=band) == bands.count(band)
    assert sum(delta("heeldrop_recommended_bands_total", band=b) for b in BANDS) == 6
    fired = [rule["id"] for a in answers for rule in a["explanation"]["rules"]
             if not rule["overruled"]]  # fmt: skip
    assert {"HD001", "HD002"} <= set(fired)
    for rule in set(fired):
        assert delta("heeldrop_rule_firings_total", rule=rule) == fired.count(rule)
    assert delta("heeldrop_referrals_total", urgency="today") == 1
    assert delta("heeldrop_referrals_total", urgency="soon") == 2
    batch = {"route": "/v1/recommendations/batch", "method": "POST"}
    assert delta("heeldrop_http_requests_total", status="200", **batch) == 1
    assert delta("heeldrop_http_request_seconds_count", **batch) == 1
    assert delta("heeldrop_http_request_seconds_sum", **batch) > 0


def test_metrics_label_methods_outside_http_s_own_as_other(client):
    before = _samples(client)
    for method in ("BREW", "WHEN", "BREW"):
        assert client.open("/livez", method=method).status_code == 405
    assert client.open("/nowhere", method="GET").status_code == 404
    after = _samples(client)

    def delta(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0) - before.get(key, 0)

    other = {"route": "unmatched", "method": "other"}  # a 405 matched no rule
    assert delta("heeldrop_http_requests_total", status="405", **other) == 3
    assert delta("heeldrop_http_request_seconds_count", **other) == 3
    unmatched = {"route": "unmatched", "method": "GET", "status": "404"}
    assert delta("heeldrop_http_requests_total", **unmatched) == 1
    assert not any(dict(labels).get("method") in ("BREW", "WHEN") for _, labels in after)


def test_metrics_are_prometheus_text(client):
    r = client.get("/metrics")
    assert r.status_code == 200 and r.mimetype == "text/plain"


def test_metrics_whose_files_vanish_while_read_are_a_503_not_a_500(client, tmp_path, monkeypatch):
    """Under gunicorn a worker that exits has its files removed while another reads them; a
    file listed but gone when opened (here a dangling link, gone every time) is a 503."""
    (tmp_path / "counter_1.db").symlink_to(tmp_path / "removed")
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    r = client.get("/metrics")
    assert_error(r, 503)
    assert "try again" in r.get_json()["message"]


# --- hostile input ------------------------------------------------------------------------

HOSTILE = [
    '{"a":' * 5000 + "1" + "}" * 5000,
    "[" * 5000 + "]" * 5000,
    '{"footwear": {"current_drop_mm": 1e400}}',
    '{"footwear": {"current_drop_mm": -1e400}}',
    '{"footwear": {"current_drop_mm": NaN}}',
    '{"footwear": {"current_drop_mm": Infinity}}',
    '{"footwear": {"current_drop_mm": 1' + "0" * 5000 + "}}",
    '{"footwear": {"current_drop_mm": 8}, "client_ref": "\\u00e9\\ud83d\\ude00\\u0000\\ud800"}',
    '{"footwear": {"current_drop_mm": 8, "\\u2603": 1}, "\\ud83d\\ude00": {}}',
    '{"footwear": [8], "person": [], "mobility": {"knee_to_wall_cm": [1, 2]}}',
    '{"footwear": {"current_drop_mm": [8]}, "symptoms": {"achilles_pain": {"x": 1}}}',
    '{"client_ref": null, "person": null, "footwear": {"current_drop_mm": null}, '
    '"mobility": {"knee_to_wall_cm": null, "measured_in": null}}',
    '{"footwear": {"current_drop_mm": true}}',
    '{"footwear": {"current_drop_mm": "8"}, "person": {"sex": 1}}',
    "null",
    "[]",
    '"a string"',
    "12",
    "",
    '{"footwear": {"current_drop_mm": 8}, "footwear": null}',
]


@pytest.mark.parametrize("path", ["/v1/recommendations", "/v1/recommendations/batch"])
def test_no_hostile_body_gives_a_500(client, shop, path):
    for raw in HOSTILE:
        for data in (raw, f'{{"items": [{raw or "null"}]}}'):
            r = client.post(path, data=data, headers=shop,
                            content_type="application/json")  # fmt: skip
            assert r.status_code in (200, 400, 413, 422), (raw[:60], r.status_code)
            if r.status_code != 200:
                assert_error(r, r.status_code)


def test_after_a_reload_only_the_serving_version_is_reported_as_loaded():
    from prometheus_client.parser import text_string_to_metric_families

    from service.api import metrics

    metrics.show_model("v-old")
    metrics.show_model("v-new")
    body, _ = metrics.render()
    info = {
        s.labels["version"]: s.value
        for family in text_string_to_metric_families(body.decode())
        for s in family.samples
        if s.name == "heeldrop_model_info"
    }
    assert info["v-old"] == 0 and info["v-new"] == 1


def test_metrics_read_past_a_workers_file_not_yet_sized(tmp_path, monkeypatch):
    # prometheus_client creates a worker's file, then sizes it (client_python issue 1199): a
    # scrape in between is read again, and one that never clears is a 503, never a 500.
    from service.api import metrics

    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    booting = tmp_path / "counter_1.db"
    booting.touch()
    waits = []
    # while render waits, the booting worker gets on (here: its empty file goes away)
    monkeypatch.setattr(metrics.time, "sleep", lambda s: (waits.append(s), booting.unlink()))
    body, _ = metrics.render()
    assert isinstance(body, bytes) and len(waits) == 1
    monkeypatch.setattr(metrics.time, "sleep", waits.append)  # this one never gets on
    booting.touch()
    with pytest.raises(metrics.FilesChanging):
        metrics.render()
    assert len(waits) == 3  # read three times in all, waiting between


def test_a_metrics_scrape_that_cannot_read_the_workers_files_is_a_503(
    client, tmp_path, monkeypatch
):
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    (tmp_path / "counter_1.db").touch()
    r = client.get("/metrics")
    assert r.status_code == 503 and "changed while being read" in r.json["message"]


# The recommendation route decodes its body with orjson and loads it with the schema's quick
# check; whatever either refuses goes through webargs. When the quick path answers, webargs'
# own path (json.loads, marshmallow) must answer the same.
TRICKY = [
    *HOSTILE,
    '{"footwear": {"current_drop_mm": 8}, "footwear": {"current_drop_mm": 9}}',
    '{"footwear": {"current_drop_mm": 18446744073709551616}}',
    '{"footwear": {"current_drop_mm": 1e2}}',
    '{"footwear": {"current_drop_mm": -0.0}}',
    '{"footwear": {"current_drop_mm": 8}, "client_ref": "\\ud800"}',
    '{"footwear": {"current_drop_mm": 8}, "client_ref": "\\u00e9\\ud83d\\ude00"}',
    '\ufeff{"footwear": {"current_drop_mm": 8}}',
    ' {"footwear": {"current_drop_mm": 8.0}} ',
]


def both_paths(app, text):
    """(quick path, webargs path) for one body: each a loaded request or an error's details."""
    from webargs.flaskparser import FlaskParser

    from service.api.recommendations import blp
    from service.core.schema import request_schema

    parser, outcomes = blp.ARGUMENTS_PARSER, []
    for parse in (type(parser).parse, FlaskParser.parse):
        with app.test_request_context(data=text, content_type="application/json"):
            try:
                outcomes.append(parse(parser, request_schema, location="json"))
            except Exception as exc:  # an HTTP error webargs raised: its code and messages
                outcomes.append((getattr(exc, "code", None), getattr(exc, "data", None)))
    return outcomes


@pytest.mark.parametrize("text", TRICKY, ids=range(len(TRICKY)))
def test_the_quick_path_answers_tricky_bodies_as_webargs_does(app, text):
    quick, webargs = both_paths(app, text)
    assert repr(quick) == repr(webargs)  # repr: -0.0 and 0, 1 and 1.0 differ


@settings(
    max_examples=300, deadline=None, database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],  # parsing leaves the app as it is
)  # fmt: skip
@given(request=requests(), value=JSON, path=st.sampled_from([f.path for f in FIELDS]))
def test_the_quick_path_answers_as_webargs_does(app, request, value, path):
    for body in (request, put(request, path, value)):
        quick, webargs = both_paths(app, json.dumps(body))
        assert repr(quick) == repr(webargs)
    assert both_paths(app, json.dumps(request))[0] == request  # and valid requests load


def test_the_rule_catalogue_lists_every_rule_in_force_with_its_evidence(client, shop, rules):
    r = client.get("/v1/rules", headers=shop)
    assert r.status_code == 200 and r.headers["Cache-Control"] == "no-store"
    body = r.get_json()
    assert body["version"] == rules_version()  # the digest answers are logged under
    listed = body["rules"]
    assert [rule["id"] for rule in listed] == sorted(rule.id for rule in rules)
    by_id = {rule["id"]: rule for rule in listed}
    for rule in listed:
        assert set(rule) == {"id", "name", "stage", "effect", "message", "grade", "sources",
                             "rationale"}  # fmt: skip
        assert re.fullmatch(r"[ABC](/[ABC])?", rule["grade"]), rule
        assert "Grade " in rule["rationale"] and rule["sources"], rule
    assert by_id["HD011"]["grade"] == "A/C" and by_id["HD014"]["grade"] == "B"  # the rules, v2
    assert any("Malisoux" in source for source in by_id["HD014"]["sources"])
    assert by_id["HD019"]["stage"] == "bounds"
    assert "14" in by_id["HD019"]["effect"]
