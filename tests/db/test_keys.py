"""Keys and migrations on SQLite and, when HEELDROP_TEST_POSTGRES_URL is set, on PostgreSQL."""

import hashlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from service.db import ApiKey, Base, engine_for, keys, upgrade


def test_a_created_key_is_a_url_safe_token_stored_as_its_sha256(engine):
    token = keys.create(engine, "shop")
    assert token.startswith("hd_") and len(token) >= 40
    with engine.connect() as connection:
        row = connection.execute(sa.select(ApiKey.__table__)).one()
    assert row.name == "shop" and row.admin is False and row.revoked_at is None
    assert row.key_hash == hashlib.sha256(token.encode()).hexdigest()
    assert token not in [str(value) for value in row]


def test_keys_are_listed_by_name_with_their_scope(engine):
    keys.create(engine, "zeta")
    keys.create(engine, "alpha", admin=True)
    assert [(k.name, k.admin) for k in keys.listing(engine)] == [("alpha", True), ("zeta", False)]


def test_a_duplicate_name_is_refused(engine):
    keys.create(engine, "shop")
    with pytest.raises(keys.KeyProblem, match="exists"):
        keys.create(engine, "shop", admin=True)
    assert len(keys.listing(engine)) == 1


@pytest.mark.parametrize("name", ["", "x" * 65])
def test_a_name_that_does_not_fit_is_refused(engine, name):
    with pytest.raises(keys.KeyProblem, match="64"):
        keys.create(engine, name)
    assert keys.listing(engine) == []


def test_revoking_marks_the_key_and_a_second_revoke_or_an_unknown_name_is_refused(engine):
    keys.create(engine, "shop")
    keys.revoke(engine, "shop")
    (key,) = keys.listing(engine)
    assert key.revoked_at is not None
    with pytest.raises(keys.KeyProblem):
        keys.revoke(engine, "shop")
    with pytest.raises(keys.KeyProblem):
        keys.revoke(engine, "nobody")


def test_verify_accepts_active_keys_with_their_scope_and_refuses_the_rest(engine):
    shop, admin = keys.create(engine, "shop"), keys.create(engine, "ops", admin=True)
    gone = keys.create(engine, "gone")
    keys.revoke(engine, "gone")
    store = keys.KeyStore(engine, cache_seconds=0)
    assert store.verify(shop).admin is False
    assert store.verify(admin).admin is True
    assert store.verify(shop).key_id != store.verify(admin).key_id
    for bad in (gone, shop + "x", shop[:-1], shop.removeprefix("hd_"), "hd_" + "A" * 300, ""):
        assert store.verify(bad) is None


def test_the_key_store_sees_a_revocation_once_its_cache_expires(engine):
    token = keys.create(engine, "shop")
    cached, fresh = keys.KeyStore(engine, cache_seconds=3600), keys.KeyStore(engine, 0)
    assert cached.verify(token) and fresh.verify(token)
    keys.revoke(engine, "shop")
    assert fresh.verify(token) is None
    assert cached.verify(token) is not None  # by design, until the cache expires


def test_upgrade_is_idempotent_and_keeps_the_data(url, engine):
    keys.create(engine, "shop")
    upgrade(url)
    upgrade(url)
    with engine.connect() as connection:
        versions = connection.execute(sa.text("SELECT version_num FROM alembic_version")).all()
    assert len(versions) == 1
    assert [k.name for k in keys.listing(engine)] == ["shop"]


def test_the_migrations_match_the_models(engine):
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_a_new_sqlite_database_and_its_log_files_are_readable_by_their_owner_only(tmp_path):
    import os
    import stat

    url = f"sqlite:///{tmp_path}/instance/heeldrop.db"
    upgrade(url)
    engine = engine_for(url)
    keys.create(engine, "shop")
    modes = {p.name: stat.S_IMODE(os.stat(p).st_mode) for p in (tmp_path / "instance").iterdir()}
    engine.dispose()
    assert modes["heeldrop.db"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes
