"""Derived values (docs/rules.md) and the classifier's inputs, from columns, vectorised.

Training and serving both call `features`, so the model never sees a column the server cannot
build.
"""

import numpy as np

from service.core.columns import Columns, empty
from service.core.fields import BAND_MM, BANDS, BY_PATH, FIELDS, SEVERITIES

CM_PER_DEGREE = 1 / 3.6  # Bennell 1998: 1 cm of knee-to-wall is about 3.6 degrees
SHOE_HEEL_CM = 1.0  # a shoe adds about 1 cm of heel to a knee-to-wall test (PodiatryFAQ)
PAINS = SEVERITIES[:6]  # the six pains that count towards `pain3`
BAND_LO = np.array([BAND_MM[b][0] for b in BANDS], dtype=np.float64)
BAND_HI = np.array([BAND_MM[b][1] for b in BANDS], dtype=np.float64)
_BAND_EDGES = BAND_HI[:-1] + 0.5  # a drop past the last edge is in the last band


def context_name(path: str) -> str:
    """The name a rule uses for a request field: the path without its group."""
    return path.split(".", 1)[1].replace(".", "_") if "." in path else path


def band_of(drop: np.ndarray) -> np.ndarray:
    """Index into BANDS of the band holding each (possibly fractional) drop."""
    return np.searchsorted(_BAND_EDGES, drop, side="right")


def _code(path: str, option: str) -> float:
    """The code an enum option has in columns."""
    return BY_PATH[path].codes[option]


SHOES = _code("mobility.measured_in", "shoes")
RUNNING = _code("activity.primary", "running")
WEIGHTLIFTING = _code("activity.primary", "weightlifting")
MALE = _code("person.sex", "male")
FELT = np.array([[_code("mobility.restriction_felt", f)] for f in ("front", "both", "back")])
LIFT = np.array([[_code("footwear.heel_lift_effect", e)] for e in ("helps", "worse")])
KNEE_STRAIGHT = _code("mobility.tighter_with_knee", "straight")
SIDES = ("left", "right")
# Derived values with options, as enums are: their codes index these.
DERIVED_OPTIONS = {"stiffer_side": SIDES, "ktw_min_side": SIDES}
_NAMES = tuple((context_name(f.path), f.path) for f in FIELDS if f.kind != "text")


def derive(cols: Columns) -> dict[str, np.ndarray]:
    """The rule context: every field by its short name, plus the derived values of docs/rules.md:
    the severities with absent as 0, the effective `current` drop and its band, knee-to-wall per
    side (from the lunge angle when not measured, less a shoe's heel, never below 0),
    `ktw_min`, `ktw_max`, `ktw_asym` and the `stiffer_side` (when they differ by 2 cm or more),
    `ktw_min_side` (the stiffer side, or the only side measured),
    `pain_max` (the largest pain; calf tightness is not pain), and the flags `pain3`, `runs`,
    `regular_runner` and `lifting`."""
    ctx = {name: cols[path] for name, path in _NAMES}
    severity = np.fmax(np.array([ctx[name] for name in SEVERITIES]), 0.0)
    ctx.update(zip(SEVERITIES, severity, strict=True))
    current = ctx["current_drop_mm"] + np.fmax(ctx["heel_insert_mm"], 0.0)
    ktw = np.array([cols[f"mobility.knee_to_wall_cm.{side}"] for side in SIDES])
    lunge = np.array([cols[f"mobility.lunge_angle_deg.{side}"] for side in SIDES])
    heel = SHOE_HEEL_CM * (ctx["measured_in"] == SHOES)
    left, right = np.maximum(np.where(np.isnan(ktw), lunge * CM_PER_DEGREE, ktw) - heel, 0.0)
    asym = np.abs(left - right)
    stiffer = np.where(asym >= 2, (right < left).astype(np.float64), np.nan)
    measured_left, measured_right = ~np.isnan(left), ~np.isnan(right)
    min_side = np.where(  # the stiffer side, or the one side measured
        measured_left & ~measured_right,
        0.0,
        np.where(measured_right & ~measured_left, 1.0, stiffer),
    )
    primary = ctx["primary"]
    runs = (primary == RUNNING) | (ctx["running_km_per_week"] >= 5)
    pains = severity[: len(PAINS)]
    ctx.update(
        current=current,
        current_band=band_of(current),
        ktw_left=left,
        ktw_right=right,
        ktw_min=np.fmin(left, right),
        ktw_max=np.fmax(left, right),
        ktw_asym=asym,
        stiffer_side=stiffer,
        ktw_min_side=min_side,
        pain_max=np.delete(pains, PAINS.index("calf_tightness"), axis=0).max(axis=0),
        pain3=pains.max(axis=0) >= 3,
        runs=runs,
        regular_runner=(ctx["running_years"] >= 0.5) & runs,
        lifting=(primary == WEIGHTLIFTING) | (ctx["squats_in_lifting_shoes"] == 1),
    )
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
    *PAINS,
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
    *(f"{name}_3" for name in PAINS[2:]),
    "body_mass_over_71",
    "runner_in_low_drop",
    "front_block_severe",
    "back_block_severe",
    "heel_lift_helps",
    "heel_lift_worse",
    "tighter_with_knee_straight",
)
_BAND_INDEX = np.arange(len(BANDS))[:, None]


def model_inputs(ctx: dict[str, np.ndarray]) -> np.ndarray:
    """The n x len(FEATURES) matrix the classifier sees: NaN where absent (the model imputes),
    indicators where it matters."""
    current, ktw, weeks = ctx["current"], ctx["ktw_min"], ctx["weeks_in_current_drop"]
    felt = ctx["restriction_felt"] == FELT  # front, both, back
    front, back = felt[0] | felt[1], felt[2]
    heeled, hours, km, asym = np.fmax(
        np.array([ctx[name] for name in
                  ("years_in_heeled_shoes", "high_heel_hours_per_week", "running_km_per_week",
                   "ktw_asym")]),
        0.0,
    )  # fmt: skip
    started = ctx["started_after_shoe_change"] == 1
    convert = (current <= 2) & (started | (weeks < 26)) & (heeled >= 5)
    pains = np.array([ctx[name] for name in PAINS])
    adapted = ~ctx["pain3"] & (ktw >= 10)
    mass, runner = ctx["body_mass_kg"], ctx["regular_runner"]
    columns = (
        current,
        *(ctx["current_band"] == _BAND_INDEX),
        ctx["age_years"],
        mass,
        ctx["sex"] == MALE,
        heeled,
        np.log1p(weeks),
        current - ctx["previous_drop_mm"],
        hours,
        km,
        runner,
        ctx["lifting"],
        *pains,
        started,
        ktw,
        np.isnan(ktw),
        ktw < 6,
        ktw < 10,
        asym,
        front,
        back,
        ctx["deep_squat_heels_down"] == 1,
        convert,
        convert * pains[1:4].max(axis=0),  # calf, Achilles or plantar heel pain
        np.square(current) / 10,
        adapted,
        adapted * current,
        *(pains[2:] >= 3),
        np.fmin(np.fmax(mass - 71.4, 0.0) / 20, 1.0),
        runner & (current <= 6),
        front & (ktw < 6),
        back & (ktw < 6),
        *(ctx["heel_lift_effect"] == LIFT),  # helps, worse
        ctx["tighter_with_knee"] == KNEE_STRAIGHT,
    )
    return np.array(columns, dtype=np.float64).T


def features(cols: Columns) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The rule context and the classifier's inputs of columns, for any number of rows."""
    ctx = derive(cols)
    return ctx, model_inputs(ctx)


if features(empty(1))[1].shape != (1, len(FEATURES)):
    raise RuntimeError("model_inputs and FEATURES disagree")  # a change made to one only

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
    "heel_lift_": "footwear.heel_lift_effect",
    "tighter_with_knee": "mobility.tighter_with_knee",
}
_PATH_OF = {context_name(f.path): f.path for f in FIELDS}
FEATURE_INPUTS = {
    name: next(
        (v for k, v in _INPUT_BY_PREFIX.items() if name.startswith(k)), _PATH_OF.get(name, name)
    )
    for name in FEATURES
}
# The input groups attributions name, and which features each holds (a features x groups 0/1).
GROUPS = tuple(dict.fromkeys(FEATURE_INPUTS.values()))
GROUP_OF = np.array([[FEATURE_INPUTS[f] == g for g in GROUPS] for f in FEATURES], dtype=np.float64)
# How an answer's top factors name each group to a person: a plain label, and a unit.
FACTOR_LABELS: dict[str, tuple[str, str | None]] = {
    "footwear.current_drop_mm": ("current effective drop", "mm"),
    "person.age_years": ("age", "years"),
    "person.body_mass_kg": ("body mass", "kg"),
    "person.sex": ("sex", None),
    "footwear.years_in_heeled_shoes": ("years in heeled shoes", "years"),
    "footwear.weeks_in_current_drop": ("weeks in the current drop", "weeks"),
    "footwear.previous_drop_mm": ("previous drop", "mm"),
    "footwear.high_heel_hours_per_week": ("high heels each week", "hours"),
    "activity.running_km_per_week": ("running each week", "km"),
    "activity (regular runner)": ("runs regularly", None),
    "activity (lifting)": ("lifts or squats in lifting shoes", None),
    "symptoms.anterior_ankle_pinch": ("pinch at the front of the ankle", "/10"),
    "symptoms.calf_tightness": ("calf tightness", "/10"),
    "symptoms.achilles_pain": ("Achilles pain", "/10"),
    "symptoms.plantar_heel_pain": ("heel pain under the foot", "/10"),
    "symptoms.forefoot_pain": ("forefoot pain", "/10"),
    "symptoms.knee_pain": ("knee pain", "/10"),
    "symptoms.started_after_shoe_change": ("pain began after a change of shoes", None),
    "mobility.knee_to_wall_cm": ("knee-to-wall, stiffer side", "cm"),
    "mobility.restriction_felt": ("where the ankle feels restricted", None),
    "mobility.deep_squat_heels_down": ("deep squat with heels down", None),
    "heeled history and a recent zero-drop switch": (
        "a recent switch to zero drop after years in heels", None,
    ),
    "no pain and good mobility": ("no pain and good ankle mobility", None),
    "regular running in a low drop": ("regular running in a low drop", None),
    "severe restriction with a front block": ("a very stiff ankle blocked at the front", None),
    "severe restriction with a calf block": ("a very stiff ankle limited by the calf", None),
    "footwear.heel_lift_effect": ("what a higher heel did to the pain", None),
    "mobility.tighter_with_knee": ("calf stretch tighter with the knee", None),
}  # fmt: skip
if set(FACTOR_LABELS) != set(GROUPS):
    raise RuntimeError("every input group needs a label for the answers' top factors")
