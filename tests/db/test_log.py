"""The recommendation log and outcomes on SQLite and, when HEELDROP_TEST_POSTGRES_URL is set,
on PostgreSQL: what is stored, tenant isolation, duplicates, retention, erasure, migration."""

from datetime import timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from service.db import Outcome, Recommendation, engine_for, keys, log, now
from service.db.log import DuplicateOutcome, RecommendationLog, Unavailable, UnknownRequest

PERSON = {
    "client_ref": "Mrs Smith, 12 High St",
    "person": {"age_years": 52, "sex": "female"},
    "footwear": {"current_drop_mm": 0, "years_in_heeled_shoes": 20, "weeks_in_current_drop": 8},
    "symptoms": {"calf_tightness": 5, "achilles_pain": 4},
}


def answer(recommender, rid, request=PERSON):
    return recommender.explain([request], [rid])[0]


@pytest.fixture
def book(engine):
    return RecommendationLog(engine, "rules-v2")


def report(rid, weeks=4, outcome="better", **extra):
    return {"request_id": rid, "weeks_worn": weeks, "drop_mm_worn": 6, "outcome": outcome, **extra}


def rows(engine, table):
    with engine.connect() as connection:
        return connection.execute(sa.select(table)).all()


def test_a_logged_answer_keeps_the_validated_fields_versions_and_answer_never_free_text(
    book, engine, recommender
):
    response = answer(recommender, "r1")
    book.write("shop-a", [PERSON], [response])
    (row,) = rows(engine, Recommendation)
    rec = response["recommendation"]
    assert (row.request_id, row.tenant, row.rules_version) == ("r1", "shop-a", "rules-v2")
    assert row.model_version == recommender.model.version and row.trained_on == "simulated"
    assert (row.drop_min_mm, row.drop_max_mm) == (rec["drop_mm"]["min"], rec["drop_mm"]["max"])
    assert (row.band, row.direction, row.referral) == (rec["band"], rec["direction"], None)
    assert row.confidence == pytest.approx(rec["confidence"])
    assert row.request == {k: v for k, v in PERSON.items() if k != "client_ref"}
    assert "Smith" not in repr(tuple(row))
    assert abs(row.created_at - now()).total_seconds() < 60


def test_a_referral_is_logged_with_its_urgency(book, engine, recommender):
    urgent = {**PERSON, "symptoms": {"calf_swelling_one_side": True}}
    response = answer(recommender, "r1", urgent)
    book.write("shop-a", [urgent], [response])
    assert (
        rows(engine, Recommendation)[0].referral
        == response["recommendation"]["referral"]["urgency"]
    )


def test_a_batch_is_logged_whole_in_one_go(book, engine, recommender):
    requests = [PERSON, {"footwear": {"current_drop_mm": 10}}, {"footwear": {"current_drop_mm": 4}}]
    responses = recommender.explain(requests, ["b-0", "b-1", "b-2"])
    book.write("shop-a", requests, responses)
    assert sorted(r.request_id for r in rows(engine, Recommendation)) == ["b-0", "b-1", "b-2"]


def test_a_repeated_answer_id_is_refused_and_the_first_answer_kept(book, engine, recommender):
    book.write("shop-a", [PERSON], [answer(recommender, "r1")])
    with pytest.raises(Unavailable):
        book.write("shop-b", [PERSON], [answer(recommender, "r1")])
    assert [r.tenant for r in rows(engine, Recommendation)] == ["shop-a"]


def test_an_outcome_is_stored_for_its_own_tenant_with_a_receipt(book, engine, recommender):
    book.write("shop-a", [PERSON], [answer(recommender, "r1")])
    receipt = book.record_outcome("shop-a", report("r1", symptoms_after={"achilles_pain": 2}))
    assert receipt["request_id"] == "r1" and len(receipt["outcome_id"]) == 32
    (row,) = rows(engine, Outcome)
    assert (row.outcome_id, row.tenant, row.weeks_worn, row.outcome) == (
        receipt["outcome_id"], "shop-a", 4, "better"
    )  # fmt: skip
    assert row.drop_mm_worn == 6 and row.symptoms_after == {"achilles_pain": 2}


def test_another_tenants_request_is_as_unknown_as_one_that_never_was(book, engine, recommender):
    book.write("shop-a", [PERSON], [answer(recommender, "r1")])
    for tenant, rid in (("shop-b", "r1"), ("shop-a", "nope")):
        with pytest.raises(UnknownRequest) as caught:
            book.record_outcome(tenant, report(rid))
        assert str(caught.value) == rid
    assert rows(engine, Outcome) == []


def test_the_same_weeks_worn_twice_is_a_duplicate_and_other_weeks_are_not(
    book, engine, recommender
):
    book.write("shop-a", [PERSON], [answer(recommender, "r1")])
    book.record_outcome("shop-a", report("r1", weeks=4))
    with pytest.raises(DuplicateOutcome):
        book.record_outcome("shop-a", report("r1", weeks=4, outcome="worse"))
    book.record_outcome("shop-a", report("r1", weeks=12, outcome="same"))
    assert sorted((r.weeks_worn, r.outcome) for r in rows(engine, Outcome)) == [
        (4, "better"), (12, "same")
    ]  # fmt: skip


def test_prune_deletes_what_is_older_than_the_retention_with_its_outcomes(
    book, engine, recommender
):
    book.write("shop-a", [PERSON], [answer(recommender, "old")])
    book.write("shop-a", [PERSON], [answer(recommender, "new")])
    book.record_outcome("shop-a", report("old"))
    book.record_outcome("shop-a", report("new"))
    with engine.begin() as connection:
        connection.execute(
            sa.update(Recommendation).where(Recommendation.request_id == "old")
            .values(created_at=now() - timedelta(days=731))
        )  # fmt: skip
    assert log.prune(engine, 730) == (1, 1)
    assert [r.request_id for r in rows(engine, Recommendation)] == ["new"]
    assert [r.request_id for r in rows(engine, Outcome)] == ["new"]
    assert log.prune(engine, 730) == (0, 0)


@pytest.mark.parametrize("days", [0, -5])
def test_a_retention_below_one_day_is_refused(engine, days):
    with pytest.raises(log.HeeldropError, match="whole log"):
        log.prune(engine, days)


def test_forget_erases_one_recommendation_and_its_outcomes_only(book, engine, recommender):
    book.write("shop-a", [PERSON, PERSON], recommender.explain([PERSON, PERSON], ["r1", "r2"]))
    book.record_outcome("shop-a", report("r1", weeks=4))
    book.record_outcome("shop-a", report("r1", weeks=8))
    book.record_outcome("shop-a", report("r2"))
    assert log.forget(engine, "r1") == (1, 2)
    assert [r.request_id for r in rows(engine, Recommendation)] == ["r2"]
    assert [r.request_id for r in rows(engine, Outcome)] == ["r2"]
    assert log.forget(engine, "r1") == (0, 0)
    with pytest.raises(UnknownRequest):
        book.record_outcome("shop-a", report("r1", weeks=20))


def test_a_database_without_the_tables_is_unavailable_and_says_only_the_error_type(
    url, recommender
):
    book = RecommendationLog(engine_for(url), "rules-v2")  # never migrated
    with pytest.raises(Unavailable) as caught:
        book.write("shop-a", [PERSON], [answer(recommender, "r1")])
    assert str(caught.value) in {"OperationalError", "ProgrammingError"}
    with pytest.raises(Unavailable):
        book.record_outcome("shop-a", report("r1"))
    book.engine.dispose()


def test_existing_keys_become_tenants_of_their_own_names(url):
    from service.db import alembic_config, upgrade

    command.upgrade(alembic_config(url), "0001")
    engine = engine_for(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text("INSERT INTO api_keys (name, key_hash, admin, created_at) "
                    "VALUES ('old-shop', :h, false, :t)"),
            {"h": "a" * 64, "t": now()},
        )  # fmt: skip
    upgrade(url)
    (key,) = keys.listing(engine)
    assert (key.name, key.tenant) == ("old-shop", "old-shop")
    assert keys.create(engine, "till-2", tenant="old-shop")
    assert {k.tenant for k in keys.listing(engine)} == {"old-shop"}
    engine.dispose()
