"""`heeldrop log prune|forget`: retention by HEELDROP_LOG_RETENTION_DAYS, erasure by request id."""

from datetime import timedelta

import pytest
import sqlalchemy as sa

from service.db import Outcome, Recommendation, engine_for, now, upgrade
from service.db.log import RecommendationLog

REQUEST = {"footwear": {"current_drop_mm": 8}}


@pytest.fixture
def logged(db_url, rules_only):
    """Three recommendations of one tenant, logged 800, 100 and 0 days ago, each with an outcome."""
    upgrade(db_url)
    engine = engine_for(db_url)
    book = RecommendationLog(engine, "v")
    for rid, age in (("old", 800), ("mid", 100), ("new", 0)):
        book.write("shop", [REQUEST], rules_only.explain([REQUEST], [rid]))
        book.record_outcome("shop", {"request_id": rid, "weeks_worn": 4, "drop_mm_worn": 8,
                                     "outcome": "same"})  # fmt: skip
        with engine.begin() as connection:
            connection.execute(sa.update(Recommendation).where(Recommendation.request_id == rid)
                               .values(created_at=now() - timedelta(days=age)))  # fmt: skip

    def ids(table):
        with engine.connect() as connection:
            return sorted(connection.execute(sa.select(table.request_id)).scalars())

    yield ids
    engine.dispose()


def test_prune_keeps_730_days_by_default(heeldrop, logged):
    code, _, err = heeldrop("log", "prune")
    assert code == 0 and "pruned 1 recommendations" in err and "1 outcomes" in err
    assert logged(Recommendation) == logged(Outcome) == ["mid", "new"]


def test_prune_follows_the_configured_retention(heeldrop, logged, monkeypatch):
    monkeypatch.setenv("HEELDROP_LOG_RETENTION_DAYS", "30")
    assert heeldrop("log", "prune")[0] == 0
    assert logged(Recommendation) == logged(Outcome) == ["new"]


def test_a_retention_of_zero_days_is_refused_and_nothing_deleted(heeldrop, logged, monkeypatch):
    monkeypatch.setenv("HEELDROP_LOG_RETENTION_DAYS", "0")
    code, _, err = heeldrop("log", "prune")
    assert code == 2 and "whole log" in err
    assert logged(Recommendation) == ["mid", "new", "old"]


def test_forget_erases_one_recommendation_with_its_outcomes(heeldrop, logged):
    code, _, err = heeldrop("log", "forget", "mid")
    assert code == 0 and "'mid'" in err and "1 outcomes" in err
    assert logged(Recommendation) == logged(Outcome) == ["new", "old"]


def test_forget_of_an_unknown_id_or_without_one_is_exit_2(heeldrop, logged):
    assert heeldrop("log", "forget", "nobody")[0] == 2
    code, _, err = heeldrop("log", "forget")
    assert code == 2 and "REQUEST_ID" in err
    assert logged(Recommendation) == ["mid", "new", "old"]
