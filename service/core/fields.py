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
# Said after the field's name, as the other checks are ("footwear.heel_insert_mm must ...").
EFFECTIVE_DROP_TOO_HIGH = (
    "must keep the effective drop (current_drop_mm + heel_insert_mm) at 30 mm or less; "
    "nothing heeldrop advises goes past it"
)


@dataclass(frozen=True)
class Field:
    """One request field: its dotted path, type, allowed values, and how a person reads it."""

    path: str
    kind: Kind
    lo: float = 0.0
    hi: float = 0.0
    choices: tuple[str, ...] = ()
    required: bool = False
    default: str | None = None
    label: str = ""  # a short name, as a column header or a form would say it
    unit: str | None = None
    about: str = ""  # what it means for a fitter, and how to measure or ask it

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


def _n(
    path: str, lo: float, hi: float, label: str, unit: str, about: str, required: bool = False
) -> Field:
    return Field(path, "number", lo, hi, required=required, label=label, unit=unit, about=about)


def _b(path: str, label: str, about: str) -> Field:
    return Field(path, "bool", label=label, about=about)


def _e(
    path: str, choices: tuple[str, ...], label: str, about: str, default: str | None = None
) -> Field:
    return Field(path, "enum", choices=choices, default=default, label=label, about=about)


def _s(name: str, label: str, about: str) -> Field:
    return Field(f"symptoms.{name}", "severity", 0, 10, label=label, unit="/10", about=about)


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
_SEVERITY = " 0 is none, 10 the worst they can imagine; ask about the past week."
_MEASURED = (
    " Measure barefoot unless `mobility.measured_in` says shoes (a shoe's drop then adds to it)."
)

FIELDS: tuple[Field, ...] = (
    Field("client_ref", "text", hi=64, label="Client reference",
          about="Your own reference for the request, echoed back. Not for names or other "
          "personal data."),
    _n("person.age_years", 8, 100, "Age", "years",
       "Age in whole or part years. Children's heel pain and older adults' balance change the "
       "advice."),
    _n("person.body_mass_kg", 25, 250, "Body mass", "kg", "Body mass (weight) in kilograms."),
    _e("person.sex", ("female", "male", "other", "unspecified"), "Sex",
       "As the person states it; used only by the classifier, never by a rule."),
    _n("footwear.current_drop_mm", 0, 30, "Current drop", "mm",
       "Heel drop of the shoe worn most now: heel stack minus forefoot stack, from the box or "
       "the maker's site. 0 is zero drop. The only field every request needs.", required=True),
    _n("footwear.heel_insert_mm", 0, 25, "Heel insert", "mm",
       "Height of a heel lift or insert worn inside that shoe; 0 or absent if none. It adds to "
       "the shoe's drop (the two together are at most 30 mm)."),
    _n("footwear.current_stack_mm", 0, 60, "Heel stack", "mm",
       "Heel stack height of the current shoe, if known: how far the heel sits off the ground."),
    _e("footwear.current_type", SHOE_TYPES, "Shoe type", "The kind of shoe worn most now."),
    _n("footwear.weeks_in_current_drop", 0, 2080, "Weeks in current drop", "weeks",
       "How long they have worn shoes of about this drop. A recent change matters: tissues "
       "take weeks to adapt."),
    _n("footwear.previous_drop_mm", 0, 30, "Previous drop", "mm",
       "Drop of the shoes worn before the current ones, if they changed."),
    _n("footwear.years_in_heeled_shoes", 0, 90, "Years in heeled shoes", "years",
       "Years spent mostly in shoes with a raised heel (work or dress shoes, heels). Long habit "
       "shortens the calf and makes a sudden drop to zero harder."),
    _n("footwear.high_heel_hours_per_week", 0, 112, "High-heel hours a week", "hours",
       "Hours a week in high heels (roughly 5 cm or more)."),
    _e("footwear.heel_lift_effect", HEEL_LIFT_EFFECTS, "Heel lift effect",
       "What a higher heel or a heel lift has done to the pain: helps, no change, worse, or "
       "never tried. What a person knows about their own pain outweighs a general rule."),
    _e("activity.primary", ACTIVITIES, "Main activity",
       "What they do most on their feet."),
    _n("activity.running_km_per_week", 0, 300, "Running per week", "km",
       "Average running distance a week over the past month."),
    _n("activity.running_years", 0, 80, "Years running", "years",
       "Years of regular running."),
    _b("activity.squats_in_lifting_shoes", "Squats in lifting shoes",
       "They squat or lift in weightlifting shoes (a raised, hard heel)."),
    _s("anterior_ankle_pinch", "Front-of-ankle pinch",
       "Pinching pain at the front of the ankle as the knee goes over the toes." + _SEVERITY),
    _s("calf_tightness", "Calf tightness",
       "How tight the calf feels: tightness, not pain (one swollen calf refers the same day; "
       "pain from a recent calf injury needs a clinician, not this scale)." + _SEVERITY),
    _s("achilles_pain", "Achilles pain",
       "Pain in the Achilles tendon, the cord above the heel." + _SEVERITY),
    _s("plantar_heel_pain", "Heel pain under the foot",
       "Pain under the heel, often worst at the first steps in the morning." + _SEVERITY),
    _s("forefoot_pain", "Forefoot pain",
       "Pain in the ball of the foot or the long bones of the forefoot." + _SEVERITY),
    _s("knee_pain", "Knee pain", "Pain at the front of the knee." + _SEVERITY),
    _s("ankle_swelling", "Ankle swelling", "Swelling around the ankle." + _SEVERITY),
    _s("numbness_tingling", "Numbness or tingling",
       "Numbness, tingling or pins and needles in the foot." + _SEVERITY),
    _b("symptoms.started_after_shoe_change", "Started after a shoe change",
       "The pain began after a change to shoes of a different drop."),
    _b("symptoms.calf_swelling_one_side", "One calf swollen",
       "One calf swollen, warm or tender compared with the other: a red flag (a clot) that "
       "needs a clinician the same day."),
    _b("symptoms.hot_red_joint_or_fever", "Hot red joint or fever",
       "A hot, red, swollen joint, or a fever with the pain: a red flag for infection."),
    _b("symptoms.night_or_rest_pain", "Night or rest pain",
       "Pain at night or at rest that does not ease with a change of position."),
    _b("symptoms.ankle_locks_or_catches", "Ankle locks or catches",
       "The ankle locks, catches or gives a block that has to be worked loose: a mechanical "
       "problem for a clinician, not for a shoe."),
    _b("symptoms.focal_bone_pain", "Focal bone pain",
       "One spot on a bone hurts to press, or hopping on that leg hurts: a possible stress "
       "fracture."),
    _n("history.weeks_since_ankle_surgery", 0, 5200, "Weeks since ankle surgery", "weeks",
       "Weeks since surgery on the ankle or Achilles; absent if never."),
    _n("history.weeks_since_ankle_injury", 0, 5200, "Weeks since ankle injury", "weeks",
       "Weeks since the last ankle injury (a sprain or worse); absent if never."),
    Field("history.ankle_sprains_past_2_years", "count", 0, 50, label="Sprains in 2 years",
          about="Ankle sprains in the past two years."),
    _b("history.suspected_achilles_rupture", "Suspected Achilles rupture",
       "A sudden snap or kick felt at the back of the heel, or weakness pushing off since: an "
       "emergency."),
    _n("history.weeks_since_achilles_rupture", 0, 5200, "Weeks since Achilles rupture", "weeks",
       "Weeks since a treated Achilles rupture; absent if never."),
    _b("history.diabetes_or_neuropathy", "Diabetes or neuropathy",
       "Diabetes or reduced feeling in the feet: shoe changes need a clinician's eye."),
    _b("history.previous_stress_fracture", "Previous stress fracture",
       "A stress fracture in the foot or leg before."),
    _n("history.leg_length_difference_mm", 0, 60, "Leg length difference", "mm",
       "A measured difference in leg length, if a clinician has measured one."),
    _b("history.can_walk_four_steps", "Can walk four steps",
       "After an injury, they can take four steps on the leg (the Ottawa ankle rules: if not, "
       "an X-ray may be needed)."),
    _n("mobility.knee_to_wall_cm.left", 0, 25, "Knee to wall, left", "cm",
       "Knee-to-wall test on the left: foot flat, knee pushed forward to touch the wall without "
       "the heel lifting; the greatest distance from big toe to wall. Healthy adults average "
       "about 12 cm; under 10 cm is stiff." + _MEASURED),
    _n("mobility.knee_to_wall_cm.right", 0, 25, "Knee to wall, right", "cm",
       "The same on the right side." + _MEASURED),
    _n("mobility.lunge_angle_deg.left", 0, 80, "Lunge angle, left", "degrees",
       "The same test measured as the shin's angle from vertical (an inclinometer or phone on "
       "the shin), if measured that way." + _MEASURED),
    _n("mobility.lunge_angle_deg.right", 0, 80, "Lunge angle, right", "degrees",
       "The same on the right side." + _MEASURED),
    _e("mobility.measured_in", ("barefoot", "shoes"), "Measured in",
       "Whether the ankle tests were done barefoot (the default) or in shoes.",
       default="barefoot"),
    _e("mobility.restriction_felt", ("front", "back", "both", "none", "unknown"),
       "Restriction felt",
       "Where the stop is felt in the knee-to-wall test: a pinch at the front of the ankle, a "
       "stretch in the calf at the back, both, or none."),
    _b("mobility.deep_squat_heels_down", "Deep squat heels down",
       "They can squat deep with both heels staying on the floor."),
    _e("mobility.tighter_with_knee", KNEE_TIGHTNESS, "Tighter with knee",
       "In a calf stretch, is it tighter with the knee straight (the big calf muscle), bent "
       "(the deeper one), the same, or unknown (the Silfverskiold question)."),
)  # fmt: skip

BY_PATH = {f.path: f for f in FIELDS}
