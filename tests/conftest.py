"""Shared fixtures: the rule table, a small trained registry, recommenders, apps and keys."""

import pytest

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
def make_app(registry, db_url):
    """Build an app over the trained registry and a fresh database; overrides as keywords."""
    from service.api.app import create_app

    def make(**overrides):
        config = {"models_dir": registry.root.parent, "database_url": db_url, **overrides}
        return create_app(config)

    return make


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
