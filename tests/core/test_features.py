"""The classifier's features: the vectorised matrix equals a plain reading of each definition."""

import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from service.core.columns import from_requests
from service.core.features import FEATURES, features
from service.core.fields import BANDS, SEVERITIES
from service.core.schema import load_request
from tests.strategies import get, requests

NAN = math.nan


def _num(request: dict, path: str) -> float:
    value = get(request, path)
    return NAN if value is None else float(value)


def _nan_max(*values: float) -> float:
    """numpy's fmax: NaN only when every value is NaN."""
    given_values = [v for v in values if not math.isnan(v)]
    return max(given_values) if given_values else NAN


def _band(drop: float) -> int:
    return sum(drop >= edge for edge in (2.5, 6.5, 10.5, 14.5))


def reference(request: dict) -> dict[str, float]:
    """Every feature of one request, from the definitions in docs/rules.md, one value at a time."""
    sev = {s: _nan_max(_num(request, f"symptoms.{s}"), 0.0) for s in SEVERITIES}
    current = _num(request, "footwear.current_drop_mm") + _nan_max(
        _num(request, "footwear.heel_insert_mm"), 0.0
    )
    in_shoes = get(request, "mobility.measured_in") == "shoes"

    def side(name: str) -> float:
        ktw = _num(request, f"mobility.knee_to_wall_cm.{name}")
        if math.isnan(ktw):
            ktw = _num(request, f"mobility.lunge_angle_deg.{name}") / 3.6
        value = ktw - (1.0 if in_shoes else 0.0)
        return max(value, 0.0) if not math.isnan(value) else NAN  # never below 0

    left, right = side("left"), side("right")
    ktw = _nan_max(-left, -right)
    ktw = -ktw if not math.isnan(ktw) else NAN
    asym = abs(left - right)
    primary = get(request, "activity.primary")
    km = _num(request, "activity.running_km_per_week")
    runner = _num(request, "activity.running_years") >= 0.5 and (primary == "running" or km >= 5)
    lifting = primary == "weightlifting" or get(request, "activity.squats_in_lifting_shoes") is True
    heeled = _nan_max(_num(request, "footwear.years_in_heeled_shoes"), 0.0)
    weeks = _num(request, "footwear.weeks_in_current_drop")
    started = get(request, "symptoms.started_after_shoe_change") is True
    convert = current <= 2 and (started or weeks < 26) and heeled >= 5
    felt = get(request, "mobility.restriction_felt")
    front, back = felt in ("front", "both"), felt == "back"
    pain3 = max(sev[s] for s in SEVERITIES[:6]) >= 3
    adapted = not pain3 and ktw >= 10
    mass = _num(request, "person.body_mass_kg")
    band = _band(current)
    values = {
        "current_drop": current,
        **{f"current_band_{b}": float(band == k) for k, b in enumerate(BANDS)},
        "age_years": _num(request, "person.age_years"),
        "body_mass_kg": mass,
        "male": get(request, "person.sex") == "male",
        "years_in_heeled_shoes": heeled,
        "log_weeks_in_current_drop": math.log1p(weeks) if not math.isnan(weeks) else NAN,
        "drop_change_from_previous": current - _num(request, "footwear.previous_drop_mm"),
        "high_heel_hours_per_week": _nan_max(
            _num(request, "footwear.high_heel_hours_per_week"), 0.0
        ),
        "running_km_per_week": _nan_max(km, 0.0),
        "regular_runner": runner,
        "lifting": lifting,
        **{s: sev[s] for s in SEVERITIES[:6]},
        "started_after_shoe_change": started,
        "ktw_min_cm": ktw,
        "ktw_missing": math.isnan(ktw),
        "ktw_below_6": ktw < 6,
        "ktw_below_10": ktw < 10,
        "ktw_asym_cm": _nan_max(asym, 0.0),
        "restriction_front": front,
        "restriction_back": back,
        "deep_squat_heels_down": get(request, "mobility.deep_squat_heels_down") is True,
        "zero_drop_convert": convert,
        "zero_drop_convert_pain": convert
        * max(sev["calf_tightness"], sev["achilles_pain"], sev["plantar_heel_pain"]),
        "current_drop_squared": current**2 / 10,
        "adapted": adapted,
        "adapted_x_current": adapted * current,
        **{f"{s}_3": sev[s] >= 3 for s in SEVERITIES[2:6]},
        "body_mass_over_71": min(max(mass - 71.4, 0.0) / 20, 1.0) if not math.isnan(mass) else 0.0,
        "runner_in_low_drop": runner and current <= 6,
        "front_block_severe": front and ktw < 6,
        "back_block_severe": back and ktw < 6,
        "heel_lift_helps": get(request, "footwear.heel_lift_effect") == "helps",
        "heel_lift_worse": get(request, "footwear.heel_lift_effect") == "worse",
        "tighter_with_knee_straight": get(request, "mobility.tighter_with_knee") == "straight",
    }
    return {name: float(v) for name, v in values.items()}


@settings(max_examples=150, deadline=None)
@given(batch=st.lists(requests(), min_size=1, max_size=8))
def test_every_feature_equals_its_definition_read_one_request_at_a_time(batch):
    X = features(from_requests([load_request(r) for r in batch]))[1]
    assert X.shape == (len(batch), len(FEATURES))
    for row, request in zip(X, batch, strict=True):
        expected = reference(request)
        assert list(expected) == list(FEATURES)
        got = dict(zip(FEATURES, row.tolist(), strict=True))
        for name in FEATURES:
            assert math.isclose(got[name], expected[name], rel_tol=1e-12, abs_tol=1e-12) or (
                math.isnan(got[name]) and math.isnan(expected[name])
            ), (name, got[name], expected[name], request)


def test_a_request_in_shoes_has_a_heel_taken_off_each_knee_to_wall_side():
    body = {
        "footwear": {"current_drop_mm": 8},
        "mobility": {"knee_to_wall_cm": {"left": 9, "right": 12}, "measured_in": "shoes"},
    }
    ctx = features(from_requests([load_request(body)]))[0]
    assert ctx["ktw_left"].tolist() == [8.0] and ctx["ktw_right"].tolist() == [11.0]
    assert ctx["ktw_min"].tolist() == [8.0] and ctx["ktw_asym"].tolist() == [3.0]
    assert np.isnan(
        features(from_requests([{"footwear": {"current_drop_mm": 8}}]))[0]["ktw_min"][0]
    )
