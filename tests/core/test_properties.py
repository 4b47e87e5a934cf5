"""Properties every answer keeps, for random valid requests, with the trained model and without."""

import itertools
import math

import pytest
from hypothesis import Phase, example, given, settings

from service.core.fields import BAND_MM, BANDS
from tests.strategies import current, requests

PROPERTY = settings(max_examples=200, deadline=None, database=None)
ENGINES = ["recommender", "rules_only"]
HARD_REFERRALS = ("HD001", "HD002")


@pytest.fixture(scope="session", params=ENGINES)
def engine(request):
    """The trained recommender, then the rules-only one (session fixtures, looked up by name)."""
    return request.getfixturevalue(request.param)


def active_rules(response):
    return {r["id"] for r in response["explanation"]["rules"] if not r["overruled"]}


def without_request_id(response):
    return {k: v for k, v in response.items() if k != "request_id"}


EXAMPLES = (
    {"footwear": {"current_drop_mm": 4}, "symptoms": {"achilles_pain": 5}},
    {"footwear": {"current_drop_mm": 0.5}, "symptoms": {"achilles_pain": 5, "calf_tightness": 4,
     "started_after_shoe_change": True}},
    {"footwear": {"current_drop_mm": 12, "heel_insert_mm": 13}},
    {"footwear": {"current_drop_mm": 29.5, "heel_insert_mm": 0.5},
     "activity": {"primary": "running"}},
    {"footwear": {"current_drop_mm": 2, "heel_insert_mm": 10},
     "mobility": {"knee_to_wall_cm": {"left": 12, "right": 11}}},
    {"footwear": {"current_drop_mm": 20}, "history": {"can_walk_four_steps": False},
     "symptoms": {"achilles_pain": 6, "forefoot_pain": 4}},
    {"footwear": {"current_drop_mm": 10}, "history": {"weeks_since_ankle_injury": 2},
     "mobility": {"restriction_felt": "front"}},
)  # fmt: skip


def with_examples(test):
    for body in EXAMPLES:
        test = example(body=body)(test)
    return test


@PROPERTY
@with_examples
@given(body=requests())
def test_the_range_stays_within_0_to_30_mm_and_meets_the_band_unless_widened(engine, body):
    response = engine.recommend(body)
    rec = response["recommendation"]
    rng = rec["drop_mm"]
    assert isinstance(rng["min"], int) and isinstance(rng["max"], int)
    assert 0 <= rng["min"] <= rng["max"]
    assert rng["max"] <= 30
    lo, hi = BAND_MM[rec["band"]]
    overlaps = lo <= rng["max"] and rng["min"] <= hi
    assert overlaps or "HD051" in active_rules(response), rec


@pytest.mark.parametrize(
    "request_body",
    [
        {"footwear": {"current_drop_mm": 30, "heel_insert_mm": 25},
         "history": {"can_walk_four_steps": False}},
        {"footwear": {"current_drop_mm": 30, "heel_insert_mm": 2},
         "activity": {"primary": "weightlifting"}},
    ],
    ids=["hard-referral", "no-small-changes"],
)  # fmt: skip
def test_the_range_max_stays_at_most_30_mm_even_when_the_effective_drop_is_higher(
    engine, request_body
):
    rng = engine.recommend(request_body)["recommendation"]["drop_mm"]
    assert 0 <= rng["min"] <= rng["max"] <= 30


@PROPERTY
@with_examples
@given(body=requests())
def test_the_direction_and_the_plan_follow_the_effective_current_drop(engine, body):
    response = engine.recommend(body)
    rec = response["recommendation"]
    now, lo, hi = current(body), rec["drop_mm"]["min"], rec["drop_mm"]["max"]
    hard_referral = bool({"HD001", "HD002"} & active_rules(response))
    if lo <= now <= hi or hard_referral:  # a referral changes nothing, even above 30 mm
        expected = "keep"
    elif now > hi:
        expected = "lower_gradually"
    elif now <= 2:
        expected = "step_back_up"
    else:
        expected = "raise"
    assert rec["direction"] == expected, (now, rec)
    plan = rec["transition_plan"]
    assert [s["step"] for s in plan] == list(range(1, len(plan) + 1))
    assert all(isinstance(s["weeks"], int) and s["weeks"] > 0 for s in plan)
    drops = [s["drop_mm"] for s in plan]
    if expected == "keep":
        assert plan == []
    elif expected in ("raise", "step_back_up"):
        assert drops == [lo]
    else:
        assert drops and drops[-1] == hi, (now, rec)
        assert 0 < now - drops[0] <= 4, (now, drops)
        assert all(0 < a - b <= 4 for a, b in itertools.pairwise(drops)), (now, drops)


@PROPERTY
@with_examples
@given(body=requests())
def test_confidence_probabilities_and_referrals_are_consistent(engine, body):
    response = engine.recommend(body)
    rec, model = response["recommendation"], response["explanation"]["model"]
    assert 0.0 <= rec["confidence"] <= 1.0
    assert rec["refer_to_clinician"] is (rec["referral"] is not None)
    if engine.model is None:
        assert response["degraded"] is True
        assert model["band_probabilities"] == {}
    else:
        assert response["degraded"] is False
        probs = model["band_probabilities"]
        assert set(probs) == set(BANDS)
        assert all(0.0 <= p <= 1.0 for p in probs.values())
        # Each of the five probabilities is rounded to 4 places in the response.
        assert math.isclose(sum(probs.values()), 1.0, abs_tol=1e-6 + len(BANDS) * 0.5e-4)
        # The top band shows the largest probability (two may tie once rounded).
        assert probs[model["top_band"]] == max(probs.values())
    hard = active_rules(response) & set(HARD_REFERRALS)
    if hard:
        assert rec["direction"] == "keep"
        assert rec["transition_plan"] == []
        assert response["advice"] == []
        assert rec["refer_to_clinician"] is True
        assert rec["referral"]["urgency"] == ("today" if "HD001" in hard else "soon")
        assert rec["referral"]["reasons"]
        others = [r for r in response["explanation"]["rules"] if r["id"] not in HARD_REFERRALS]
        assert all(r["overruled"] for r in others)


@PROPERTY
@with_examples
@given(body=requests())
def test_the_same_request_gets_the_same_answer_twice(engine, body):
    first, second = engine.recommend(body), engine.recommend(body)
    assert first["request_id"] != second["request_id"]
    assert without_request_id(first) == without_request_id(second)


def test_the_given_request_id_is_used(rules_only):
    response = rules_only.recommend({"footwear": {"current_drop_mm": 8}}, request_id="abc123")
    assert response["request_id"] == "abc123"


@pytest.fixture(scope="session", params=[
    "recommender",
    "rules_only",
])  # fmt: skip
def batch_engine(request):
    return request.getfixturevalue(request.param)


@settings(PROPERTY, phases=(Phase.explicit, Phase.generate))  # a failing batch needs no shrinking
@given(batch=requests().flatmap(lambda a: requests().map(lambda b: [a, b, a])))
def test_answering_requests_together_equals_answering_each_alone(batch_engine, batch):
    together = batch_engine.explain(batch)
    alone = [batch_engine.explain([r])[0] for r in batch]
    assert [without_request_id(r) for r in together] == [without_request_id(r) for r in alone]
    assert without_request_id(together[0]) == without_request_id(together[2])


def test_a_raise_is_one_step_to_the_range_min(engine):
    rec = engine.recommend(EXAMPLES[0])["recommendation"]
    assert rec["drop_mm"] == {"min": 8, "max": 10}
    assert rec["direction"] == "raise"
    assert [s["drop_mm"] for s in rec["transition_plan"]] == [8]


def test_lowering_from_25_mm_to_14_mm_goes_down_in_steps_of_at_most_4_mm(engine):
    rec = engine.recommend(EXAMPLES[2])["recommendation"]
    assert rec["direction"] == "lower_gradually"
    assert [s["drop_mm"] for s in rec["transition_plan"]] == [22, 18, 14]
    assert all(s["weeks"] >= 4 for s in rec["transition_plan"])


def test_the_heel_insert_counts_towards_the_current_drop(rules_only):
    with_insert = {"footwear": {"current_drop_mm": 2, "heel_insert_mm": 10}}
    in_the_shoe = {"footwear": {"current_drop_mm": 12}}
    rec = rules_only.recommend(with_insert)["recommendation"]
    assert rec == rules_only.recommend(in_the_shoe)["recommendation"]
    assert rec["direction"] == "keep"
