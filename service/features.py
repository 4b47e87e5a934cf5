"""Derived values (RULES.md) and the classifier's feature matrix, from columns, vectorised.

Training and serving both call `model_matrix`, so the model never sees a column the server
cannot build.
"""

import numpy as np

from service.columns import Columns, empty
from service.fields import BAND_MM, BANDS, FIELDS, SEVERITIES

CM_PER_DEGREE = 1 / 3.6  # Bennell 1998: 1 cm of knee-to-wall is about 3.6 degrees
SHOE_HEEL_CM = 1.0  # a shoe adds about 1 cm of heel to a knee-to-wall test (PodiatryFAQ)
PAIN3 = SEVERITIES[:6]  # the six pains that count towards `pain3`
BAND_LO = np.array([BAND_MM[b][0] for b in BANDS], dtype=np.float64)
BAND_HI = np.array([BAND_MM[b][1] for b in BANDS], dtype=np.float64)


def context_name(path: str) -> str:
    """The name a rule uses for a request field: the path without its group."""
    return path.split(".", 1)[1].replace(".", "_") if "." in path else path


_BAND_EDGES = BAND_HI[:-1] + 0.5  # a drop past the last edge is in the last band


def band_of(drop: np.ndarray) -> np.ndarray:
    """Index into BANDS of the band holding each (possibly fractional) drop."""
    return np.searchsorted(_BAND_EDGES, drop, side="right")


_CONTEXT_NAMES = tuple((context_name(f.path), f.path) for f in FIELDS if f.kind != "text")


def _side_ktw(cols: Columns, side: str, in_shoes: np.ndarray) -> np.ndarray:
    ktw = cols[f"mobility.knee_to_wall_cm.{side}"]
    ktw = np.where(np.isnan(ktw), cols[f"mobility.lunge_angle_deg.{side}"] * CM_PER_DEGREE, ktw)
    return ktw - SHOE_HEEL_CM * in_shoes


def derive(cols: Columns) -> dict[str, np.ndarray]:
    """The rule context: every field by its short name plus the derived values of RULES.md."""
    ctx = {name: cols[path] for name, path in _CONTEXT_NAMES}
    # symptom(x): absent (NaN) counts as none; all eight in one pass
    severity = np.fmax(_rows([ctx[name] for name in SEVERITIES]), 0.0)
    ctx.update(zip(SEVERITIES, severity, strict=True))
    insert = np.fmax(ctx["heel_insert_mm"], 0.0)
    ctx["current"] = ctx["current_drop_mm"] + insert
    in_shoes = (ctx["measured_in"] == "shoes").astype(np.float64)
    left, right = _side_ktw(cols, "left", in_shoes), _side_ktw(cols, "right", in_shoes)
    ctx["ktw_left"], ctx["ktw_right"] = left, right
    ctx["ktw_min"] = np.fmin(left, right)
    ctx["ktw_asym"] = np.abs(left - right)
    ctx["pain3"] = severity[: len(PAIN3)].max(axis=0) >= 3
    runs = (ctx["primary"] == "running") | (ctx["running_km_per_week"] >= 5)
    ctx["regular_runner"] = (ctx["running_years"] >= 0.5) & runs
    ctx["lifting"] = (ctx["primary"] == "weightlifting") | (ctx["squats_in_lifting_shoes"] == 1)
    ctx["current_band"] = band_of(ctx["current"])
    return ctx


_BAND_FEATURES = [f"current_band_{b}" for b in BANDS]
_BAND_INDEX = np.arange(len(BANDS))[:, None]
_PAIN_FEATURES = [f"{name}_3" for name in SEVERITIES[2:6]]


def _rows(columns: list[np.ndarray]) -> np.ndarray:
    """Columns as the rows of one matrix (np.stack costs ten times more on short columns)."""
    return np.concatenate(columns).reshape(len(columns), len(columns[0]))


def _flag(x: np.ndarray) -> np.ndarray:
    return x == 1


def model_columns(ctx: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Named model inputs; NaN where absent (the pipeline imputes), indicators where it matters."""
    current = ctx["current"]
    ktw = ctx["ktw_min"]
    felt = ctx["restriction_felt"]
    pinch_front = (felt == "front") | (felt == "both")
    heeled = np.fmax(ctx["years_in_heeled_shoes"], 0.0)
    recent = (ctx["started_after_shoe_change"] == 1) | (ctx["weeks_in_current_drop"] < 26)
    convert = (current <= 2) & recent & (heeled >= 5)
    back_pain = np.fmax(
        np.fmax(ctx["calf_tightness"], ctx["achilles_pain"]), ctx["plantar_heel_pain"]
    )
    adapted = ~ctx["pain3"] & (ktw >= 10)
    feats = {
        "current_drop": current,
        **dict(zip(_BAND_FEATURES, ctx["current_band"] == _BAND_INDEX, strict=True)),
        "age_years": ctx["age_years"],
        "body_mass_kg": ctx["body_mass_kg"],
        "male": (ctx["sex"] == "male"),
        "years_in_heeled_shoes": heeled,
        "log_weeks_in_current_drop": np.log1p(ctx["weeks_in_current_drop"]),
        "drop_change_from_previous": current - ctx["previous_drop_mm"],
        "high_heel_hours_per_week": np.fmax(ctx["high_heel_hours_per_week"], 0.0),
        "running_km_per_week": np.fmax(ctx["running_km_per_week"], 0.0),
        "regular_runner": ctx["regular_runner"],
        "lifting": ctx["lifting"],
        **{name: ctx[name] for name in SEVERITIES[:6]},
        "started_after_shoe_change": _flag(ctx["started_after_shoe_change"]),
        "ktw_min_cm": ktw,
        "ktw_missing": np.isnan(ktw),
        "ktw_below_6": (ktw < 6),
        "ktw_below_10": (ktw < 10),
        "ktw_asym_cm": np.fmax(ctx["ktw_asym"], 0.0),
        "restriction_front": pinch_front,
        "restriction_back": (ctx["restriction_felt"] == "back"),
        "deep_squat_heels_down": _flag(ctx["deep_squat_heels_down"]),
        "zero_drop_convert": convert,
        "zero_drop_convert_pain": convert * back_pain,
        "current_drop_squared": np.square(current) / 10,
        "adapted": adapted,
        "adapted_x_current": adapted * current,
        **dict(
            zip(_PAIN_FEATURES, _rows([ctx[name] for name in SEVERITIES[2:6]]) >= 3, strict=True)
        ),
        "body_mass_over_71": np.fmin(np.fmax(ctx["body_mass_kg"] - 71.4, 0.0) / 20, 1.0),
        "runner_in_low_drop": ctx["regular_runner"] * (current <= 6),
        "front_block_severe": pinch_front * (ktw < 6),
        "back_block_severe": (ctx["restriction_felt"] == "back") * (ktw < 6),
    }
    return feats


def model_matrix(ctx: dict[str, np.ndarray]) -> np.ndarray:
    """The n x len(FEATURES) float matrix the classifier sees."""
    n = len(ctx["current"])
    flat = np.concatenate(list(model_columns(ctx).values()), dtype=np.float64, casting="unsafe")
    return flat.reshape(len(FEATURES), n).T  # feature by feature in memory, n x features


FEATURES: tuple[str, ...] = tuple(model_columns(derive(empty(0))))

# The input each feature stands for, so attributions name something a person gave us.
_INPUT_BY_PREFIX = {
    "current_": "footwear.current_drop_mm",
    "ktw_": "mobility.knee_to_wall_cm",
    "restriction_": "mobility.restriction_felt",
    "zero_drop_": "heeled history and a recent zero-drop switch",
    "runner_in_low": "regular running in a low drop",
    "front_block": "severe restriction with a front block",
    "back_block": "severe restriction with a calf block",
    "drop_change": "footwear.previous_drop_mm",
    "log_weeks": "footwear.weeks_in_current_drop",
    "male": "person.sex",
    "adapted": "no pain and good mobility",
    "achilles_pain": "symptoms.achilles_pain",
    "plantar_heel_pain": "symptoms.plantar_heel_pain",
    "forefoot_pain": "symptoms.forefoot_pain",
    "knee_pain": "symptoms.knee_pain",
    "body_mass": "person.body_mass_kg",
    "regular_runner": "activity (regular runner)",
    "lifting": "activity (lifting)",
}
_PATH_OF = {context_name(f.path): f.path for f in FIELDS}
FEATURE_INPUTS = {
    name: next(
        (v for k, v in _INPUT_BY_PREFIX.items() if name.startswith(k)), _PATH_OF.get(name, name)
    )
    for name in FEATURES
}
