"""Shared fixtures: the rule table, a small trained registry, recommenders, databases (SQLite,
and PostgreSQL when HEELDROP_TEST_POSTGRES_URL is set), apps and keys."""

import os
import uuid

import pytest
import sqlalchemy as sa

from service.core.recommend import Recommender
from service.core.rules import load_rules
from service.registry import Registry
from service.training.cohort import write_cohort
from service.training.retrain import retrain


@pytest.fixture(scope="session")
def rules():
    return load_rules()


@pytest.fixture(scope="session")
def cohort_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "cohort.csv"
    write_cohort(path, 4000, seed=11)
    return path


@pytest.fixture(scope="session")
def registry(tmp_path_factory, cohort_csv):
    """A registry holding one champion trained on a small simulated cohort."""
    reg = Registry(tmp_path_factory.mktemp("models"))
    outcome = retrain([cohort_csv], "force", reg, seed=3)
    assert outcome.promoted
    return reg


@pytest.fixture(scope="session")
def model(registry):
    return registry.load_champion()


@pytest.fixture(scope="session")
def recommender(rules, model):
    return Recommender(rules, model)


@pytest.fixture(scope="session")
def rules_only(rules):
    return Recommender(rules, None)


@pytest.fixture
def db_url(tmp_path):
    return f"sqlite:///{tmp_path}/heeldrop.db"


@pytest.fixture
def postgres_url():
    """A fresh database on the server of HEELDROP_TEST_POSTGRES_URL, dropped afterwards.

    Unset skips; set but unreachable fails (a fixture error, never a skip).
    """
    url = os.environ.get("HEELDROP_TEST_POSTGRES_URL")
    if not url:
        pytest.skip("HEELDROP_TEST_POSTGRES_URL is not set")
    server = sa.make_url(url).set(database="postgres")
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool,
                             connect_args={"connect_timeout": 5})  # fmt: skip
    name = f"heeldrop_test_{uuid.uuid4().hex[:12]}"
    try:
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as exc:
        pytest.fail(f"HEELDROP_TEST_POSTGRES_URL is set but unusable: {exc}")
    yield sa.make_url(url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as connection:
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def url(request, db_url):
    return db_url if request.param == "sqlite" else request.getfixturevalue("postgres_url")


@pytest.fixture
def engine(url):
    from service.db import engine_for, upgrade

    upgrade(url)
    engine = engine_for(url)
    yield engine
    engine.dispose()


@pytest.fixture
def make_app(registry, db_url):
    """Build an app over the trained registry and a fresh database; overrides as keywords.
    Each app's database connections are closed at the end of the test."""
    from service.api.app import create_app

    made = []

    def make(**overrides):
        config = {"models_dir": registry.root.parent, "database_url": db_url,
                  "SECRET_KEY": "test-only-secret", **overrides}  # fmt: skip
        made.append(create_app(config))
        return made[-1]

    yield make
    for app in made:
        app.extensions["heeldrop.log"].engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def shop_key(app):
    from service.db import engine_for, keys

    return keys.create(engine_for(app.config["HEELDROP"].database_url), "shop")


@pytest.fixture
def admin_key(app):
    from service.db import engine_for, keys

    return keys.create(engine_for(app.config["HEELDROP"].database_url), "admin", admin=True)


@pytest.fixture
def shop(shop_key):
    """Headers of a shop caller."""
    return {"Authorization": f"Bearer {shop_key}"}


@pytest.fixture
def admin(admin_key):
    """Headers of an admin caller."""
    return {"Authorization": f"Bearer {admin_key}"}
