# ruff: noqa: E501 - a table of texts, one question a line
"""The fitter's form: the request's fields in the order a fitting happens, worded for the shop
floor. Controls follow the field table (service/core/fields.py): its kinds, ranges and options."""

from dataclasses import dataclass

from flask_babel import lazy_gettext as lazy

from service.core.fields import BY_PATH, Field


@dataclass(frozen=True)
class Question:
    path: str
    label: str
    hint: str = ""
    unit: str = ""

    @property
    def field(self) -> Field:
        return BY_PATH[self.path]

    @property
    def name(self) -> str:
        return self.path


@dataclass(frozen=True)
class Section:
    key: str
    title: str
    questions: tuple[Question, ...]
    intro: str = ""


Q = Question
SECTIONS = (
    Section("shoe", lazy("The shoe they wear now"), (
        Q("footwear.current_drop_mm", lazy("Heel drop of the shoe"), lazy("From the box or the maker's site."), "mm"),
        Q("footwear.heel_insert_mm", lazy("Heel insert or lift inside it"), lazy("0 if none."), "mm"),
        Q("footwear.current_stack_mm", lazy("Heel stack height (if known)"), "", "mm"),
        Q("footwear.current_type", lazy("Kind of shoe")),
        Q("footwear.weeks_in_current_drop", lazy("Weeks in shoes like these"), "", lazy("weeks")),
        Q("footwear.previous_drop_mm", lazy("Drop of the shoes they wore before"), "", "mm"),
        Q("footwear.years_in_heeled_shoes", lazy("Years mostly in heeled shoes"), "", lazy("years")),
        Q("footwear.high_heel_hours_per_week", lazy("Hours a week in high heels"), "", lazy("hours")),
        Q("footwear.heel_lift_effect", lazy("Has a higher heel or a heel lift changed the pain?")),
    )),
    Section("ankle", lazy("Ankle bend: the knee-to-wall test"), (
        Q("mobility.knee_to_wall_cm.left", lazy("Left: toes to wall"), "", "cm"),
        Q("mobility.knee_to_wall_cm.right", lazy("Right: toes to wall"), "", "cm"),
        Q("mobility.lunge_angle_deg.left", lazy("Or left: shin angle, if measured as an angle"), "", lazy("degrees")),
        Q("mobility.lunge_angle_deg.right", lazy("Or right: shin angle"), "", lazy("degrees")),
        Q("mobility.measured_in", lazy("Measured")),
        Q("mobility.restriction_felt", lazy("Where do they feel the stop?"), lazy("Front: a pinch at the front of the ankle. Back: a stretch in the calf.")),
        Q("mobility.tighter_with_knee", lazy("Calf stretch: tighter with the knee straight or bent?")),
        Q("mobility.deep_squat_heels_down", lazy("Can they squat deep with heels down?")),
    ), lazy("Foot flat, big toe a few cm from the wall, push the knee forward to touch the wall "
          "without the heel lifting. Move the foot back until the knee only just touches; "
          "measure from big toe to wall. Do both sides.")),
    Section("symptoms", lazy("How it feels (0 = nothing, 10 = the worst imaginable)"), (
        Q("symptoms.calf_tightness", lazy("Calf tightness")),
        Q("symptoms.achilles_pain", lazy("Achilles (back of the heel, above the bone)")),
        Q("symptoms.plantar_heel_pain", lazy("Under the heel")),
        Q("symptoms.forefoot_pain", lazy("Ball of the foot")),
        Q("symptoms.anterior_ankle_pinch", lazy("Pinch at the front of the ankle")),
        Q("symptoms.knee_pain", lazy("Knee")),
        Q("symptoms.ankle_swelling", lazy("Ankle swelling")),
        Q("symptoms.numbness_tingling", lazy("Numbness or tingling in the foot")),
        Q("symptoms.started_after_shoe_change", lazy("Did it start after a change of shoes?")),
    )),
    Section("safety", lazy("Questions to ask every customer"), (
        Q("symptoms.calf_swelling_one_side", lazy("Is one calf swollen, warm or tender?")),
        Q("symptoms.hot_red_joint_or_fever", lazy("Is a joint hot and red, or do they feel feverish?")),
        Q("symptoms.night_or_rest_pain", lazy("Does it hurt at night or at rest?")),
        Q("symptoms.ankle_locks_or_catches", lazy("Does the ankle lock or catch?")),
        Q("symptoms.focal_bone_pain", lazy("Does one spot on a bone hurt to press, or hopping on that leg?")),
        Q("history.suspected_achilles_rupture", lazy("Did they feel a snap or a kick at the back of the heel?")),
        Q("history.can_walk_four_steps", lazy("After a recent injury: could they walk four steps straight after it?"), lazy("Leave blank if there was no injury.")),
        Q("history.diabetes_or_neuropathy", lazy("Do they have diabetes or numb feet?")),
    )),
    Section("history", lazy("History"), (
        Q("history.weeks_since_ankle_injury", lazy("Weeks since an ankle injury"), "", lazy("weeks")),
        Q("history.weeks_since_ankle_surgery", lazy("Weeks since ankle surgery"), "", lazy("weeks")),
        Q("history.ankle_sprains_past_2_years", lazy("Ankle sprains in the past 2 years")),
        Q("history.weeks_since_achilles_rupture", lazy("Weeks since an Achilles rupture"), "", lazy("weeks")),
        Q("history.previous_stress_fracture", lazy("Ever had a stress fracture?")),
        Q("history.leg_length_difference_mm", lazy("Leg length difference"), "", "mm"),
    )),
    Section("person", lazy("The person and what they do"), (
        Q("client_ref", lazy("Your reference for the customer (optional; not stored)")),
        Q("person.age_years", lazy("Age"), "", lazy("years")),
        Q("person.body_mass_kg", lazy("Weight"), "", "kg"),
        Q("person.sex", lazy("Sex")),
        Q("activity.primary", lazy("Main activity")),
        Q("activity.running_km_per_week", lazy("Running a week"), "", "km"),
        Q("activity.running_years", lazy("Years running"), "", lazy("years")),
        Q("activity.squats_in_lifting_shoes", lazy("Squats in weightlifting shoes?")),
    )),
)  # fmt: skip
ASKED = tuple(q for section in SECTIONS for q in section.questions)
LABELS = {q.path: q.label for q in ASKED}
# Every enum option as a fitter reads it.
OPTIONS = {
    "female": lazy("Female"), "male": lazy("Male"), "other": lazy("Other"),
    "unspecified": lazy("Prefer not to say"),
    "road_running": lazy("Road running"), "trail_running": lazy("Trail running"),
    "walking": lazy("Walking"), "casual": lazy("Casual"), "dress": lazy("Dress"),
    "work_boot": lazy("Work boot"), "minimalist": lazy("Minimalist / barefoot"),
    "weightlifting": lazy("Weightlifting"), "court": lazy("Court"),
    "helps": lazy("Helps"), "no_change": lazy("No change"), "worse": lazy("Makes it worse"),
    "untried": lazy("Not tried"),
    "running": lazy("Running"), "standing_work": lazy("Standing at work"),
    "court_sports": lazy("Court sports"), "general": lazy("General"),
    "barefoot": lazy("Barefoot"), "shoes": lazy("In shoes"),
    "front": lazy("Front of the ankle"), "back": lazy("Calf or back"), "both": lazy("Both"),
    "none": lazy("Nowhere"), "unknown": lazy("Not sure"),
    "straight": lazy("Knee straight"), "bent": lazy("Knee bent"), "same": lazy("The same"),
}  # fmt: skip
