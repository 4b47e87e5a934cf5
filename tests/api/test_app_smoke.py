"""A first pass over the API through the Flask test client."""

import re


def test_a_shop_key_gets_a_recommendation_with_its_own_id_and_model_version(client, shop):
    body = {
        "footwear": {"current_drop_mm": 0, "years_in_heeled_shoes": 20, "weeks_in_current_drop": 8},
        "symptoms": {"calf_tightness": 5},
    }
    r = client.post("/v1/recommendations", json=body, headers={**shop, "X-Request-ID": "abc-1"})
    assert r.status_code == 200
    assert r.headers["X-Request-ID"] == "abc-1"
    assert re.fullmatch(r"[0-9a-f]{32}", r.json["request_id"])
    assert r.headers["X-Model-Version"] == r.json["explanation"]["model"]["version"]
    assert r.json["recommendation"]["direction"] == "step_back_up"


def test_no_key_is_401_in_the_one_error_shape(client):
    r = client.post("/v1/recommendations", json={"footwear": {"current_drop_mm": 4}})
    assert r.status_code == 401
    assert set(r.json) == {"code", "status", "message", "errors"}
