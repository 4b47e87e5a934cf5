"""Derived values (RULES.md) and the classifier's feature matrix, from columns, vectorised.

Training and serving both call `features`, so the model never sees a column the server cannot
build.
"""

import operator

import numpy as np

from service.core import _kernel as kernel
from service.core.columns import FIELD_ROWS, Columns, Frame, Layout, empty
from service.core.fields import BAND_MM, BANDS, BY_PATH, FIELDS, SEVERITIES

CM_PER_DEGREE = 1 / 3.6  # Bennell 1998: 1 cm of knee-to-wall is about 3.6 degrees
SHOE_HEEL_CM = 1.0  # a shoe adds about 1 cm of heel to a knee-to-wall test (PodiatryFAQ)
BAND_LO = np.array([BAND_MM[b][0] for b in BANDS], dtype=np.float64)
BAND_HI = np.array([BAND_MM[b][1] for b in BANDS], dtype=np.float64)


def context_name(path: str) -> str:
    """The name a rule uses for a request field: the path without its group."""
    return path.split(".", 1)[1].replace(".", "_") if "." in path else path


_BAND_EDGES = BAND_HI[:-1] + 0.5  # a drop past the last edge is in the last band


_NAMES = tuple(context_name(f.path) for f in FIELDS if f.kind != "text")
_FIELDS = operator.itemgetter(*(f.path for f in FIELDS if f.kind != "text"))
# What the kernel's feature pass reads, row by row (I_* in service/_kernel.c); enums as codes.
INPUTS = (
    *(f"symptoms.{name}" for name in SEVERITIES),
    "footwear.current_drop_mm",
    "footwear.heel_insert_mm",
    "mobility.knee_to_wall_cm.left",
    "mobility.knee_to_wall_cm.right",
    "mobility.lunge_angle_deg.left",
    "mobility.lunge_angle_deg.right",
    "activity.running_km_per_week",
    "activity.running_years",
    "activity.squats_in_lifting_shoes",
    "footwear.years_in_heeled_shoes",
    "footwear.high_heel_hours_per_week",
    "footwear.weeks_in_current_drop",
    "symptoms.started_after_shoe_change",
    "mobility.deep_squat_heels_down",
    "person.age_years",
    "person.body_mass_kg",
    "footwear.previous_drop_mm",
    "mobility.measured_in",
    "activity.primary",
    "person.sex",
    "mobility.restriction_felt",
)
_INPUT_ROWS = np.array([FIELD_ROWS.row[path] for path in INPUTS], dtype=np.intp)
# The options the features test for, by their codes (F_SHOES.. in _kernel.c).
_OPTIONS = (
    ("mobility.measured_in", "shoes"),
    ("activity.primary", "running"),
    ("activity.primary", "weightlifting"),
    ("person.sex", "male"),
    *(("mobility.restriction_felt", felt) for felt in ("front", "both", "back")),
)
# What it writes (D_* in _kernel.c): RULES.md's derived values, severities with absent as 0.
DERIVED_ROWS = (
    *SEVERITIES, "current", "ktw_left", "ktw_right", "ktw_min", "ktw_asym", "pain3",
    "regular_runner", "lifting", "current_band",
)  # fmt: skip
# The context's matrix: the float fields (by their short names), then the derived values; a
# severity's name reads its derived row (absent as 0).
CONTEXT_ROWS = Layout((*_NAMES, *DERIVED_ROWS))
_LIMITS = np.array(
    [*_BAND_EDGES, CM_PER_DEGREE, SHOE_HEEL_CM, *(BY_PATH[p].codes[o] for p, o in _OPTIONS)]
)


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


def features(cols: Columns) -> tuple[Frame, np.ndarray]:
    """The rule context (every field by its short name, plus RULES.md's derived values: symptom
    severities with absent as 0, the effective `current` drop and its band, knee-to-wall per
    side from the lunge angle when not measured and less a shoe's heel, `ktw_min`, `ktw_asym`,
    `pain3`, `regular_runner`, `lifting`) and the n x len(FEATURES) matrix the classifier sees
    (NaN where absent: the model imputes; indicators where it matters), in one pass of the
    kernel for any n. Training calls this too, so the model never sees a value serving could
    not build."""
    n = len(cols["footwear.current_drop_mm"])
    table = np.empty((len(_NAMES) + len(DERIVED_ROWS), n))  # the fields', then the derived
    fields, derived = table[: len(_NAMES)], table[len(_NAMES) :]
    if isinstance(cols, Frame) and cols.layout is FIELD_ROWS:
        fields[...] = cols.matrix
    else:
        np.stack(_FIELDS(cols), out=fields)
    X = np.empty((len(FEATURES), n))
    kernel.features(fields[_INPUT_ROWS], n, _LIMITS, derived, X)  # flags 1.0/0.0, band index
    return Frame(table, CONTEXT_ROWS), X.T  # X.T: feature by feature in memory


if features(empty(1))[1].shape != (1, len(FEATURES)):
    raise RuntimeError("the kernel's features and FEATURES disagree")  # a change made to one only

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
# The input groups attributions name, and each feature's group.
GROUPS = tuple(dict.fromkeys(FEATURE_INPUTS.values()))
FEATURE_GROUP = np.array([GROUPS.index(FEATURE_INPUTS[f]) for f in FEATURES], dtype=np.int32)
