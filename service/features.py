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
_SIDES = ("left", "right")
_KTW = tuple(f"mobility.knee_to_wall_cm.{side}" for side in _SIDES)
_LUNGE = tuple(f"mobility.lunge_angle_deg.{side}" for side in _SIDES)


def _rows(columns: list[np.ndarray]) -> np.ndarray:
    """Columns as the rows of one matrix (np.stack costs ten times more on short columns)."""
    return np.concatenate(columns).reshape(len(columns), len(columns[0]))


def derive(cols: Columns) -> dict[str, np.ndarray]:
    """The rule context: every field by its short name plus the derived values of RULES.md."""
    ctx = {name: cols[path] for name, path in _CONTEXT_NAMES}
    # symptom(x): absent (NaN) counts as none; all eight in one pass
    severity = np.fmax(_rows([ctx[name] for name in SEVERITIES]), 0.0)
    ctx.update(zip(SEVERITIES, severity, strict=True))
    current = ctx["current_drop_mm"] + np.fmax(ctx["heel_insert_mm"], 0.0)
    # both sides at once: knee-to-wall, else the lunge angle in cm; a shoe's heel taken off
    ktw = _rows([cols[path] for path in _KTW])
    lunge = _rows([cols[path] for path in _LUNGE])
    in_shoes = ctx["measured_in"] == "shoes"
    left, right = np.where(np.isnan(ktw), lunge * CM_PER_DEGREE, ktw) - SHOE_HEEL_CM * in_shoes
    ctx.update(current=current, ktw_left=left, ktw_right=right)
    ctx["ktw_min"] = np.fmin(left, right)
    ctx["ktw_asym"] = np.abs(left - right)
    ctx["pain3"] = severity[: len(PAIN3)].max(axis=0) >= 3
    primary = ctx["primary"]
    runs = (primary == "running") | (ctx["running_km_per_week"] >= 5)
    ctx["regular_runner"] = (ctx["running_years"] >= 0.5) & runs
    ctx["lifting"] = (primary == "weightlifting") | (ctx["squats_in_lifting_shoes"] == 1)
    ctx["current_band"] = band_of(current)
    return ctx


# The classifier's inputs, in the order of its coefficients (a registered model names them).
FEATURES: tuple[str, ...] = (
    "current_drop",
    *(f"current_band_{b}" for b in BANDS),
    "age_years",
    "body_mass_kg",
    "male",
    "years_in_heeled_shoes",
    "log_weeks_in_current_drop",
    "drop_change_from_previous",
    "high_heel_hours_per_week",
    "running_km_per_week",
    "regular_runner",
    "lifting",
    *SEVERITIES[:6],
    "started_after_shoe_change",
    "ktw_min_cm",
    "ktw_missing",
    "ktw_below_6",
    "ktw_below_10",
    "ktw_asym_cm",
    "restriction_front",
    "restriction_back",
    "deep_squat_heels_down",
    "zero_drop_convert",
    "zero_drop_convert_pain",
    "current_drop_squared",
    "adapted",
    "adapted_x_current",
    *(f"{name}_3" for name in SEVERITIES[2:6]),
    "body_mass_over_71",
    "runner_in_low_drop",
    "front_block_severe",
    "back_block_severe",
)
_BAND_INDEX = np.arange(len(BANDS))[:, None]
_FELT = np.array([["front"], ["both"], ["back"]])
_AT_MOST = np.array([[2.0], [6.0]])  # current <= 2 (zero drop), <= 6 (low)
_BELOW = np.array([[6.0], [10.0], [26.0]])  # ktw < 6, ktw < 10, weeks < 26


def model_matrix(ctx: dict[str, np.ndarray]) -> np.ndarray:
    """The n x len(FEATURES) float matrix the classifier sees; NaN where absent (the pipeline
    imputes), indicators where it matters. Like features share one numpy call."""
    current, ktw, weeks = ctx["current"], ctx["ktw_min"], ctx["weeks_in_current_drop"]
    felt = ctx["restriction_felt"] == _FELT  # front, both, back
    front, back = felt[0] | felt[1], felt[2]
    clipped = np.fmax(
        _rows([ctx[name] for name in ("years_in_heeled_shoes", "high_heel_hours_per_week",
                                      "running_km_per_week", "ktw_asym")]),
        0.0,
    )  # fmt: skip
    heeled = clipped[0]
    at_most = current <= _AT_MOST
    below = _rows([ktw, ktw, weeks]) < _BELOW
    given = _rows([ctx["started_after_shoe_change"], ctx["deep_squat_heels_down"]]) == 1
    convert = at_most[0] & (given[0] | below[2]) & (heeled >= 5)
    pains = _rows([ctx[name] for name in SEVERITIES[:6]])
    adapted = ~ctx["pain3"] & (ktw >= 10)
    mass = ctx["body_mass_kg"]
    runner = ctx["regular_runner"]
    pieces = (
        current,
        ctx["current_band"] == _BAND_INDEX,
        ctx["age_years"],
        mass,
        ctx["sex"] == "male",
        heeled,
        np.log1p(weeks),
        current - ctx["previous_drop_mm"],
        clipped[1],
        clipped[2],
        runner,
        ctx["lifting"],
        pains,
        given[0],
        ktw,
        np.isnan(ktw),
        below[0],
        below[1],
        clipped[3],
        front,
        back,
        given[1],
        convert,
        convert * pains[1:4].max(axis=0),  # calf, Achilles or plantar heel pain
        np.square(current) / 10,
        adapted,
        adapted * current,
        pains[2:6] >= 3,
        np.fmin(np.fmax(mass - 71.4, 0.0) / 20, 1.0),
        runner * at_most[1],
        front * below[0],
        back * below[0],
    )
    flat = np.concatenate([p.ravel() for p in pieces], dtype=np.float64, casting="unsafe")
    return flat.reshape(len(FEATURES), len(current)).T  # feature by feature in memory


if model_matrix(derive(empty(1))).shape != (1, len(FEATURES)):
    raise RuntimeError("model_matrix and FEATURES disagree")  # a change made to one only

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
