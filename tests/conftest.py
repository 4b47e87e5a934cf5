"""Shared fixtures: the rule table, a small trained registry, and recommenders with and without it."""

from pathlib import Path

import pytest

from service.cohort import write_cohort
from service.recommend import Recommender
from service.registry import Registry
from service.retrain import retrain
from service.rules import load_rules

CASES = Path(__file__).parent / "cases" / "article_cases.json"


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
    outcome = retrain([cohort_csv], "force", reg, CASES, seed=3)
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
