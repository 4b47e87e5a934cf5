"""The clinical cases checker on hand-made responses, and the shipped cases as data."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest

from service.core.rules import load_rules
from service.training.cases import EXPECT_KEYS, check_case, load_cases

CASES = load_cases()

SEVERITY = ("int", 0, 10)
SIDES = {"left": ("num", 0, 25), "right": ("num", 0, 25)}
# The request (docs/fields.md): (kind, low, high) numbers, frozenset enums, bool, nested dicts.
SPEC_REQUEST: dict[str, Any] = {
    "person": {
        "age_years": ("num", 8, 100),
        "body_mass_kg": ("num", 25, 250),
        "sex": frozenset({"female", "male", "other", "unspecified"}),
    },
    "footwear": {
        "current_drop_mm": ("num", 0, 30),
        "heel_insert_mm": ("num", 0, 25),
        "current_stack_mm": ("num", 0, 60),
        "current_type": frozenset(
            {"road_running", "trail_running", "walking", "casual", "dress", "work_boot"}
            | {"minimalist", "weightlifting", "court", "other"}
        ),
        "weeks_in_current_drop": ("num", 0, 2080),
        "previous_drop_mm": ("num", 0, 30),
        "years_in_heeled_shoes": ("num", 0, 90),
        "high_heel_hours_per_week": ("num", 0, 112),
        "heel_lift_effect": frozenset({"helps", "no_change", "worse", "untried"}),
    },
    "activity": {
        "primary": frozenset(
            {"running", "walking", "standing_work", "weightlifting", "court_sports", "general"}
        ),
        "running_km_per_week": ("num", 0, 300),
        "running_years": ("num", 0, 80),
        "squats_in_lifting_shoes": bool,
    },
    "symptoms": {
        **dict.fromkeys(("anterior_ankle_pinch", "calf_tightness", "achilles_pain"), SEVERITY),
        **dict.fromkeys(("plantar_heel_pain", "forefoot_pain", "knee_pain"), SEVERITY),
        **dict.fromkeys(("ankle_swelling", "numbness_tingling"), SEVERITY),
        **dict.fromkeys(("started_after_shoe_change", "calf_swelling_one_side"), bool),
        **dict.fromkeys(("hot_red_joint_or_fever", "night_or_rest_pain"), bool),
        **dict.fromkeys(("ankle_locks_or_catches", "focal_bone_pain"), bool),
    },
    "history": {
        "weeks_since_ankle_surgery": ("num", 0, 5200),
        "weeks_since_ankle_injury": ("num", 0, 5200),
        "ankle_sprains_past_2_years": ("num", 0, 50),
        "suspected_achilles_rupture": bool,
        "weeks_since_achilles_rupture": ("num", 0, 5200),
        "diabetes_or_neuropathy": bool,
        "previous_stress_fracture": bool,
        "leg_length_difference_mm": ("num", 0, 60),
        "can_walk_four_steps": bool,
    },
    "mobility": {
        "knee_to_wall_cm": SIDES,
        "lunge_angle_deg": {"left": ("num", 0, 80), "right": ("num", 0, 80)},
        "measured_in": frozenset({"barefoot", "shoes"}),
        "restriction_felt": frozenset({"front", "back", "both", "none", "unknown"}),
        "deep_squat_heels_down": bool,
        "tighter_with_knee": frozenset({"straight", "bent", "same", "unknown"}),
    },
}
RULE_IDS = frozenset(rule.id for rule in load_rules())  # HD046, the project's own, included
BANDS = frozenset({"zero", "low", "moderate", "high", "lift"})
DIRECTIONS = frozenset({"keep", "lower_gradually", "raise", "step_back_up"})


def spec_errors(value: Any, spec: Any, path: str) -> list[str]:
    """Where value breaks spec (SPEC_REQUEST's notation), as 'path: problem' strings."""
    if isinstance(spec, dict):
        if not isinstance(value, dict):
            return [f"{path}: not an object"]
        unknown = [f"{path}.{k}: unknown field" for k in value if k not in spec]
        return unknown + [
            e for k, v in value.items() if k in spec for e in spec_errors(v, spec[k], f"{path}.{k}")
        ]
    if spec is bool:
        return [] if isinstance(value, bool) else [f"{path}: not a boolean"]
    if isinstance(spec, frozenset):
        return [] if value in spec else [f"{path}: {value!r} not one of {sorted(spec)}"]
    kind, low, high = spec
    if isinstance(value, bool) or not isinstance(value, int | float):
        return [f"{path}: not a number"]
    if kind == "int" and not isinstance(value, int):
        return [f"{path}: not an integer"]
    return [] if low <= value <= high else [f"{path}: {value} outside {low}-{high}"]


def request_errors(request: Any) -> list[str]:
    """Contract violations of a whole request."""
    if not isinstance(request, dict):
        return ["request: not an object"]
    errors = []
    ref = request.get("client_ref")
    if "client_ref" in request and not (isinstance(ref, str) and len(ref) <= 64):
        errors.append("client_ref: not a string of at most 64 characters")
    if "current_drop_mm" not in (request.get("footwear") or {}):
        errors.append("footwear.current_drop_mm: required")
    rest = {k: v for k, v in request.items() if k != "client_ref"}
    return errors + spec_errors(rest, SPEC_REQUEST, "request")


# --- the checker on hand-made responses ---

CASE: dict[str, Any] = {
    "id": "hand-made",
    "request": {"footwear": {"current_drop_mm": 12, "heel_insert_mm": 2}},
    "expect": {
        "refer": False,
        "rules_fired": ["HD017"],
        "rules_not_fired": ["HD010"],
        "rules_overruled": ["HD019"],
        "band_in": ["low", "moderate"],
        "direction_in": ["lower_gradually"],
        "drop_min_at_least": 4,
        "drop_max_at_most": 10,
        "advice_ids": ["HD017"],
        "plan_steps_at_most_mm": 4,
    },
}


def holding_response() -> dict[str, Any]:
    """A response that meets every expectation of CASE."""
    return {
        "request_id": "r1",
        "client_ref": None,
        "recommendation": {
            "drop_mm": {"min": 7, "max": 10},
            "band": "moderate",
            "direction": "lower_gradually",
            "transition_plan": [
                {"step": 1, "drop_mm": 10, "weeks": 4, "note": "14 -> 10"},
            ],
            "confidence": 0.6,
            "refer_to_clinician": False,
            "referral": None,
            "follow_up": {"retest_weeks": 4, "step_back_if": "pain rises by 2"},
        },
        "explanation": {
            "summary": "s",
            "rules": [
                {
                    "id": "HD017",
                    "name": "n",
                    "effect": "e",
                    "message": "m",
                    "rationale": "r",
                    "overruled": False,
                },
                {
                    "id": "HD019",
                    "name": "n",
                    "effect": "e",
                    "message": "m",
                    "rationale": "r",
                    "overruled": True,
                },
            ],
            "model": {},
            "missing_inputs": [],
        },
        "advice": [{"id": "HD017", "text": "talar glide"}],
        "degraded": False,
    }


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A mutation setting the dotted path of a response to value."""

    def mutate(response: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = response
        for part in parents:
            node = node[part]
        node[last] = value

    return mutate


def _rules(*rules: tuple[str, bool]) -> Callable[[dict[str, Any]], None]:
    """A mutation replacing explanation.rules by (id, overruled) pairs."""
    return _set("explanation.rules", [{"id": i, "overruled": o} for i, o in rules])


REFERRAL = {"urgency": "soon", "reasons": ["x"]}
VIOLATIONS: list[tuple[str, Callable[[dict[str, Any]], None]]] = [
    ("refer", _set("recommendation.referral", REFERRAL)),
    ("refer", _set("recommendation.refer_to_clinician", True)),
    ("rules_fired", _rules(("HD019", True))),
    ("rules_fired", _rules(("HD017", True), ("HD019", True))),
    ("rules_not_fired", _rules(("HD017", False), ("HD019", True), ("HD010", False))),
    ("rules_not_fired", _rules(("HD017", False), ("HD019", True), ("HD010", True))),
    ("rules_overruled", _rules(("HD017", False))),
    ("rules_overruled", _rules(("HD017", False), ("HD019", False))),
    ("band_in", _set("recommendation.band", "zero")),
    ("direction_in", _set("recommendation.direction", "keep")),
    ("drop_min_at_least", _set("recommendation.drop_mm", {"min": 3, "max": 6})),
    ("drop_max_at_most", _set("recommendation.drop_mm", {"min": 7, "max": 12})),
    ("advice_ids", _set("advice", [{"id": "HD040", "text": "t"}])),
    ("plan_steps_at_most_mm", _set("recommendation.transition_plan", [{"step": 1, "drop_mm": 9}])),
    (
        "plan_steps_at_most_mm",
        _set(
            "recommendation.transition_plan",
            [{"step": 1, "drop_mm": 10}, {"step": 2, "drop_mm": 5}],
        ),
    ),
]


def test_a_holding_response_gives_no_failures() -> None:
    assert check_case(CASE, holding_response()) == []


@pytest.mark.parametrize(("key", "mutate"), VIOLATIONS)
def test_each_violated_expectation_is_named(
    key: str, mutate: Callable[[dict[str, Any]], None]
) -> None:
    response = holding_response()
    mutate(response)
    failures = check_case(CASE, response)
    assert failures, key
    assert all(f.startswith("[hand-made] ") for f in failures)
    assert any(key in f for f in failures), failures


def test_refer_today_and_soon() -> None:
    case = {"id": "c", "expect": {"refer": "today"}}
    response = holding_response()
    assert any("refer" in f for f in check_case(case, response))
    _set("recommendation.referral", {"urgency": "today", "reasons": ["x"]})(response)
    _set("recommendation.refer_to_clinician", True)(response)
    assert check_case(case, response) == []
    assert any("refer" in f for f in check_case({"id": "c", "expect": {"refer": "soon"}}, response))


def test_no_advice() -> None:
    case = {"id": "c", "expect": {"no_advice": True}}
    assert any("no_advice" in f for f in check_case(case, holding_response()))
    response = holding_response()
    response["advice"] = []
    assert check_case(case, response) == []


def test_raise_and_keep_plans_pass_the_step_check() -> None:
    case = {
        "id": "c",
        "request": {"footwear": {"current_drop_mm": 0}},
        "expect": {"plan_steps_at_most_mm": 4},
    }
    response = holding_response()
    response["recommendation"]["transition_plan"] = [{"step": 1, "drop_mm": 8}]
    assert check_case(case, response) == []
    response["recommendation"]["transition_plan"] = []
    assert check_case(case, response) == []


def test_unknown_expectation_key_and_missing_parts() -> None:
    assert any("bogus" in f for f in check_case({"id": "c", "expect": {"bogus": 1}}, {}))
    failures = check_case(CASE, {})
    for key in (
        "rules_fired",
        "rules_overruled",
        "band_in",
        "direction_in",
        "drop_min_at_least",
        "drop_max_at_most",
        "advice_ids",
    ):
        assert any(key in f for f in failures), key


# --- the article cases as data ---


def test_there_are_enough_cases_with_unique_kebab_ids() -> None:
    ids = [c["id"] for c in CASES]
    assert len(ids) >= 14
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[a-z0-9]+(-[a-z0-9]+)*", i) for i in ids)
    for person in (
        "ryan",
        "michael",
        "johan",
        "jamie",
        "steve",
        "beemshake",
        "nickeva",
        "sara",
        "devi",
        "daniel",
        "ref-tu",
    ):
        assert any(i.startswith(person) for i in ids), person


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_request_follows_spec(case: dict[str, Any]) -> None:
    assert set(case) == {"id", "who", "why", "request", "expect"}
    assert case["who"].strip() and case["why"].strip()
    assert request_errors(case["request"]) == []


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_case_expectations_are_well_formed(case: dict[str, Any]) -> None:
    exp = case["expect"]
    assert exp and set(exp) <= EXPECT_KEYS
    assert exp.get("refer", False) in (False, "today", "soon")
    named = [exp.get(k, []) for k in ("rules_fired", "rules_not_fired", "rules_overruled")]
    assert all(set(ids) <= RULE_IDS for ids in [*named, exp.get("advice_ids", [])])
    fired, not_fired, overruled = (set(ids) for ids in named)
    assert not (fired & not_fired or fired & overruled or not_fired & overruled)
    assert set(exp.get("band_in", BANDS)) <= BANDS
    assert set(exp.get("direction_in", DIRECTIONS)) <= DIRECTIONS
    assert 0 <= exp.get("drop_min_at_least", 0) <= exp.get("drop_max_at_most", 30) <= 30
    if exp.get("no_advice"):
        assert not exp.get("advice_ids") and exp.get("refer") in ("today", "soon")


def test_request_validator_catches_bad_requests() -> None:
    assert request_errors({"footwear": {"current_drop_mm": 31}})
    assert request_errors({"footwear": {"current_drop_mm": 4}, "symptoms": {"achilles_pain": 2.5}})
    assert request_errors({"footwear": {"current_drop_mm": 4, "colour": "red"}})
    assert request_errors({"footwear": {"current_drop_mm": 4}, "mood": {}})
    assert request_errors({"person": {"age_years": 30}})
    assert request_errors({"footwear": {"current_drop_mm": True}})
    assert request_errors({"footwear": {"current_drop_mm": 4}, "mobility": {"measured_in": "sock"}})
    assert request_errors({"footwear": {"current_drop_mm": 4, "current_type": "sandal"}})
    assert not request_errors(
        {"footwear": {"current_drop_mm": 4}, "mobility": {"knee_to_wall_cm": {"left": 9.5}}}
    )
