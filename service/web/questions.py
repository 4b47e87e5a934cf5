# ruff: noqa: E501 - a table of texts, one question a line
"""The fitter's form: the request's fields in the order a fitting happens, worded for the shop
floor. Controls follow the field table (service/core/fields.py): its kinds, ranges and options."""

from dataclasses import dataclass

from flask_babel import lazy_gettext as _l

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
    Section("shoe", _l("The shoe they wear now"), (
        Q("footwear.current_drop_mm", _l("Heel drop of the shoe"), _l("From the box or the maker's site."), "mm"),
        Q("footwear.heel_insert_mm", _l("Heel insert or lift inside it"), _l("0 if none."), "mm"),
        Q("footwear.current_stack_mm", _l("Heel stack height (if known)"), "", "mm"),
        Q("footwear.current_type", _l("Kind of shoe")),
        Q("footwear.weeks_in_current_drop", _l("Weeks in shoes like these"), "", _l("weeks")),
        Q("footwear.previous_drop_mm", _l("Drop of the shoes they wore before"), "", "mm"),
        Q("footwear.years_in_heeled_shoes", _l("Years mostly in heeled shoes"), "", _l("years")),
        Q("footwear.high_heel_hours_per_week", _l("Hours a week in high heels"), "", _l("hours")),
        Q("footwear.heel_lift_effect", _l("Has a higher heel or a heel lift changed the pain?")),
    )),
    Section("ankle", _l("Ankle bend: the knee-to-wall test"), (
        Q("mobility.knee_to_wall_cm.left", _l("Left: toes to wall"), "", "cm"),
        Q("mobility.knee_to_wall_cm.right", _l("Right: toes to wall"), "", "cm"),
        Q("mobility.lunge_angle_deg.left", _l("Or left: shin angle, if measured as an angle"), "", _l("degrees")),
        Q("mobility.lunge_angle_deg.right", _l("Or right: shin angle"), "", _l("degrees")),
        Q("mobility.measured_in", _l("Measured")),
        Q("mobility.restriction_felt", _l("Where do they feel the stop?"), _l("Front: a pinch at the front of the ankle. Back: a stretch in the calf.")),
        Q("mobility.tighter_with_knee", _l("Calf stretch: tighter with the knee straight or bent?")),
        Q("mobility.deep_squat_heels_down", _l("Can they squat deep with heels down?")),
    ), _l("Foot flat, big toe a few cm from the wall, push the knee forward to touch the wall "
          "without the heel lifting. Move the foot back until the knee only just touches; "
          "measure from big toe to wall. Do both sides.")),
    Section("symptoms", _l("How it feels (0 = nothing, 10 = the worst imaginable)"), (
        Q("symptoms.calf_tightness", _l("Calf tightness")),
        Q("symptoms.achilles_pain", _l("Achilles (back of the heel, above the bone)")),
        Q("symptoms.plantar_heel_pain", _l("Under the heel")),
        Q("symptoms.forefoot_pain", _l("Ball of the foot")),
        Q("symptoms.anterior_ankle_pinch", _l("Pinch at the front of the ankle")),
        Q("symptoms.knee_pain", _l("Knee")),
        Q("symptoms.ankle_swelling", _l("Ankle swelling")),
        Q("symptoms.numbness_tingling", _l("Numbness or tingling in the foot")),
        Q("symptoms.started_after_shoe_change", _l("Did it start after a change of shoes?")),
    )),
    Section("safety", _l("Questions to ask every customer"), (
        Q("symptoms.calf_swelling_one_side", _l("Is one calf swollen, warm or tender?")),
        Q("symptoms.hot_red_joint_or_fever", _l("Is a joint hot and red, or do they feel feverish?")),
        Q("symptoms.night_or_rest_pain", _l("Does it hurt at night or at rest?")),
        Q("symptoms.ankle_locks_or_catches", _l("Does the ankle lock or catch?")),
        Q("symptoms.focal_bone_pain", _l("Does one spot on a bone hurt to press, or hopping on that leg?")),
        Q("history.suspected_achilles_rupture", _l("Did they feel a snap or a kick at the back of the heel?")),
        Q("history.can_walk_four_steps", _l("Could they walk four steps straight after the injury?")),
        Q("history.diabetes_or_neuropathy", _l("Do they have diabetes or numb feet?")),
    )),
    Section("history", _l("History"), (
        Q("history.weeks_since_ankle_injury", _l("Weeks since an ankle injury"), "", _l("weeks")),
        Q("history.weeks_since_ankle_surgery", _l("Weeks since ankle surgery"), "", _l("weeks")),
        Q("history.ankle_sprains_past_2_years", _l("Ankle sprains in the past 2 years")),
        Q("history.weeks_since_achilles_rupture", _l("Weeks since an Achilles rupture"), "", _l("weeks")),
        Q("history.previous_stress_fracture", _l("Ever had a stress fracture?")),
        Q("history.leg_length_difference_mm", _l("Leg length difference"), "", "mm"),
    )),
    Section("person", _l("The person and what they do"), (
        Q("client_ref", _l("Your reference for the customer (optional; not stored)")),
        Q("person.age_years", _l("Age"), "", _l("years")),
        Q("person.body_mass_kg", _l("Weight"), "", "kg"),
        Q("person.sex", _l("Sex")),
        Q("activity.primary", _l("Main activity")),
        Q("activity.running_km_per_week", _l("Running a week"), "", "km"),
        Q("activity.running_years", _l("Years running"), "", _l("years")),
        Q("activity.squats_in_lifting_shoes", _l("Squats in weightlifting shoes?")),
    )),
)  # fmt: skip
ASKED = tuple(q for section in SECTIONS for q in section.questions)
# Every enum option as a fitter reads it.
OPTIONS = {
    "female": _l("Female"), "male": _l("Male"), "other": _l("Other"),
    "unspecified": _l("Prefer not to say"),
    "road_running": _l("Road running"), "trail_running": _l("Trail running"),
    "walking": _l("Walking"), "casual": _l("Casual"), "dress": _l("Dress"),
    "work_boot": _l("Work boot"), "minimalist": _l("Minimalist / barefoot"),
    "weightlifting": _l("Weightlifting"), "court": _l("Court"),
    "helps": _l("Helps"), "no_change": _l("No change"), "worse": _l("Makes it worse"),
    "untried": _l("Not tried"),
    "running": _l("Running"), "standing_work": _l("Standing at work"),
    "court_sports": _l("Court sports"), "general": _l("General"),
    "barefoot": _l("Barefoot"), "shoes": _l("In shoes"),
    "front": _l("Front of the ankle"), "back": _l("Calf or back"), "both": _l("Both"),
    "none": _l("Nowhere"), "unknown": _l("Not sure"),
    "straight": _l("Knee straight"), "bent": _l("Knee bent"), "same": _l("The same"),
}  # fmt: skip
