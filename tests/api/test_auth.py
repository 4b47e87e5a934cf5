"""Who may call what: every route against every kind of caller, and keys stored only as hashes."""

import hashlib

import pytest
from sqlalchemy import select, text

from service.api.app import create_app
from service.db import engine_for, keys

ONE = {"footwear": {"current_drop_mm": 8}}
ROUTES = {
    "recommend": ("POST", "/v1/recommendations", ONE, "shop"),
    "batch": ("POST", "/v1/recommendations/batch", {"items": [ONE]}, "shop"),
    "model": ("GET", "/v1/model", None, "shop"),
    "rules": ("GET", "/v1/rules", None, "shop"),
    "reload": ("POST", "/admin/reload", None, "admin"),
    "livez": ("GET", "/livez", None, "public"),
    "readyz": ("GET", "/readyz", None, "public"),
    "metrics": ("GET", "/metrics", None, "public"),
    "openapi": ("GET", "/openapi.json", None, "public"),
    "docs": ("GET", "/docs", None, "public"),
}
CALLERS = ("none", "malformed", "unknown", "revoked", "shop", "admin")
EXPECTED = {
    "public": dict.fromkeys(CALLERS, 200),
    "shop": {"none": 401, "malformed": 401, "unknown": 401, "revoked": 401, "shop": 200,
             "admin": 200},
    "admin": {"none": 401, "malformed": 401, "unknown": 401, "revoked": 401, "shop": 403,
              "admin": 200},
}  # fmt: skip


@pytest.fixture(scope="module")
def world(registry, tmp_path_factory):
    """One app for the whole matrix, with a shop, an admin and a revoked key."""
    url = f"sqlite:///{tmp_path_factory.mktemp('auth')}/heeldrop.db"
    app = create_app({"models_dir": registry.root.parent, "database_url": url, "SECRET_KEY": "t"})
    engine = engine_for(url)
    tokens = {
        "shop": keys.create(engine, "shop"),
        "admin": keys.create(engine, "admin", admin=True),
        "revoked": keys.create(engine, "gone", admin=True),
    }
    keys.revoke(engine, "gone")
    headers = {name: {"Authorization": f"Bearer {token}"} for name, token in tokens.items()}
    headers["none"] = {}
    headers["malformed"] = {"Authorization": f"Token {tokens['admin']}"}
    headers["unknown"] = {"Authorization": "Bearer hd_" + "A" * 43}
    return app.test_client(), headers


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("route", ROUTES)
def test_each_route_answers_each_caller_as_the_scope_matrix_says(world, route, caller):
    client, headers = world
    method, path, body, scope = ROUTES[route]
    r = client.open(path, method=method, json=body, headers=headers[caller])
    expected = EXPECTED[scope][caller]
    assert r.status_code == expected
    if expected != 200:
        assert r.json["code"] == expected
        assert set(r.json) == {"code", "status", "message", "errors"}


@pytest.mark.parametrize(
    "value",
    [
        "Basic c2hvcDpzZWNyZXQ=",
        "Bearer",
        "Bearer ",
        "{token}",
        "Bearer{token}",
        "Token {token}",
        "Bearer {token}x",
        "Bearer {token_without_prefix}",
        "Bearer hd_",
        "Bearer hd_" + "A" * 200,
        "Bearer {token} {token}",
    ],
)
def test_a_malformed_or_altered_authorization_header_is_401(world, value):
    client, headers = world
    token = headers["shop"]["Authorization"].removeprefix("Bearer ")
    header = value.format(token=token, token_without_prefix=token.removeprefix("hd_"))
    r = client.get("/v1/model", headers={"Authorization": header})
    assert r.status_code == 401 and r.json["code"] == 401


def test_a_revoked_key_stops_working(make_app, db_url):
    client = make_app(key_cache_seconds=0).test_client()
    engine = engine_for(db_url)
    token = keys.create(engine, "soon-gone")
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get("/v1/model", headers=headers).status_code == 200
    keys.revoke(engine, "soon-gone")
    assert client.get("/v1/model", headers=headers).status_code == 401


def test_a_new_key_works_once_the_cache_expires(make_app, db_url):
    client = make_app(key_cache_seconds=0).test_client()
    assert client.get("/v1/model").status_code == 401  # the key store has loaded
    token = keys.create(engine_for(db_url), "late")
    assert client.get("/v1/model", headers={"Authorization": f"Bearer {token}"}).status_code == 200


def test_only_a_hash_of_the_key_is_stored(db_url, tmp_path):
    from service.db import ApiKey, upgrade

    upgrade(db_url)
    engine = engine_for(db_url)
    token = keys.create(engine, "shop", admin=True)
    engine.dispose()
    stored = (tmp_path / "heeldrop.db").read_bytes()
    assert token.encode() not in stored
    assert token.removeprefix("hd_").encode() not in stored
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT * FROM api_keys")).all()
    assert rows and all(token not in str(value) for row in rows for value in row)
    with engine.connect() as connection:
        key_hash = connection.scalar(select(ApiKey.key_hash).where(ApiKey.name == "shop"))
    assert key_hash == hashlib.sha256(token.encode()).hexdigest()


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive(client, shop_key, scheme):
    r = client.get("/v1/model", headers={"Authorization": f"{scheme} {shop_key}"})
    assert r.status_code == 200


@pytest.mark.parametrize("header", ["Bearer{key}", "Basic {key}", "{key}", "Bearer"])
def test_other_schemes_or_a_missing_space_are_401(client, shop_key, header):
    r = client.get("/v1/model", headers={"Authorization": header.format(key=shop_key)})
    assert r.status_code == 401


def test_wrong_keys_from_one_address_are_throttled_and_then_so_is_that_address(make_app, db_url):
    from service.db import engine_for, keys

    app = make_app(failed_key_limit="5/minute")
    good = keys.create(engine_for(db_url), "shop")
    client = app.test_client()
    codes = [client.get("/v1/model", headers={"Authorization": f"Bearer hd_wrong{i}"}).status_code
             for i in range(7)]  # fmt: skip
    assert codes == [401] * 5 + [429] * 2
    blocked = client.get("/v1/model", headers={"Authorization": f"Bearer {good}"})
    assert blocked.status_code == 429 and 0 < int(blocked.headers["Retry-After"]) <= 60
    assert blocked.json["code"] == 429
    other = client.get("/v1/model", headers={"Authorization": f"Bearer {good}"},
                       environ_base={"REMOTE_ADDR": "10.0.0.9"})  # fmt: skip
    assert other.status_code == 200
    assert client.get("/livez").status_code == 200  # public routes are not keyed
