"""Every rule of the catalogue fires where docs/rules.md says and stays silent past its boundary.

Each case is a pair of requests either side of one threshold, answered by the rules alone, so
the range, direction, plan and confidence are deterministic. Loader tests check that a broken
rule table is refused at start-up.
"""

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from service.core.rules import RuleError, load_rules

Check = Callable[[dict[str, Any]], None]


def person(current: float, *, insert: float | None = None, ktw: Any = 8.0, **groups: Any) -> dict:
    """A request in `current` mm shoes; knee-to-wall 8 cm both sides unless `ktw` says otherwise.

    8 cm is neutral: no severe restriction (HD012), no missing measure (HD045), no content-keep
    (HD050). `ktw` may be a number (both sides), a (left, right) pair, or None (no measure).
    """
    footwear = {"current_drop_mm": current, **groups.pop("footwear", {})}
    if insert is not None:
        footwear["heel_insert_mm"] = insert
    mobility = dict(groups.pop("mobility", {}))
    if ktw is not None:
        left, right = ktw if isinstance(ktw, tuple) else (ktw, ktw)
        sides = {k: v for k, v in (("left", left), ("right", right)) if v is not None}
        mobility["knee_to_wall_cm"] = sides
    request: dict[str, Any] = {"footwear": footwear, **groups}
    if mobility:
        request["mobility"] = mobility
    return request


# Effects on the recommendation, each a check on the response.
def drop(lo: int, hi: int) -> Check:
    def check(out: dict) -> None:
        assert out["recommendation"]["drop_mm"] == {"min": lo, "max": hi}

    return check


def direction(name: str) -> Check:
    def check(out: dict) -> None:
        assert out["recommendation"]["direction"] == name

    return check


def band(name: str) -> Check:
    def check(out: dict) -> None:
        assert out["recommendation"]["band"] == name

    return check


def keeps_band(name: str) -> Check:
    """HD050: the band of the current drop or the allowed band nearest it, said in its effect
    (the rules alone pick it anyway)."""

    def check(out: dict) -> None:
        assert out["recommendation"]["band"] == name
        hd050 = next(f for f in out["explanation"]["rules"] if f["id"] == "HD050")
        assert hd050["effect"] == (
            f"band of the current drop, or the allowed band nearest it ({name})"
        )

    return check


def advice(rule_id: str) -> Check:
    def check(out: dict) -> None:
        assert rule_id in [a["id"] for a in out["advice"]]

    return check


def no_advice(rule_id: str) -> Check:
    def check(out: dict) -> None:
        assert rule_id not in [a["id"] for a in out["advice"]]

    return check


def no_advice_at_all(out: dict) -> None:
    assert out["advice"] == []


def confidence(value: float) -> Check:
    def check(out: dict) -> None:
        assert out["recommendation"]["confidence"] == pytest.approx(value)

    return check


def referral(urgency: str | None) -> Check:
    def check(out: dict) -> None:
        rec = out["recommendation"]
        if urgency is None:
            assert rec["referral"] is None
            assert rec["refer_to_clinician"] is False
        else:
            assert rec["referral"]["urgency"] == urgency
            assert rec["referral"]["reasons"]
            assert rec["refer_to_clinician"] is True

    return check


def plan(*drops: int, weeks: int = 4) -> Check:
    def check(out: dict) -> None:
        steps = out["recommendation"]["transition_plan"]
        assert [s["drop_mm"] for s in steps] == list(drops)
        assert {s["weeks"] for s in steps} <= {weeks}
        assert out["recommendation"]["follow_up"]["retest_weeks"] == weeks

    return check


def overruled(rule_id: str) -> Check:
    def check(out: dict) -> None:
        firing = next(f for f in out["explanation"]["rules"] if f["id"] == rule_id)
        assert firing["overruled"] is True

    return check


def missing_input(path: str) -> Check:
    def check(out: dict) -> None:
        assert path in out["explanation"]["missing_inputs"]

    return check


def plan_note(fragment: str) -> Check:
    def check(out: dict) -> None:
        steps = out["recommendation"]["transition_plan"]
        assert steps and all(fragment in s["note"] for s in steps)

    return check


@dataclass(frozen=True)
class Case:
    rule: str
    label: str
    fires: dict
    quiet: dict
    says: tuple[str, ...]
    effect: tuple[Check, ...]


def case(rule: str, label: str, fires: dict, quiet: dict, says=(), effect=()) -> Any:
    return pytest.param(
        Case(rule, label, fires, quiet, tuple(says), tuple(effect)), id=f"{rule}-{label}"
    )


NO_CHANGE_TODAY = (drop(10, 10), direction("keep"), plan(), referral("today"), confidence(0.25),
                   no_advice_at_all)  # fmt: skip
NO_CHANGE_SOON = (drop(10, 10), direction("keep"), plan(), referral("soon"), confidence(0.25),
                  no_advice_at_all)  # fmt: skip
RUNS = {"primary": "running", "running_years": 3}

CASES = [
    # 00x referral: every referral a hard stop
    case("HD001", "cannot-walk-four-steps",
         person(10, history={"can_walk_four_steps": False}),
         person(10, history={"can_walk_four_steps": True}),
         ["cannot walk four steps"], NO_CHANGE_TODAY),
    case("HD001", "suspected-rupture",
         person(10, history={"suspected_achilles_rupture": True}),
         person(10, history={"suspected_achilles_rupture": False}),
         ["suspected Achilles rupture"], NO_CHANGE_TODAY),
    case("HD001", "hot-red-joint",
         person(10, symptoms={"hot_red_joint_or_fever": True}),
         person(10),
         ["infection"], NO_CHANGE_TODAY),
    case("HD001", "one-swollen-calf",
         person(10, symptoms={"calf_swelling_one_side": True}),
         person(10, symptoms={"calf_swelling_one_side": False}),
         ["blood clot"], NO_CHANGE_TODAY),
    case("HD002", "surgery-11-vs-12-weeks",
         person(10, history={"weeks_since_ankle_surgery": 11}),
         person(10, history={"weeks_since_ankle_surgery": 12}),
         ["ankle surgery was 11 weeks ago"], NO_CHANGE_SOON),
    case("HD002", "injury-5-vs-6-weeks",
         person(10, history={"weeks_since_ankle_injury": 5}),
         person(10, history={"weeks_since_ankle_injury": 6}),
         ["ankle injury was 5 weeks ago"], NO_CHANGE_SOON),
    case("HD002", "numbness-3-vs-2",
         person(10, symptoms={"numbness_tingling": 3}),
         person(10, symptoms={"numbness_tingling": 2}),
         ["numbness or tingling (3/10)"], NO_CHANGE_SOON),
    case("HD002", "swelling-6-vs-5",
         person(10, symptoms={"ankle_swelling": 6}),
         person(10, symptoms={"ankle_swelling": 5}),
         ["ankle swelling (6/10)"], NO_CHANGE_SOON),
    case("HD002", "diabetes",
         person(10, history={"diabetes_or_neuropathy": True}),
         person(10, history={"diabetes_or_neuropathy": False}),
         ["diabetes or neuropathy"], NO_CHANGE_SOON),
    case("HD002", "achilles-rupture-51-vs-52-weeks",
         person(10, history={"weeks_since_achilles_rupture": 51}),
         person(10, history={"weeks_since_achilles_rupture": 52}),
         ["Achilles rupture was 51 weeks ago"], NO_CHANGE_SOON),
    case("HD002", "pain-8-vs-7",
         person(10, symptoms={"achilles_pain": 8}),
         person(10, symptoms={"achilles_pain": 7}),
         ["pain of 8/10"], NO_CHANGE_SOON),
    case("HD002", "calf-tightness-is-not-pain",
         person(10, symptoms={"knee_pain": 8}),
         person(10, symptoms={"calf_tightness": 10}),
         ["pain of 8/10"], NO_CHANGE_SOON),
    case("HD002", "knee-to-wall-2.9-vs-3.0-cm",
         person(10, ktw=(2.9, 4.0)),
         person(10, ktw=(3.0, 4.0)),
         ["barely bends (knee-to-wall 2.9 cm barefoot)"], NO_CHANGE_SOON),
    case("HD002", "sides-differ-5.0-vs-4.9-cm-naming-the-side",
         person(10, ktw=(10.0, 5.0)),
         person(10, ktw=(9.9, 5.0)),
         ["your right ankle bends 5 cm less"], NO_CHANGE_SOON),
    case("HD002", "locking",
         person(10, symptoms={"ankle_locks_or_catches": True}),
         person(10, symptoms={"ankle_locks_or_catches": False}),
         ["locks or catches"], NO_CHANGE_SOON),
    case("HD002", "focal-bone-pain",
         person(10, symptoms={"focal_bone_pain": True}),
         person(10, symptoms={"focal_bone_pain": False}),
         ["stress fracture"], NO_CHANGE_SOON),
    case("HD003", "night-pain",
         person(10, symptoms={"night_or_rest_pain": True}),
         person(10, symptoms={"night_or_rest_pain": False}),
         ["imaging", "pain at night or at rest"], NO_CHANGE_SOON),
    case("HD003", "pinch-and-swelling-26-vs-25-weeks-after-injury",
         person(10, symptoms={"ankle_swelling": 3, "anterior_ankle_pinch": 5},
                history={"weeks_since_ankle_injury": 26}),
         person(10, symptoms={"ankle_swelling": 3, "anterior_ankle_pinch": 5},
                history={"weeks_since_ankle_injury": 25}),
         ["swelling (3/10) with a front pinch (5/10)"], NO_CHANGE_SOON),
    case("HD003", "pinch-5-vs-4-after-surgery",
         person(10, symptoms={"ankle_swelling": 3, "anterior_ankle_pinch": 5},
                history={"weeks_since_ankle_surgery": 12}),
         person(10, symptoms={"ankle_swelling": 3, "anterior_ankle_pinch": 4},
                history={"weeks_since_ankle_surgery": 12}),
         ["swelling (3/10) with a front pinch (5/10)"], NO_CHANGE_SOON),
    case("HD003", "a-recent-move-to-zero-drop-is-undone-at-once",
         person(0, symptoms={"calf_tightness": 4, "started_after_shoe_change": True,
                             "night_or_rest_pain": True}, footwear={"previous_drop_mm": 10}),
         person(0, symptoms={"calf_tightness": 4, "started_after_shoe_change": True},
                footwear={"previous_drop_mm": 10}),
         ["pain at night"],
         [drop(10, 10), direction("step_back_up"), plan(10), referral("soon"), no_advice_at_all,
          overruled("HD010")]),
    # 01x-02x bounds
    case("HD010", "calf-3-vs-2-after-a-shoe-change",
         person(1, symptoms={"calf_tightness": 3, "started_after_shoe_change": True}),
         person(1, symptoms={"calf_tightness": 2, "started_after_shoe_change": True}),
         ["move to 1 mm shoes", "no lower than 4 mm and no higher than 10 mm"],
         [drop(4, 6), direction("step_back_up"), plan(4), advice("HD010")]),
    case("HD010", "current-2-vs-3-as-shoe-plus-insert",
         person(0, insert=2, symptoms={"calf_tightness": 3, "started_after_shoe_change": True}),
         person(0, insert=3, symptoms={"calf_tightness": 3, "started_after_shoe_change": True}),
         ["move to 2 mm shoes"], [advice("HD010")]),
    case("HD010", "new-drop-25-vs-26-weeks-after-years-in-heels",
         person(0, symptoms={"achilles_pain": 4},
                footwear={"weeks_in_current_drop": 25, "years_in_heeled_shoes": 5}),
         person(0, symptoms={"achilles_pain": 4},
                footwear={"weeks_in_current_drop": 26, "years_in_heeled_shoes": 5}),
         ["25 weeks into 0 mm shoes, after 5 years in heeled ones"], [advice("HD010")]),
    case("HD010", "heeled-5-vs-4.9-years",
         person(0, symptoms={"calf_tightness": 5},
                footwear={"weeks_in_current_drop": 10, "years_in_heeled_shoes": 5}),
         person(0, symptoms={"calf_tightness": 5},
                footwear={"weeks_in_current_drop": 10, "years_in_heeled_shoes": 4.9}),
         ["10 weeks into 0 mm shoes, after 5 years"],
         [drop(4, 6), direction("step_back_up"), plan(4)]),
    case("HD010", "previous-drop-above-vs-equal-to-current",
         person(1, symptoms={"anterior_ankle_pinch": 3, "started_after_shoe_change": True},
                footwear={"previous_drop_mm": 2}),
         person(1, symptoms={"anterior_ankle_pinch": 3, "started_after_shoe_change": True},
                footwear={"previous_drop_mm": 1}),
         ["move to 1 mm shoes"], [drop(4, 6), direction("step_back_up")]),
    case("HD010", "a-runners-forefoot-pain-counts-a-walkers-does-not",
         person(1, symptoms={"forefoot_pain": 3, "started_after_shoe_change": True},
                activity=RUNS),
         person(1, symptoms={"forefoot_pain": 3, "started_after_shoe_change": True}),
         ["move to 1 mm shoes"], [drop(4, 4), direction("step_back_up"), overruled("HD020")]),
    case("HD011", "achilles-3-vs-2-floor-8",
         person(5, symptoms={"achilles_pain": 3}),
         person(5, symptoms={"achilles_pain": 2}),
         ["Achilles pain (3/10)", "no lower than 8 mm"],
         [drop(8, 10), direction("raise"), plan(8), advice("HD011")]),
    case("HD011", "floor-is-the-current-drop-above-8",
         person(12, symptoms={"achilles_pain": 3}),
         person(12, symptoms={"achilles_pain": 2}),
         ["no lower than 12 mm"], [drop(12, 14), direction("keep"), advice("HD011")]),
    case("HD018", "surgery-51-vs-52-weeks",
         person(9, symptoms={"forefoot_pain": 3}, history={"weeks_since_ankle_surgery": 51}),
         person(9, symptoms={"forefoot_pain": 3}, history={"weeks_since_ankle_surgery": 52}),
         ["Ankle surgery 51 weeks ago", "no lower than your 9 mm"],
         [drop(9, 9), direction("keep"), overruled("HD015"), advice("HD018")]),
    case("HD012", "knee-to-wall-5.9-vs-6.0-cm",
         person(3, ktw=(5.9, 7.0)),
         person(3, ktw=(6.0, 7.0)),
         ["5.9 cm"], [drop(6, 6), direction("raise"), plan(6)]),
    case("HD012", "lunge-angle-21.2-vs-21.6-deg",
         person(3, ktw=None, mobility={"lunge_angle_deg": {"left": 21.2, "right": 30}}),
         person(3, ktw=None, mobility={"lunge_angle_deg": {"left": 21.6, "right": 30}}),
         ["5.9 cm"], [drop(6, 6), direction("raise")]),
    case("HD012", "measured-in-shoes-6.9-vs-7.0-cm",
         person(3, ktw=(6.9, 7.5), mobility={"measured_in": "shoes"}),
         person(3, ktw=(7.0, 7.5), mobility={"measured_in": "shoes"}),
         ["5.9 cm"], [drop(6, 6)]),
    case("HD012", "knee-to-wall-wins-over-the-lunge-angle",
         person(3, ktw=None, mobility={"lunge_angle_deg": {"left": 18}}),
         person(3, ktw=(8.0, None), mobility={"lunge_angle_deg": {"left": 18}}),
         ["5 cm"], [drop(6, 6)]),
    case("HD013", "plantar-heel-3-vs-2",
         person(3, symptoms={"plantar_heel_pain": 3}),
         person(3, symptoms={"plantar_heel_pain": 2}),
         ["(3/10)", "no lower than 6 mm"], [drop(6, 6), direction("raise")]),
    case("HD013", "never-lowers-a-higher-heel",
         person(12, symptoms={"plantar_heel_pain": 4, "knee_pain": 4}),
         person(12, symptoms={"plantar_heel_pain": 2, "knee_pain": 4}),
         ["no lower than 12 mm"], [drop(12, 12), direction("keep"), overruled("HD016")]),
    case("HD014", "regular-runner-0.5-vs-0.4-years",
         person(8, activity={"primary": "running", "running_years": 0.5},
                symptoms={"knee_pain": 4}),
         person(8, activity={"primary": "running", "running_years": 0.4},
                symptoms={"knee_pain": 4}),
         ["You run regularly in 8 mm shoes", "no lower than 7 mm"],
         [drop(7, 8), direction("keep")]),
    case("HD014", "current-7-vs-6-as-shoe-plus-insert",
         person(5, insert=2, activity=RUNS, symptoms={"knee_pain": 4}),
         person(5, insert=1, activity=RUNS, symptoms={"knee_pain": 4}),
         ["in 7 mm shoes"], [drop(7, 7)]),
    case("HD014", "walker-running-5-vs-4.9-km",
         person(8, activity={"primary": "walking", "running_years": 2, "running_km_per_week": 5}),
         person(8, activity={"primary": "walking", "running_years": 2,
                             "running_km_per_week": 4.9}),
         ["in 8 mm shoes"], [drop(7, 10)]),
    case("HD015", "forefoot-3-vs-2",
         person(9, symptoms={"forefoot_pain": 3}),
         person(9, symptoms={"forefoot_pain": 2}),
         ["Forefoot pain (3/10)", "no higher than 6 mm"],
         [drop(3, 6), direction("lower_gradually"), plan(6)]),
    case("HD015", "never-raises-a-low-heel",
         person(0, symptoms={"forefoot_pain": 3}),
         person(0, symptoms={"forefoot_pain": 3}, activity=RUNS),
         ["no higher than 0 mm"], [drop(0, 0), direction("keep")]),
    case("HD016", "knee-3-vs-2",
         person(11, symptoms={"knee_pain": 3}),
         person(11, symptoms={"knee_pain": 2}),
         ["Knee pain (3/10)", "no higher than 8 mm"],
         [drop(7, 8), direction("lower_gradually"), plan(8)]),
    case("HD016", "never-raises-a-low-heel",
         person(4, symptoms={"knee_pain": 5}, ktw=12.0),
         person(4, symptoms={"knee_pain": 2}, ktw=12.0),
         ["no higher than 4 mm"], [drop(3, 4), direction("keep")]),
    case("HD017", "front-restriction-vs-back",
         person(13, mobility={"restriction_felt": "front"}),
         person(13, mobility={"restriction_felt": "back"}),
         ["no higher than 10 mm"], [drop(7, 10), direction("lower_gradually"), advice("HD017")]),
    case("HD017", "both-restriction-vs-none",
         person(13, mobility={"restriction_felt": "both"}),
         person(13, mobility={"restriction_felt": "none"}),
         ["no higher than 10 mm"], [drop(7, 10), advice("HD017")]),
    case("HD017", "pinch-3-vs-2-without-a-restriction",
         person(13, symptoms={"anterior_ankle_pinch": 3}),
         person(13, symptoms={"anterior_ankle_pinch": 2}),
         ["no higher than 10 mm"], [drop(7, 10), advice("HD017")]),
    case("HD017", "not-for-a-lifting-shoe",
         person(13, mobility={"restriction_felt": "front"}, footwear={"current_type": "casual"}),
         person(13, mobility={"restriction_felt": "front"},
                footwear={"current_type": "weightlifting"}),
         ["no higher than 10 mm"], [drop(7, 10)]),
    case("HD019", "daily-shoe-vs-weightlifter",
         person(20),
         person(20, activity={"primary": "weightlifting"}),
         ["no more than 14 mm"], [drop(11, 14), band("high"), direction("lower_gradually")]),
    case("HD019", "no-lifting-shoes-vs-lifting-shoes",
         person(20, activity={"squats_in_lifting_shoes": False}),
         person(20, activity={"squats_in_lifting_shoes": True}),
         ["no more than 14 mm"], [drop(11, 14), plan(17, 14)]),
    case("HD019", "a-therapeutic-lift-keeps-its-height",
         person(12, insert=6, symptoms={"achilles_pain": 4}),
         person(12, insert=6, symptoms={"achilles_pain": 4}, activity={"primary": "weightlifting"}),
         ["treats the pain your 18 mm stays"], [drop(18, 18), direction("keep")]),
    case("HD020", "runner-forefoot-5-vs-2",
         person(9, symptoms={"forefoot_pain": 5}, activity={"running_km_per_week": 10}),
         person(9, symptoms={"forefoot_pain": 2}, activity={"running_km_per_week": 10}),
         ["keep your 9 mm"], [drop(9, 9), direction("keep"), advice("HD020")]),
    case("HD022", "a-heel-that-helps-stays",
         person(12, symptoms={"knee_pain": 4}, footwear={"heel_lift_effect": "helps"}),
         person(12, symptoms={"knee_pain": 4}, footwear={"heel_lift_effect": "no_change"}),
         ["no lower than your 12 mm"],
         [drop(12, 12), direction("keep"), overruled("HD016"), advice("HD022")]),
    case("HD023", "a-heel-that-hurt-does-not-go-up",
         person(4, symptoms={"achilles_pain": 4}, footwear={"heel_lift_effect": "worse"}),
         person(4, symptoms={"achilles_pain": 4}, footwear={"heel_lift_effect": "untried"}),
         ["no higher than your 4 mm"], [drop(4, 4), direction("keep"), overruled("HD011")]),
    case("HD024", "previous-12-vs-9-mm",
         person(6, symptoms={"calf_tightness": 4},
                footwear={"previous_drop_mm": 12, "weeks_in_current_drop": 4}),
         person(6, symptoms={"calf_tightness": 4},
                footwear={"previous_drop_mm": 9, "weeks_in_current_drop": 4}),
         ["fast move down from 12 mm", "no lower than 10 mm"],
         [drop(10, 10), direction("raise"), plan(10), advice("HD024")]),
    case("HD025", "a-lifting-shoe-is-held",
         person(22, footwear={"current_type": "weightlifting"}, symptoms={"calf_tightness": 3}),
         person(22, footwear={"current_type": "casual"}, symptoms={"calf_tightness": 3}),
         ["keep its 22 mm"], [drop(22, 22), direction("keep")]),
    case("HD026", "calf-4-vs-2-holds-against-knee-pain",
         person(12, symptoms={"calf_tightness": 4, "knee_pain": 4}),
         person(12, symptoms={"calf_tightness": 2, "knee_pain": 4}),
         ["no lower than your 12 mm"], [drop(12, 12), direction("keep"), overruled("HD016")]),
    # 04x advice
    case("HD040", "sides-differ-2.0-vs-1.9-cm",
         person(10, ktw=(8.0, 10.0)),
         person(10, ktw=(8.0, 9.9)),
         ["Your left ankle bends less (8 cm against 10 cm barefoot)"],
         [advice("HD040"), drop(7, 10)]),
    case("HD040", "one-side-measured-is-not-asymmetry",
         person(10, ktw=(10.0, 7.0)),
         person(10, ktw=(7.0, None)),
         ["Your right ankle"], [advice("HD040")]),
    case("HD041", "leg-length-10-vs-9-mm",
         person(10, history={"leg_length_difference_mm": 10}),
         person(10, history={"leg_length_difference_mm": 9}),
         ["difference of 10 mm"], [advice("HD041"), drop(7, 10)]),
    case("HD042", "high-heels-10-vs-9.5-hours",
         person(10, footwear={"high_heel_hours_per_week": 10}),
         person(10, footwear={"high_heel_hours_per_week": 9.5}),
         ["10 hours a week"], [advice("HD042")]),
    case("HD043", "sprains-2-vs-1",
         person(10, history={"ankle_sprains_past_2_years": 2}),
         person(10, history={"ankle_sprains_past_2_years": 1}),
         ["2 sprains in two years"], [advice("HD043")]),
    case("HD044", "weightlifter-vs-runner",
         person(10, activity={"primary": "weightlifting"}),
         person(10, activity={"primary": "running"}),
         ["lifting shoes"], [advice("HD044")]),
    case("HD044", "squats-in-lifting-shoes",
         person(18, activity={"primary": "general", "squats_in_lifting_shoes": True}),
         person(18, activity={"primary": "general", "squats_in_lifting_shoes": False}),
         ["lifting shoes"], [advice("HD044"), drop(15, 30), band("lift"), direction("keep")]),
    case("HD045", "no-measure-vs-one-lunge-angle",
         person(10, ktw=None),
         person(10, ktw=None, mobility={"lunge_angle_deg": {"right": 30}}),
         ["less certain"],
         [confidence(0.35), advice("HD045"), missing_input("mobility.knee_to_wall_cm")]),
    case("HD045", "measured-in-and-feel-are-not-a-measure",
         person(10, ktw=None, mobility={"measured_in": "shoes", "restriction_felt": "none"}),
         person(10, ktw=(None, 9.0), mobility={"measured_in": "shoes", "restriction_felt": "none"}),
         ["less certain"], [confidence(0.35)]),
    case("HD046", "swelling-3-vs-2-with-a-front-block",
         person(10, symptoms={"ankle_swelling": 3}, mobility={"restriction_felt": "front"}),
         person(10, symptoms={"ankle_swelling": 2}, mobility={"restriction_felt": "front"}),
         ["Swelling (3/10)"], [advice("HD046"), drop(7, 10), referral(None)]),
    case("HD046", "pinch-5-vs-4-with-swelling",
         person(10, symptoms={"ankle_swelling": 4, "anterior_ankle_pinch": 5}),
         person(10, symptoms={"ankle_swelling": 4, "anterior_ankle_pinch": 4}),
         ["Swelling (4/10)"], [advice("HD046")]),
    case("HD047", "tighter-with-the-knee-straight-vs-bent",
         person(10, mobility={"tighter_with_knee": "straight"}),
         person(10, mobility={"tighter_with_knee": "bent"}),
         ["knee straight"], [advice("HD047")]),
    case("HD048", "heel-pain-at-15-vs-16",
         person(8, person={"age_years": 15}, symptoms={"plantar_heel_pain": 3}),
         person(8, person={"age_years": 16}, symptoms={"plantar_heel_pain": 3}),
         ["(15 years)", "Sever's"], [advice("HD048")]),
    case("HD049", "age-65-vs-64",
         person(10, person={"age_years": 65}),
         person(10, person={"age_years": 64}),
         ["At 65"], [advice("HD049")]),
    # 05x settling
    case("HD050", "no-pain-vs-pain-3",
         person(10),
         person(10, symptoms={"calf_tightness": 3}),
         ["in your 10 mm", "only as far as the limits"],
         [keeps_band("moderate"), drop(7, 10), direction("keep"), confidence(0.5)]),
    case("HD050", "a-cap-that-excludes-the-current-band-takes-the-nearest",
         person(22, footwear={"current_type": "casual"}, ktw=None),
         person(22, footwear={"current_type": "casual"}, ktw=None, symptoms={"knee_pain": 3}),
         ["in your 22 mm"], [keeps_band("high"), drop(11, 14), direction("lower_gradually")]),
    case("HD051", "current-16-within-2-mm-above-the-cap",
         person(16),
         person(17),
         ["Your 16 mm"], [drop(11, 16), direction("keep"), plan(), overruled("HD019")]),
    case("HD051", "not-past-a-symptom-bound",
         person(16),
         person(16, symptoms={"knee_pain": 3}),
         ["Your 16 mm"], [drop(11, 16)]),
    # 03x pace
    case("HD030", "lowering-vs-keeping",
         person(11, symptoms={"knee_pain": 3}),
         person(8, symptoms={"knee_pain": 3}),
         ["Lowering from 11 to 8 mm"], [plan(8, weeks=4), direction("lower_gradually")]),
    case("HD030", "lowering-far-in-steps",
         person(16, symptoms={"forefoot_pain": 4}),
         person(16, symptoms={"forefoot_pain": 2}),
         ["Lowering from 16 to 6 mm"], [drop(3, 6), plan(13, 10, 6, weeks=4)]),
    case("HD031", "body-mass-71.5-vs-71.4-kg",
         person(12, symptoms={"forefoot_pain": 3}, person={"body_mass_kg": 71.5}),
         person(12, symptoms={"forefoot_pain": 3}, person={"body_mass_kg": 71.4}),
         ["6 weeks a step"], [plan(9, 6, weeks=6)]),
    case("HD031", "running-35.1-vs-35-km",
         person(12, symptoms={"knee_pain": 3}, activity={"running_km_per_week": 35.1}),
         person(12, symptoms={"knee_pain": 3}, activity={"running_km_per_week": 35}),
         ["6 weeks a step"], [plan(8, weeks=6)]),
    case("HD031", "previous-stress-fracture",
         person(12, symptoms={"forefoot_pain": 3}, history={"previous_stress_fracture": True}),
         person(12, symptoms={"forefoot_pain": 3}, history={"previous_stress_fracture": False}),
         ["6 weeks a step"], [plan(9, 6, weeks=6)]),
    case("HD031", "heavy-but-not-lowering",
         person(12, symptoms={"forefoot_pain": 3}, person={"body_mass_kg": 90}),
         person(12, person={"body_mass_kg": 90}),
         ["6 weeks a step"], [plan(9, 6, weeks=6)]),
    case("HD032", "heeled-10-vs-9.9-years",
         person(12, symptoms={"forefoot_pain": 3}, footwear={"years_in_heeled_shoes": 10}),
         person(12, symptoms={"forefoot_pain": 3}, footwear={"years_in_heeled_shoes": 9.9}),
         ["10 years in heeled shoes"], [plan(9, 6, weeks=6)]),
    case("HD033", "achilles-1-vs-0-on-the-way-down",
         person(12, symptoms={"forefoot_pain": 3, "achilles_pain": 1}),
         person(12, symptoms={"forefoot_pain": 3}),
         ["6 weeks a step"], [plan(9, 6, weeks=6), plan_note("calf and tendon stay settled")]),
    case("HD033", "tighter-with-the-knee-straight",
         person(12, symptoms={"forefoot_pain": 3}, mobility={"tighter_with_knee": "straight"}),
         person(12, symptoms={"forefoot_pain": 3}, mobility={"tighter_with_knee": "same"}),
         ["6 weeks a step"], [plan(9, 6, weeks=6)]),
    case("HD034", "age-65-vs-64-on-the-way-down",
         person(12, symptoms={"forefoot_pain": 3}, person={"age_years": 65}),
         person(12, symptoms={"forefoot_pain": 3}, person={"age_years": 64}),
         ["At 65"], [plan(9, 6, weeks=6)]),
]  # fmt: skip

CATALOGUE = {
    "HD001": ("refer-today", "A/B"),
    "HD002": ("refer-before-change", "B/C"),
    "HD003": ("refer-persistent-signs", "C"),
    "HD010": ("step-back-from-zero-drop", "C/A"),
    "HD011": ("achilles-offload", "A/C"),
    "HD012": ("severe-df-restriction", "C"),
    "HD013": ("plantar-heel-support", "C"),
    "HD014": ("regular-runner-keeps-moderate", "B"),
    "HD015": ("forefoot-offload", "C"),
    "HD016": ("knee-offload", "B"),
    "HD017": ("anterior-pinch-talar-glide", "C/B"),
    "HD018": ("no-lowering-after-surgery", "C"),
    "HD019": ("daily-shoe-cap", "C"),
    "HD020": ("runner-forefoot-hold", "B"),
    "HD022": ("keep-what-helps", "C"),
    "HD023": ("do-not-raise-what-hurt", "C"),
    "HD024": ("step-back-after-fast-drop", "C/B"),
    "HD025": ("lifting-shoe-hold", "C"),
    "HD026": ("calf-protect", "B/C"),
    "HD030": ("lower-in-steps", "C"),
    "HD031": ("slow-transition-load", "C"),
    "HD032": ("long-heeled-history", "C"),
    "HD033": ("slow-for-a-tight-calf", "B"),
    "HD034": ("slow-for-older-feet", "C"),
    "HD040": ("asymmetry", "B"),
    "HD041": ("leg-length", "C"),
    "HD042": ("high-heels-wearer", "C"),
    "HD043": ("recurrent-sprains", "B"),
    "HD044": ("lifting-shoes", "B/C"),
    "HD045": ("no-mobility-measure", "C"),
    "HD046": ("swelling-with-a-block", "C"),
    "HD047": ("straight-knee-calf", "B/C"),
    "HD048": ("child-heel-pain", "B/C"),
    "HD049": ("older-adult-footwear", "B"),
    "HD050": ("content-keep", "C"),
    "HD051": ("no-small-changes", "B"),
}
BOUNDS_PRIORITY = [
    "HD018", "HD019", "HD023", "HD011", "HD022", "HD010", "HD024", "HD026", "HD012", "HD013",
    "HD014", "HD020", "HD015", "HD016", "HD017", "HD025",
]  # fmt: skip
POLICY_BOUNDS = {"HD014", "HD019", "HD025"}


def firing(out: dict, rule_id: str) -> dict | None:
    found = [f for f in out["explanation"]["rules"] if f["id"] == rule_id]
    assert len(found) <= 1
    return found[0] if found else None


@pytest.mark.parametrize("c", CASES)
def test_a_rule_fires_with_the_persons_values_in_its_message(c: Case, rules_only):
    out = rules_only.recommend(c.fires)
    hit = firing(out, c.rule)
    assert hit is not None, f"{c.rule} did not fire"
    assert hit["overruled"] is False
    assert hit["name"] == CATALOGUE[c.rule][0]
    assert "{" not in hit["message"] and "nan" not in hit["message"]
    for fragment in c.says:
        assert fragment in hit["message"]


@pytest.mark.parametrize("c", CASES)
def test_a_rule_stays_silent_just_past_its_boundary(c: Case, rules_only):
    out = rules_only.recommend(c.quiet)
    assert firing(out, c.rule) is None
    assert c.rule not in [a["id"] for a in out["advice"]]


@pytest.mark.parametrize("c", CASES)
def test_a_firing_rule_changes_the_recommendation_as_the_catalogue_says(c: Case, rules_only):
    out = rules_only.recommend(c.fires)
    for check in c.effect:
        check(out)


def test_every_rule_in_the_table_has_a_firing_and_a_silent_case(rules):
    covered = {p.values[0].rule for p in CASES}
    assert covered == {r.id for r in rules}


def test_a_person_with_nothing_to_report_is_told_their_shoes_suit_them(rules_only):
    out = rules_only.recommend(person(10))
    assert [f["id"] for f in out["explanation"]["rules"]] == ["HD019", "HD050"]
    assert out["recommendation"]["drop_mm"] == {"min": 7, "max": 10}
    assert out["recommendation"]["confidence"] == pytest.approx(0.5)


def test_the_summary_ends_with_the_advice_to_see_a_clinician(rules_only):
    """A rule whose advice sends the person to a clinician has the summary say so, last (the
    first such rule by id); other advice stays in `advice`; a referral silences all advice."""
    daniel = person(10, symptoms={"ankle_swelling": 3}, mobility={"restriction_felt": "front"})
    out = rules_only.recommend(daniel)
    assert out["explanation"]["summary"].endswith(
        " Have the swelling at the front of the ankle looked at by a clinician."
    )
    both = rules_only.recommend({**daniel, "history": {"leg_length_difference_mm": 12}})
    closing = " Ask a clinician about a lift for the shorter leg."
    assert both["explanation"]["summary"].endswith(closing)
    asymmetric = rules_only.recommend(person(10, ktw=(7.0, 10.0)))
    assert asymmetric["advice"][0]["id"] == "HD040"
    assert asymmetric["advice"][0]["text"] not in asymmetric["explanation"]["summary"]
    stopped = rules_only.recommend({**daniel, "history": {"can_walk_four_steps": False}})
    assert stopped["advice"] == [] and "looked at" not in stopped["explanation"]["summary"]


def test_see_clinician_sums_up_advice_only(tmp_path):
    text = GOOD_RULE.replace('floor = "6"', 'floor = "6"\nsee_clinician = "See a physio."')
    with pytest.raises(RuleError, match="see_clinician"):
        load_rules(write(tmp_path, text))
    with_advice = text.replace('floor = "6"', 'floor = "6"\nadvice = "See a physio about it."')
    assert load_rules(write(tmp_path, with_advice))[0].see_clinician == "See a physio."


def test_the_bone_stress_advice_is_for_runners_only(rules_only):
    regular = {"running_years": 1, "primary": "running"}
    walker = rules_only.recommend(person(6, symptoms={"forefoot_pain": 3}))
    runner = rules_only.recommend(person(6, symptoms={"forefoot_pain": 3}, activity=regular))
    assert "HD020" not in [a["id"] for a in walker["advice"]]
    assert "HD020" in [a["id"] for a in runner["advice"]]
    assert "stress fracture" in runner["explanation"]["summary"]


# The shipped table


def test_the_shipped_table_holds_exactly_the_catalogue_of_rules_md(rules):
    assert {r.id: r.name for r in rules} == {k: v[0] for k, v in CATALOGUE.items()}


def test_rule_ids_are_unique_and_well_formed(rules):
    ids = [r.id for r in rules]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"HD\d{3}", i) for i in ids)


@pytest.mark.parametrize("rule_id", sorted(CATALOGUE))
def test_each_rule_carries_the_evidence_grade_of_the_catalogue_and_its_sources(rules, rule_id):
    rule = next(r for r in rules if r.id == rule_id)
    assert rule.grade == CATALOGUE[rule_id][1]
    assert all(f"Grade {g}" in rule.rationale for g in rule.grade.split("/")) or (
        f"Grade {rule.grade}" in rule.rationale
    )
    assert rule.sources and all(rule.sources)


def test_the_bounds_are_applied_in_the_priority_order_of_rules_md(rules):
    assert [r.id for r in rules if r.stage == "bounds"] == BOUNDS_PRIORITY
    assert {r.id for r in rules if r.policy} == POLICY_BOUNDS
    assert {r.id for r in rules if r.undo} == {"HD010", "HD024"}


def test_each_rule_sits_in_the_stage_of_its_decade(rules):
    stage_of = {"0": "referral", "1": "bounds", "3": "pace", "4": "advice"}
    for rule in rules:
        decade = rule.id[3]
        if decade in stage_of:
            assert rule.stage == stage_of[decade], rule.id
    assert {r.id: r.stage for r in rules if r.id[3] == "5"} == {"HD050": "band", "HD051": "range"}


def test_the_referral_rules_carry_their_urgency(rules):
    urgency = {r.id: r.referral for r in rules if r.stage == "referral"}
    assert urgency == {"HD001": "today", "HD002": "soon", "HD003": "soon"}


# The loader refuses a broken table

GOOD_RULE = """
[[rule]]
id = "HD012"
name = "severe-df-restriction"
stage = "bounds"
when = "ktw_min < 6"
floor = "6"
message = "Knee-to-wall of {ktw_min:.1f} cm."
grade = "B"
sources = ["Hoch 2011"]
rationale = "Grade B. Hoch 2011."
"""


def write(tmp_path, text: str):
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_well_formed_table_loads(tmp_path):
    (rule,) = load_rules(write(tmp_path, GOOD_RULE))
    assert (rule.id, rule.stage, rule.name) == ("HD012", "bounds", "severe-df-restriction")


@pytest.mark.parametrize(
    ("old", "new", "complaint"),
    [
        pytest.param('when = "ktw_min < 6"', 'when = "ktw_minimum < 6"', "ktw_minimum",
                     id="unknown-context-name-in-condition"),
        pytest.param('floor = "6"', 'floor = "height + 6"', "height", id="unknown-name-in-floor"),
        pytest.param('rationale = "Grade B. Hoch 2011."', 'rationale = "Hoch 2011."', "grade",
                     id="rationale-without-grade"),
        pytest.param('grade = "B"', 'grade = "D"', "grade", id="no-such-grade"),
        pytest.param('sources = ["Hoch 2011"]', "sources = []", "sources", id="no-sources"),
        pytest.param('floor = "6"', 'floor = "6"\npolicy = false', "policy", id="policy-false"),
        pytest.param('floor = "6"', 'floor = "floor(ktw_min, 2)"', "floor", id="floor-of-two"),
        pytest.param('floor = "6"', "floor = \"where(ktw_min < 3, 8)\"", "where",
                     id="where-without-an-otherwise"),
        pytest.param("{ktw_min:.1f}", "{ktw_smallest:.1f}", "ktw_smallest",
                     id="message-naming-unknown-value"),
        pytest.param('floor = "6"', 'floor = "6"\nceiling_mm = "10"', "ceiling_mm",
                     id="unknown-key"),
        pytest.param('stage = "bounds"', 'stage = "limits"', "limits", id="bad-stage"),
        pytest.param('id = "HD012"', 'id = "R12"', "R12", id="bad-id"),
        pytest.param('when = "ktw_min < 6"\n', "", "when", id="no-condition"),
        pytest.param('when = "ktw_min < 6"', 'when = "ktw_min"', "condition",
                     id="number-as-condition"),
        pytest.param('floor = "6"', 'floor = "ktw_min < 6"', "number", id="condition-as-floor"),
        pytest.param('name = "severe-df-restriction"\n', "", "name", id="missing-name"),
        pytest.param('when = "ktw_min < 6"', 'when = "restriction_felt == \'calf\'"', "calf",
                     id="enum-option-that-does-not-exist"),
        pytest.param('when = "ktw_min < 6"', 'when = "3 > 2"', "read something",
                     id="condition-reading-nothing"),
    ],
)  # fmt: skip
def test_the_loader_refuses_a_broken_rule(tmp_path, old, new, complaint):
    assert old in GOOD_RULE
    with pytest.raises(RuleError, match=re.escape(complaint)):
        load_rules(write(tmp_path, GOOD_RULE.replace(old, new)))


def test_the_loader_refuses_duplicate_ids(tmp_path):
    with pytest.raises(RuleError, match="unique"):
        load_rules(write(tmp_path, GOOD_RULE + GOOD_RULE))


def test_the_loader_refuses_a_reason_naming_an_unknown_value(tmp_path):
    text = GOOD_RULE.replace('when = "ktw_min < 6"\n', "") + (
        '[[rule.reasons]]\nwhen = "ktw_min < 6"\ntext = "stiff ({stiffness:.1f} cm)"\n'
    )
    with pytest.raises(RuleError, match="stiffness"):
        load_rules(write(tmp_path, text))


def test_the_loader_refuses_fired_of_an_unknown_rule(tmp_path):
    text = GOOD_RULE.replace('"ktw_min < 6"', '"ktw_min < 6 and not fired(HD099)"')
    with pytest.raises(RuleError, match="fired"):
        load_rules(write(tmp_path, text))


def test_fired_names_only_rules_of_earlier_stages(tmp_path):
    """A stage's conditions are read before its own rules fire, so fired() of a rule of the
    same or a later stage would always be false: the loader refuses it."""
    other = GOOD_RULE.replace("HD012", "HD013")
    reads = GOOD_RULE.replace('"ktw_min < 6"', '"ktw_min < 6 and not fired(HD013)"')
    advice = reads.replace('stage = "bounds"', 'stage = "advice"').replace('floor = "6"\n', "")
    assert [r.id for r in load_rules(write(tmp_path, other + advice))] == ["HD013", "HD012"]
    for stage in ("bounds", "advice"):  # the same stage; a later one
        later = other if stage == "bounds" else advice.replace("HD012", "HD013")
        with pytest.raises(RuleError, match="earlier stages"):
            load_rules(write(tmp_path, later + reads))


def test_the_loader_names_the_broken_rule(tmp_path):
    text = GOOD_RULE + GOOD_RULE.replace("HD012", "HD013").replace("ktw_min < 6", "ktw < 6")
    with pytest.raises(RuleError, match="HD013"):
        load_rules(write(tmp_path, text))


def test_a_floor_or_ceiling_outside_the_bounds_stage_is_refused(tmp_path):
    for bound in ('floor = "6"', 'ceiling = "6"'):
        text = GOOD_RULE.replace('stage = "bounds"', 'stage = "advice"')
        with pytest.raises(RuleError, match="bounds stage"):
            load_rules(write(tmp_path, text.replace('floor = "6"', bound)))


def test_stage_values_are_only_known_to_the_stages_after_them(tmp_path):
    ok = (
        GOOD_RULE.replace('stage = "bounds"', 'stage = "pace"')
        .replace('when = "ktw_min < 6"', 'when = "range_max < current"')
        .replace('floor = "6"', "pace_weeks = 6")
    )
    assert load_rules(write(tmp_path, ok))[0].stage == "pace"
    early = GOOD_RULE.replace('when = "ktw_min < 6"', 'when = "range_max < current"')
    with pytest.raises(RuleError, match="range_max"):
        load_rules(write(tmp_path, early))
