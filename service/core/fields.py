"""The request's fields, described once; the schemas and the columnar validator derive from it."""

from dataclasses import dataclass
from typing import Literal

Kind = Literal["number", "count", "severity", "bool", "enum", "text"]

BANDS = ("zero", "low", "moderate", "high", "lift")
BAND_MM = {"zero": (0, 2), "low": (3, 6), "moderate": (7, 10), "high": (11, 14), "lift": (15, 30)}

SHOE_TYPES = (
    "road_running",
    "trail_running",
    "walking",
    "casual",
    "dress",
    "work_boot",
    "minimalist",
    "weightlifting",
    "court",
    "other",
)
ACTIVITIES = ("running", "walking", "standing_work", "weightlifting", "court_sports", "general")
HEEL_LIFT_EFFECTS = ("helps", "no_change", "worse", "untried")  # what a higher heel did to the pain
KNEE_TIGHTNESS = ("straight", "bent", "same", "unknown")  # calf stretch tighter with the knee ...
MAX_EFFECTIVE_DROP = 30.0  # shoe + insert: nothing heeldrop advises goes past it
EFFECTIVE_DROP_TOO_HIGH = (
    "the effective drop (current_drop_mm + heel_insert_mm) is at most 30 mm; "
    "nothing heeldrop advises goes past it"
)


@dataclass(frozen=True)
class Field:
    """One request field: its dotted path, type and allowed values."""

    path: str
    kind: Kind
    lo: float = 0.0
    hi: float = 0.0
    choices: tuple[str, ...] = ()
    required: bool = False
    default: str | None = None

    @property
    def group(self) -> str:
        return self.path.split(".", 1)[0]

    @property
    def codes(self) -> dict[str, float]:
        """An enum's options by their code in columns: the option's index in `choices`."""
        return {choice: float(k) for k, choice in enumerate(self.choices)}

    @property
    def blank(self) -> float:
        """An absent enum's code: its default's, or NaN."""
        return self.codes[self.default] if self.default else float("nan")

    def option(self, code: float) -> str | None:
        """An enum's option from its code; None for absent (NaN)."""
        return None if code != code else self.choices[int(code)]


def _n(path: str, lo: float, hi: float, required: bool = False) -> Field:
    return Field(path, "number", lo, hi, required=required)


def _c(path: str, lo: int, hi: int) -> Field:
    return Field(path, "count", lo, hi)


def _b(path: str) -> Field:
    return Field(path, "bool")


def _e(path: str, choices: tuple[str, ...], default: str | None = None) -> Field:
    return Field(path, "enum", choices=choices, default=default)


SEVERITIES = (
    "anterior_ankle_pinch",
    "calf_tightness",
    "achilles_pain",
    "plantar_heel_pain",
    "forefoot_pain",
    "knee_pain",
    "ankle_swelling",
    "numbness_tingling",
)

FIELDS: tuple[Field, ...] = (
    Field("client_ref", "text", hi=64),
    _n("person.age_years", 8, 100),
    _n("person.body_mass_kg", 25, 250),
    _e("person.sex", ("female", "male", "other", "unspecified")),
    _n("footwear.current_drop_mm", 0, 30, required=True),
    _n("footwear.heel_insert_mm", 0, 25),
    _n("footwear.current_stack_mm", 0, 60),
    _e("footwear.current_type", SHOE_TYPES),
    _n("footwear.weeks_in_current_drop", 0, 2080),
    _n("footwear.previous_drop_mm", 0, 30),
    _n("footwear.years_in_heeled_shoes", 0, 90),
    _n("footwear.high_heel_hours_per_week", 0, 112),
    _e("footwear.heel_lift_effect", HEEL_LIFT_EFFECTS),
    _e("activity.primary", ACTIVITIES),
    _n("activity.running_km_per_week", 0, 300),
    _n("activity.running_years", 0, 80),
    _b("activity.squats_in_lifting_shoes"),
    *(Field(f"symptoms.{name}", "severity", 0, 10) for name in SEVERITIES),
    _b("symptoms.started_after_shoe_change"),
    _b("symptoms.calf_swelling_one_side"),
    _b("symptoms.hot_red_joint_or_fever"),
    _b("symptoms.night_or_rest_pain"),
    _b("symptoms.ankle_locks_or_catches"),
    _b("symptoms.focal_bone_pain"),
    _n("history.weeks_since_ankle_surgery", 0, 5200),
    _n("history.weeks_since_ankle_injury", 0, 5200),
    _c("history.ankle_sprains_past_2_years", 0, 50),
    _b("history.suspected_achilles_rupture"),
    _n("history.weeks_since_achilles_rupture", 0, 5200),
    _b("history.diabetes_or_neuropathy"),
    _b("history.previous_stress_fracture"),
    _n("history.leg_length_difference_mm", 0, 60),
    _b("history.can_walk_four_steps"),
    _n("mobility.knee_to_wall_cm.left", 0, 25),
    _n("mobility.knee_to_wall_cm.right", 0, 25),
    _n("mobility.lunge_angle_deg.left", 0, 80),
    _n("mobility.lunge_angle_deg.right", 0, 80),
    _e("mobility.measured_in", ("barefoot", "shoes"), default="barefoot"),
    _e("mobility.restriction_felt", ("front", "back", "both", "none", "unknown")),
    _b("mobility.deep_squat_heels_down"),
    _e("mobility.tighter_with_knee", KNEE_TIGHTNESS),
)

BY_PATH = {f.path: f for f in FIELDS}
