"""The rules' combining steps (docs/rules.md): referral, allowed interval, chosen band, small
changes, direction, plan, confidence and the model's view; over whole columns as well as one
request."""

import dataclasses
import itertools
import math

import numpy as np
import pytest

from service.core.columns import from_requests
from service.core.combine import DIRECTIONS, RULES_ONLY_CONFIDENCE, URGENCY, RuleBook, decide
from service.core.conditions import Compiler
from service.core.explain import render
from service.core.features import features
from service.core.fields import BAND_MM, BANDS
from service.core.rules import OPTIONS, STAGE_VALUES, STAGES, context_kinds, load_rules
from service.core.schema import load_request
from service.core.validate import check_frame
from service.training.cohort import simulate


def person(current: float, *, insert: float | None = None, ktw=8.0, **groups) -> dict:
    """A request in `current` mm shoes, knee-to-wall 8 cm both sides unless `ktw` is None."""
    footwear = {"current_drop_mm": current, **groups.pop("footwear", {})}
    if insert is not None:
        footwear["heel_insert_mm"] = insert
    mobility = dict(groups.pop("mobility", {}))
    if ktw is not None:
        mobility["knee_to_wall_cm"] = {"left": ktw, "right": ktw}
    request = {"footwear": footwear, **groups}
    if mobility:
        request["mobility"] = mobility
    return request


def firings(out: dict) -> dict[str, bool]:
    """Rule id -> overruled, for every rule that fired."""
    return {f["id"]: f["overruled"] for f in out["explanation"]["rules"]}


def advice_ids(out: dict) -> list[str]:
    return [a["id"] for a in out["advice"]]


def span(out: dict) -> tuple[int, int]:
    drop = out["recommendation"]["drop_mm"]
    return drop["min"], drop["max"]


def probs_for(*tops: str, p: float = 0.6) -> np.ndarray:
    """One row per band name: that band at p, the rest sharing 1 - p."""
    rows = np.full((len(tops), len(BANDS)), (1 - p) / (len(BANDS) - 1))
    for i, top in enumerate(tops):
        rows[i, BANDS.index(top)] = p
    return rows


def decisions(rules, requests: list[dict], probs: np.ndarray | None = None):
    ctx = features(from_requests([load_request(r) for r in requests]))[0]
    return decide(ctx, RuleBook(rules), probs)


def fired(d, rule_id: str, i: int = 0) -> bool:
    return bool(d.fired[d.book.index[rule_id], i])


def overruled(d, rule_id: str, i: int = 0) -> bool:
    return bool(d.overruled[d.book.index[rule_id], i])


RUNNER = {"primary": "running", "running_years": 3}
CANNOT_WALK = {"can_walk_four_steps": False}

# Requests touching every combining step, for the checks that hold on any answer.
VARIETY = [
    person(10),
    person(10, ktw=None),
    person(10, ktw=12.0),
    person(16, ktw=12.0),
    person(1, symptoms={"calf_tightness": 4, "started_after_shoe_change": True}),
    person(2, ktw=5.0),
    person(3, ktw=5.0),
    person(5, symptoms={"achilles_pain": 3, "forefoot_pain": 3}),
    person(8, activity=RUNNER, symptoms={"forefoot_pain": 3}),
    person(9, symptoms={"achilles_pain": 3, "knee_pain": 3}),
    person(12, symptoms={"forefoot_pain": 3}, person={"body_mass_kg": 85}),
    person(22, symptoms={"forefoot_pain": 5}, footwear={"years_in_heeled_shoes": 20}),
    person(20, activity={"primary": "weightlifting"}),
    person(9, insert=0.5, history=CANNOT_WALK, symptoms={"forefoot_pain": 3}),
    person(10, history={"weeks_since_ankle_surgery": 8}),
    person(12, ktw=None, symptoms={"night_or_rest_pain": True, "forefoot_pain": 3}),
    person(7, history={"weeks_since_ankle_surgery": 30}, symptoms={"knee_pain": 4}),
    person(4, ktw=5.0, mobility={"restriction_felt": "front"}),
]


# Step 2: the allowed interval


def test_a_runners_forefoot_pain_holds_the_drop_above_the_runner_floor(rules_only):
    out = rules_only.recommend(person(8, activity=RUNNER, symptoms={"forefoot_pain": 3}))
    assert firings(out) == {"HD014": False, "HD019": False, "HD020": False}
    assert span(out) == (8, 8)
    assert out["recommendation"]["direction"] == "keep"
    assert "HD020" in advice_ids(out)


def test_knee_pain_cannot_lower_the_drop_that_achilles_pain_holds(rules_only):
    """HD011 (floor: the current 9 mm) ranks above HD016 (ceiling: min(8, 9)); the ceiling would
    empty the interval, so it is clipped to 9 and reported overruled."""
    out = rules_only.recommend(person(9, symptoms={"achilles_pain": 3, "knee_pain": 3}))
    assert firings(out)["HD011"] is False
    assert firings(out)["HD016"] is True
    assert span(out) == (9, 9)
    assert out["recommendation"]["direction"] == "keep"


def test_achilles_pain_raises_to_eight_mm_over_a_non_runners_forefoot_ceiling(rules_only):
    out = rules_only.recommend(person(5, symptoms={"achilles_pain": 3, "forefoot_pain": 3}))
    assert firings(out)["HD011"] is False
    assert firings(out)["HD015"] is True
    assert span(out) == (8, 8)
    assert out["recommendation"]["direction"] == "raise"


def test_a_heel_lift_insert_used_as_therapy_may_pass_the_daily_cap(rules_only):
    out = rules_only.recommend(person(16, insert=2, symptoms={"achilles_pain": 4}))
    assert firings(out) == {"HD011": False, "HD019": False}
    assert span(out) == (18, 18)
    assert out["recommendation"]["band"] == "lift"


def test_without_an_insert_achilles_pain_is_capped_by_the_daily_shoe_limit(rules_only):
    """HD019 ranks above HD011: its floor of 25 mm is clipped to 14."""
    out = rules_only.recommend(person(25, symptoms={"achilles_pain": 4}))
    assert firings(out)["HD011"] is True
    assert firings(out)["HD019"] is False
    assert span(out) == (14, 14)
    assert out["recommendation"]["direction"] == "lower_gradually"


def test_the_surgery_floor_overrules_the_front_block_ceiling(rules_only):
    out = rules_only.recommend(
        person(
            12, history={"weeks_since_ankle_surgery": 40}, mobility={"restriction_felt": "front"}
        )
    )
    assert firings(out)["HD018"] is False
    assert firings(out)["HD017"] is True
    assert span(out) == (12, 12)


def test_a_ceiling_below_an_earlier_floor_is_clipped_to_the_floor(rules_only):
    out = rules_only.recommend(person(9, symptoms={"plantar_heel_pain": 3, "forefoot_pain": 3}))
    assert firings(out)["HD013"] is False
    assert firings(out)["HD015"] is True
    assert span(out) == (9, 9)


def test_an_overruled_bound_is_never_dropped_silently(rules):
    d = decisions(rules, [person(9, symptoms={"achilles_pain": 3, "knee_pain": 3})])
    assert fired(d, "HD016") and overruled(d, "HD016")
    assert (d.allowed_min[0], d.allowed_max[0]) == (9.0, 9.0)
    assert (d.symptom_min[0], d.symptom_max[0]) == (9.0, 9.0)


@pytest.mark.parametrize("request_", VARIETY)
def test_the_interval_and_range_are_never_empty(rules, request_):
    d = decisions(rules, [request_])
    assert d.allowed_min[0] <= d.allowed_max[0]
    assert 0 <= d.range_min[0] <= d.range_max[0] <= 30


# Step 1: referral


def test_a_referral_keeps_the_current_drop_and_overrules_everything_else(rules_only):
    request = person(
        9,
        insert=0.5,
        ktw=None,
        history={**CANNOT_WALK, "leg_length_difference_mm": 12, "ankle_sprains_past_2_years": 3},
        symptoms={"achilles_pain": 4, "forefoot_pain": 3, "night_or_rest_pain": True},
        activity={"primary": "weightlifting"},
    )
    out = rules_only.recommend(request)
    rec = out["recommendation"]
    assert span(out) == (9, 10)
    assert rec["band"] == "moderate"
    assert rec["direction"] == "keep"
    assert rec["transition_plan"] == []
    assert rec["confidence"] == pytest.approx(RULES_ONLY_CONFIDENCE * 0.5)  # HD045's 0.7 set aside
    assert rec["referral"]["urgency"] == "today"
    assert "four steps" in rec["referral"]["reasons"][0]
    assert any("night" in reason for reason in rec["referral"]["reasons"])
    assert out["advice"] == []
    fired = firings(out)
    assert fired.pop("HD001") is False and fired.pop("HD003") is False
    assert {"HD011", "HD015", "HD041", "HD043", "HD044", "HD045"} <= set(fired)
    assert all(fired.values())
    assert "keep your shoes and heel insert at 9.5 mm" in out["explanation"]["summary"]


def test_a_referral_soon_keeps_an_integer_current_drop_exactly(rules_only):
    out = rules_only.recommend(person(11, history={"weeks_since_ankle_injury": 2}))
    assert span(out) == (11, 11)
    assert out["recommendation"]["band"] == "high"
    assert out["recommendation"]["referral"]["urgency"] == "soon"
    assert firings(out) == {"HD002": False, "HD019": True, "HD050": True}


def test_a_referral_today_and_soon_together_is_today_with_both_reasons(rules_only):
    history = {**CANNOT_WALK, "diabetes_or_neuropathy": True}
    out = rules_only.recommend(person(10, history=history))
    referral = out["recommendation"]["referral"]
    assert referral["urgency"] == "today"
    assert len(referral["reasons"]) == 2
    assert any("four steps" in r for r in referral["reasons"])
    assert any("diabetes" in r for r in referral["reasons"])
    assert firings(out)["HD001"] is False and firings(out)["HD002"] is False


def test_every_referral_that_fires_gives_its_reasons(rules_only):
    request = person(10, history={"weeks_since_ankle_injury": 3},
                     symptoms={"night_or_rest_pain": True})  # fmt: skip
    out = rules_only.recommend(request)
    assert firings(out)["HD002"] is False and firings(out)["HD003"] is False
    referral = out["recommendation"]["referral"]
    assert referral["urgency"] == "soon"
    assert "injury was 3 weeks ago" in referral["reasons"][0]
    assert "night" in referral["reasons"][1]
    assert out["recommendation"]["confidence"] == pytest.approx(0.25)


def test_a_referral_after_a_recent_switch_goes_back_to_the_previous_drop_at_once(rules_only):
    request = person(
        0,
        symptoms={"calf_tightness": 4, "started_after_shoe_change": True,
                  "night_or_rest_pain": True},
        footwear={"previous_drop_mm": 10, "weeks_in_current_drop": 2},
    )  # fmt: skip
    out = rules_only.recommend(request)
    rec = out["recommendation"]
    assert span(out) == (10, 10)
    assert rec["band"] == "moderate"
    assert rec["direction"] == "step_back_up"
    assert [(s["step"], s["drop_mm"]) for s in rec["transition_plan"]] == [(1, 10)]
    assert firings(out)["HD010"] is True  # its condition holds; its bound is set aside
    assert out["advice"] == []
    assert "go back to your 10 mm shoes" in out["explanation"]["summary"]


def test_a_referral_without_a_recent_switch_holds_even_with_a_previous_drop(rules_only):
    request = person(
        0,
        symptoms={"night_or_rest_pain": True},
        footwear={"previous_drop_mm": 10, "weeks_in_current_drop": 60},
    )
    out = rules_only.recommend(request)
    assert span(out) == (0, 0)
    assert out["recommendation"]["direction"] == "keep"


@pytest.mark.parametrize("request_", VARIETY)
def test_refer_to_clinician_is_true_exactly_when_there_is_a_referral(rules_only, request_):
    rec = rules_only.recommend(request_)["recommendation"]
    assert rec["refer_to_clinician"] is (rec["referral"] is not None)
    if rec["referral"] is not None:
        assert rec["referral"]["urgency"] in URGENCY[1:]
        assert rec["referral"]["reasons"]


# Steps 3 and 4: chosen band, content-keep and small changes


def test_the_chosen_band_is_the_models_best_among_those_the_interval_allows(rules):
    probs = np.array([[0.20, 0.25, 0.05, 0.45, 0.05]])
    d = decisions(rules, [person(12, symptoms={"forefoot_pain": 3})], probs)
    assert BANDS[d.model_band[0]] == "high"
    assert BANDS[d.band[0]] == "low"
    assert (d.range_min[0], d.range_max[0]) == (3, 6)
    assert d.confidence[0] == pytest.approx(0.25)


def test_content_keep_replaces_the_models_band_by_the_band_of_current(rules):
    d = decisions(rules, [person(10, ktw=12.0)], probs_for("zero", p=0.7))
    assert fired(d, "HD050") and not overruled(d, "HD050")
    assert BANDS[d.band[0]] == "moderate"
    assert (d.range_min[0], d.range_max[0]) == (7, 10)
    assert d.confidence[0] == pytest.approx(0.3 / 4)  # not renormalised


def test_with_a_pain_the_models_band_stands(rules):
    d = decisions(
        rules, [person(10, symptoms={"anterior_ankle_pinch": 3})], probs_for("low", p=0.7)
    )
    assert not fired(d, "HD050")
    assert BANDS[d.band[0]] == "low"
    assert DIRECTIONS[d.direction[0]] == "lower_gradually"
    assert d.confidence[0] == pytest.approx(0.7)


def test_content_keep_takes_the_allowed_band_nearest_the_current_drop(rules_only):
    """20 mm casual shoes and no complaint: the daily cap excludes lift, so the smallest change
    is the high band, not the model's or any other."""
    out = rules_only.recommend(person(20, ktw=12.0))
    assert firings(out)["HD050"] is False
    assert out["recommendation"]["band"] == "high"
    assert span(out) == (11, 14)
    assert out["recommendation"]["direction"] == "lower_gradually"


def test_content_keep_holds_for_a_lifter_in_lift_shoes(rules_only):
    out = rules_only.recommend(person(16, ktw=12.0, activity={"primary": "weightlifting"}))
    assert firings(out)["HD050"] is False
    assert out["recommendation"]["band"] == "lift"
    assert span(out) == (15, 30)


@pytest.mark.parametrize(
    ("current", "expected", "direction"),
    [(4, (0, 4), "keep"), (5, (0, 2), "lower_gradually")],
)
def test_small_changes_widen_the_range_to_include_current_within_two_mm(
    rules, current, expected, direction
):
    pinch = person(current, symptoms={"anterior_ankle_pinch": 3})  # a pain: no content-keep
    d = decisions(rules, [pinch], probs_for("zero"))
    assert BANDS[d.band[0]] == "zero"
    assert (d.range_min[0], d.range_max[0]) == expected
    assert DIRECTIONS[d.direction[0]] == direction
    assert fired(d, "HD051") is (direction == "keep")


def test_small_changes_never_pass_a_symptom_bound(rules):
    """Knee pain caps at 8 mm: 10 mm is within 2 mm of 7-8 but outside the symptom interval."""
    d = decisions(rules, [person(10, symptoms={"knee_pain": 4})], probs_for("moderate"))
    assert not fired(d, "HD051")
    assert (d.range_min[0], d.range_max[0]) == (7, 8)
    assert DIRECTIONS[d.direction[0]] == "lower_gradually"


def test_small_changes_past_a_policy_bound_report_it_overruled(rules_only):
    out = rules_only.recommend(person(16, ktw=12.0))
    assert firings(out) == {"HD019": True, "HD050": False, "HD051": False}
    assert span(out) == (11, 16)
    assert out["recommendation"]["direction"] == "keep"


# Step 5: direction and plan


@pytest.mark.parametrize(
    ("request_", "direction"),
    [
        pytest.param(person(10), "keep", id="inside-the-range"),
        pytest.param(person(9, symptoms={"forefoot_pain": 3}), "lower_gradually", id="above"),
        pytest.param(person(3, ktw=5.0), "raise", id="below-from-3-mm"),
        pytest.param(person(2, insert=0.5, ktw=5.0), "raise", id="below-from-2.5-mm"),
        pytest.param(person(2, ktw=5.0), "step_back_up", id="below-from-2-mm"),
        pytest.param(person(0, ktw=5.0), "step_back_up", id="below-from-0-mm"),
    ],
)
def test_the_direction_follows_spec(rules_only, request_, direction):
    assert rules_only.recommend(request_)["recommendation"]["direction"] == direction


@pytest.mark.parametrize("request_", VARIETY)
def test_the_direction_agrees_with_where_current_lies(rules_only, request_):
    rec = rules_only.recommend(request_)["recommendation"]
    current = request_["footwear"]["current_drop_mm"] + request_["footwear"].get(
        "heel_insert_mm", 0
    )
    lo, hi = rec["drop_mm"]["min"], rec["drop_mm"]["max"]
    if lo <= current <= hi:
        assert rec["direction"] == "keep"
        assert rec["transition_plan"] == []
    elif current > hi:
        assert rec["direction"] == "lower_gradually"
    else:
        assert rec["direction"] == ("step_back_up" if current <= 2 else "raise")


@pytest.mark.parametrize("current", [9, 10, 11, 12.5, 13, 14, 17, 19.5, 22, 26, 30])
def test_lowering_steps_down_at_most_four_mm_and_ends_at_the_range_max(rules_only, current):
    lifter = {"primary": "weightlifting"}
    out = rules_only.recommend(person(current, symptoms={"forefoot_pain": 3}, activity=lifter))
    rec = out["recommendation"]
    assert rec["direction"] == "lower_gradually"
    steps = rec["transition_plan"]
    assert [s["step"] for s in steps] == list(range(1, len(steps) + 1))
    drops = [current] + [s["drop_mm"] for s in steps]
    assert all(0 < a - b <= 4 for a, b in itertools.pairwise(drops))
    assert steps[-1]["drop_mm"] == rec["drop_mm"]["max"] == 6
    assert len(steps) == math.ceil((current - 6) / 4)
    assert {s["weeks"] for s in steps} == {4}
    assert rec["follow_up"]["retest_weeks"] == 4
    assert firings(out)["HD030"] is False


@pytest.mark.parametrize(
    "extra",
    [
        pytest.param({"person": {"body_mass_kg": 80}}, id="heavy"),
        pytest.param({"activity": {"running_km_per_week": 40}}, id="high-mileage"),
        pytest.param({"person": {"age_years": 70}}, id="older-adult"),
        pytest.param({"history": {"previous_stress_fracture": True}}, id="stress-fracture"),
        pytest.param({"footwear": {"years_in_heeled_shoes": 25}}, id="long-heeled-history"),
    ],
)
def test_a_loaded_or_long_heeled_transition_takes_six_weeks_a_step(rules_only, extra):
    out = rules_only.recommend(person(14, symptoms={"knee_pain": 4}, **extra))
    steps = out["recommendation"]["transition_plan"]
    assert [s["drop_mm"] for s in steps] == [11, 8]
    assert {s["weeks"] for s in steps} == {6}
    assert out["recommendation"]["follow_up"]["retest_weeks"] == 6


@pytest.mark.parametrize(
    ("request_", "target"),
    [
        pytest.param(person(3, ktw=5.0), 6, id="raise"),
        pytest.param(person(5, symptoms={"achilles_pain": 3}), 8, id="raise-for-achilles"),
        pytest.param(person(0, ktw=5.0), 6, id="step-back-up"),
        pytest.param(
            person(1, symptoms={"calf_tightness": 4, "started_after_shoe_change": True}),
            4,
            id="step-back-up-from-zero-drop",
        ),
    ],
)
def test_a_raise_is_one_step_to_the_range_min(rules_only, request_, target):
    rec = rules_only.recommend(request_)["recommendation"]
    assert rec["drop_mm"]["min"] == target
    assert [(s["step"], s["drop_mm"], s["weeks"]) for s in rec["transition_plan"]] == [
        (1, target, 4)
    ]


def test_keeping_has_no_plan_and_a_four_week_retest(rules_only):
    rec = rules_only.recommend(person(10, person={"body_mass_kg": 90}))["recommendation"]
    assert rec["direction"] == "keep"
    assert rec["transition_plan"] == []
    assert rec["follow_up"]["retest_weeks"] == 4
    assert "2 or more" in rec["follow_up"]["step_back_if"]


# Step 6: confidence, and the model's view


def test_the_rules_alone_use_the_documented_base_confidence(rules_only):
    out = rules_only.recommend(person(10))
    assert out["recommendation"]["confidence"] == pytest.approx(RULES_ONLY_CONFIDENCE)
    assert out["degraded"] is True
    assert out["explanation"]["model"]["version"] is None
    assert out["explanation"]["model"]["overridden_by_rules"] is False


def expected_factor(out: dict, rules) -> float:
    factor = {r.id: r.confidence for r in rules if r.confidence is not None}
    active = [rid for rid, over in firings(out).items() if not over]
    result = math.prod(factor.get(rid, 1.0) for rid in active)
    if {"HD001", "HD002", "HD003"} & set(active):
        result *= 0.5
    return result


@pytest.mark.parametrize("request_", VARIETY)
def test_with_the_model_confidence_is_the_chosen_bands_probability_times_the_factors(
    recommender, rules, request_
):
    out = recommender.recommend(request_)
    view = out["explanation"]["model"]
    p = view["band_probabilities"][out["recommendation"]["band"]]
    expected = p * expected_factor(out, rules)
    assert out["recommendation"]["confidence"] == pytest.approx(expected, abs=2e-4)


@pytest.mark.parametrize("request_", VARIETY)
def test_with_the_model_its_view_is_consistent(recommender, request_):
    out = recommender.recommend(request_)
    view = out["explanation"]["model"]
    probs = view["band_probabilities"]
    assert list(probs) == list(BANDS)
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert view["top_band"] == max(probs, key=probs.get)
    assert view["overridden_by_rules"] is (view["top_band"] != out["recommendation"]["band"])
    assert view["version"]
    assert out["degraded"] is False


def test_with_the_model_a_hard_referral_halves_the_probability_of_the_current_band(recommender):
    out = recommender.recommend(person(12, history=CANNOT_WALK, ktw=None))
    rec = out["recommendation"]
    assert rec["band"] == "high"
    assert span(out) == (12, 12)
    p = out["explanation"]["model"]["band_probabilities"]["high"]
    assert rec["confidence"] == pytest.approx(p * 0.5, abs=2e-4)


def test_the_model_and_the_rules_alone_agree_on_the_bounds(recommender, rules_only):
    for request_ in VARIETY:
        with_model = recommender.recommend(request_)
        alone = rules_only.recommend(request_)
        assert {k: v for k, v in firings(with_model).items() if k < "HD050"} == {
            k: v for k, v in firings(alone).items() if k < "HD050"
        }
        assert with_model["recommendation"]["referral"] == alone["recommendation"]["referral"]


# One call for many rows


DECISION_ROWS = (
    "band", "model_band", "allowed_min", "allowed_max", "range_min", "range_max", "direction",
    "pace_weeks", "confidence", "urgency",
)  # fmt: skip
FLAGS = ("fired", "overruled", "advice", "shaped")  # rules x rows


@pytest.mark.parametrize("with_probs", [False, True], ids=["rules-only", "model-probs"])
def test_three_rows_in_one_call_decide_as_three_separate_calls(rules, with_probs):
    requests = [
        person(9, insert=0.5, history=CANNOT_WALK),
        person(14, symptoms={"forefoot_pain": 3}, person={"body_mass_kg": 90}),
        person(1, ktw=None, symptoms={"calf_tightness": 4, "started_after_shoe_change": True}),
    ]
    probs = probs_for("lift", "high", "zero") if with_probs else None
    together = decisions(rules, requests, probs)
    assert [DIRECTIONS[k] for k in together.direction] == [
        "keep",
        "lower_gradually",
        "step_back_up",
    ]
    assert together.urgency.tolist() == [URGENCY.index("today"), 0, 0]
    for i, request_ in enumerate(requests):
        alone = decisions(rules, [request_], None if probs is None else probs[i : i + 1])
        for name in DECISION_ROWS:
            assert np.array_equal(getattr(together, name)[i], getattr(alone, name)[0]), name
        for name in FLAGS:
            assert np.array_equal(getattr(together, name)[:, i], getattr(alone, name)[:, 0]), name
        for name in ("floors", "ceilings"):
            mine, theirs = getattr(together, name), getattr(alone, name)
            assert theirs.keys() <= mine.keys(), name
            for rule_id in theirs:
                assert mine[rule_id][i] == theirs[rule_id][0], (name, rule_id)


def test_a_batch_of_requests_answers_each_as_alone(rules_only):
    batch = rules_only.explain(VARIETY)
    for request_, out in zip(VARIETY, batch, strict=True):
        alone = rules_only.recommend(request_)
        assert {**out, "request_id": None} == {**alone, "request_id": None}


def test_each_stage_evaluates_only_its_own_rules(rules):
    book = RuleBook(rules)
    for name, stage in book.stages.items():
        assert {member.rule.stage for member in stage.members} <= {name}
        assert all(book.rules[member.row] is member.rule for member in stage.members)
    assert sum(len(stage.members) for stage in book.stages.values()) == len(rules)
    bounds = [member.rule.id for member in book.stages["bounds"].members]
    assert bounds == [rule.id for rule in rules if rule.stage == "bounds"]  # priority order


def test_a_pace_rule_reads_the_range_as_the_range_stage_left_it(rules):
    """16 mm shoes and no complaint: content-keep takes the high band, 11-14 mm (the daily cap
    excludes lift); 16 mm is within 2 mm, so HD051 widens the range to 11-16 and keeps the drop.
    HD030 (lowering, in the pace stage) reads the widened range and stays silent."""
    d = decisions(rules, [person(16)], probs_for("moderate"))
    assert fired(d, "HD051") and not fired(d, "HD030")
    assert (d.range_min[0], d.range_max[0]) == (11, 16) and DIRECTIONS[d.direction[0]] == "keep"


def why(rules, rule_id: str) -> str:
    return next(rule.why for rule in rules if rule.id == rule_id)


def test_the_summary_gives_the_reason_for_a_bound_that_forces_the_change(rules):
    """Stepping back up from zero drop to the model's own band: HD010's floor is above the
    current drop, so its reason is the summary's."""
    request_ = person(
        0, symptoms={"calf_tightness": 5, "started_after_shoe_change": True},
        footwear={"weeks_in_current_drop": 10, "previous_drop_mm": 10},
    )  # fmt: skip
    cols = from_requests([load_request(request_)])
    d = decide(features(cols)[0], RuleBook(rules), probs_for("moderate"))
    out = render(d, None)[0]
    assert not out["explanation"]["model"]["overridden_by_rules"]
    assert out["recommendation"]["direction"] == "step_back_up"
    assert span(out) == (7, 10)
    assert why(rules, "HD010") in out["explanation"]["summary"]


def test_a_bound_far_from_the_range_stays_out_of_the_summary(rules_only, rules):
    """The everyday 14 mm cap is not a reason to keep 6 mm shoes."""
    out = rules_only.recommend(person(6, ktw=12.0))
    assert span(out)[1] < 14
    assert why(rules, "HD019") not in out["explanation"]["summary"]


def test_a_raise_is_explained_by_the_floor_that_demands_it_not_by_the_cap(rules):
    """Achilles pain in 4 mm shoes: HD011's floor trims the model's band and is above the
    current drop, so it is the reason; the 14 mm cap is not."""
    request_ = person(4, symptoms={"achilles_pain": 5}, activity={"primary": "running"})
    cols = from_requests([load_request(request_)])
    d = decide(features(cols)[0], RuleBook(rules), probs_for("moderate"))
    out = render(d, None)[0]
    assert out["recommendation"]["direction"] == "raise" and span(out) == (8, 10)
    assert why(rules, "HD011") in out["explanation"]["summary"]
    assert why(rules, "HD019") not in out["explanation"]["summary"]


@pytest.mark.parametrize(
    ("request_", "top", "reason"),
    [
        pytest.param(person(10, symptoms={"anterior_ankle_pinch": 3}), "moderate", None,
                     id="the-model-chose-the-band"),
        pytest.param(person(10, ktw=12.0), "moderate", "HD050", id="content-keep-agrees"),
        pytest.param(person(10, ktw=12.0), "low", "HD050", id="content-keep-moved-it"),
        pytest.param(person(10, symptoms={"forefoot_pain": 4}), "moderate", "HD015",
                     id="a-ceiling-moved-it"),
    ],
)  # fmt: skip
def test_the_summary_reason_is_the_rule_that_set_the_answer_else_the_models_estimate(
    rules, request_, top, reason
):
    cols = from_requests([load_request(request_)])
    d = decide(features(cols)[0], RuleBook(rules), probs_for(top))
    summary = render(d, None)[0]["explanation"]["summary"]
    if reason is None:
        assert "the model's best estimate for people like you" in summary
    else:
        assert why(rules, reason) in summary
        assert "model" not in summary
    assert "classifier" not in summary and "HD0" not in summary


DECIDED = ("allowed_min", "allowed_max", "model_band", "band", "range_min", "range_max",
           "direction", "pace_weeks", "confidence", "urgency")  # fmt: skip


def test_many_rows_decide_as_each_row_alone(rules):
    """600 varied rows in one call give each row the decisions it gets alone."""
    requests = [VARIETY[k % len(VARIETY)] for k in range(600)]
    probs = probs_for(*(BANDS[k % len(BANDS)] for k in range(600)))
    many = decisions(rules, requests, probs)
    for i in (0, 255, 256, 257, 511, 512, 599):
        one = decisions(rules, [requests[i]], probs[i : i + 1])
        for name in FLAGS:
            assert np.array_equal(getattr(many, name)[:, i], getattr(one, name)[:, 0]), (i, name)
        for name in DECIDED:
            assert getattr(many, name)[i] == getattr(one, name)[0], (i, name)


def _spelled(rules, whens: dict[str, str]):
    """The rule table with some rules' conditions written another way, compiled for their
    stage as the loader compiles them."""
    kinds = context_kinds()
    earlier = {stage: frozenset(r.id for r in rules if STAGES.index(r.stage) < k)
               for k, stage in enumerate(STAGES)}  # fmt: skip
    out = []
    for rule in rules:
        if rule.id in whens:
            compiler = Compiler(
                kinds | STAGE_VALUES.get(rule.stage, {}), earlier[rule.stage], OPTIONS
            )
            rule = dataclasses.replace(rule, when=compiler.condition_tree(whens[rule.id]))
        out.append(rule)
    return tuple(out)


EQUIVALENT = {
    "HD030": "current > range_max",  # in the pace stage, after the range stage rewrote the range
    "HD031": "current > range_max and (71.4 < body_mass_kg or 35 < running_km_per_week"
    " or previous_stress_fracture == true)",
    "HD012": "6 > ktw_min",
    "HD017": "(restriction_felt == 'front' or restriction_felt == 'both' or"
    " not (anterior_ankle_pinch < 3)) and not current_type == 'weightlifting'",
    "HD050": "not (anterior_ankle_pinch >= 3 or calf_tightness >= 3 or achilles_pain >= 3"
    " or plantar_heel_pain >= 3 or forefoot_pain >= 3 or knee_pain >= 3)",
    "HD051": "not (range_min <= current and current <= range_max) and range_min - 2 <= current"
    " and range_max + 2 >= current and not (current < symptom_min or current > symptom_max)",
}


def test_equivalent_spellings_of_a_condition_decide_identically_on_the_cohort(rules):
    """Each stage reads the values as they stand when it runs, so a condition written another
    way (the range read in the pace stage after the range stage widened it, among others) gives
    the same decisions on 20,000 simulated people, with a model's probabilities and without."""
    frame = simulate(20_000, seed=8).drop(columns=["outcome_band", "outcome_drop_mm"])
    ctx = features(check_frame(frame).columns)[0]
    probs = np.random.default_rng(8).dirichlet(np.ones(5), size=len(frame))
    respelled = _spelled(rules, EQUIVALENT)
    assert [r.when for r in respelled] != [r.when for r in rules]
    for given in (probs, None):
        a = decide(dict(ctx), RuleBook(rules), given)
        b = decide(dict(ctx), RuleBook(respelled), given)
        for name in (*FLAGS, *DECIDED):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
        assert a.fired[RuleBook(rules).index["HD030"]].sum() > 1000  # lowering happens


def test_the_rules_that_shaped_an_answer_are_those_the_summary_rule_names():
    """`shaped` (of active rules) on 3000 simulated people, against its definition row by row: a
    rule that set the band or widened the range; a binding end of the allowed interval that, on
    its side, excluded the model's top band or trimmed the chosen band; a bound beyond the
    current drop when the answer changes shoes."""
    frame = simulate(3000, seed=5).drop(columns=["outcome_band", "outcome_drop_mm"])
    cols = check_frame(frame).columns
    ctx, _ = features(cols)
    probs = np.random.default_rng(5).dirichlet(np.ones(5), size=len(frame))
    rules = load_rules()
    d = decide(ctx, RuleBook(rules), probs)
    lo_of, hi_of = [BAND_MM[b][0] for b in BANDS], [BAND_MM[b][1] for b in BANDS]
    seen = 0
    for i in range(len(frame)):
        lo, hi, now = d.allowed_min[i], d.allowed_max[i], d.ctx["current"][i]
        band, top = int(d.band[i]), int(d.model_band[i])
        changes = DIRECTIONS[d.direction[i]] != "keep"
        for j, rule in enumerate(d.book.rules):
            want = bool(rule.band) or rule.stage == "range"
            if rule.id in d.floors:  # the bounds of the rules that fired on some row
                f = d.floors[rule.id][i]
                low = hi_of[top] < lo or lo_of[band] < lo
                want = want or (f == lo and low) or (changes and f > now)
            if rule.id in d.ceilings:
                c = d.ceilings[rule.id][i]
                high = lo_of[top] > hi or hi_of[band] > hi
                want = want or (c == hi and high) or (changes and c < now)
            active = d.fired[j, i] and not d.overruled[j, i]
            assert d.shaped[j, i] == (want and active), (i, rule.id)
            seen += d.shaped[j, i]
    assert seen > 100  # the cohort exercises it
