"""The simulated cohort: reproducible, valid requests, and encoding the documented effects."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from service.training.cohort import BANDS, simulate, write_cohort

EDGES = (0, 3, 7, 11, 15, 31)
PAINS = ("anterior_ankle_pinch", "calf_tightness", "achilles_pain", "plantar_heel_pain",
         "forefoot_pain", "knee_pain")  # fmt: skip
SEVERITIES = (*PAINS, "ankle_swelling", "numbness_tingling")
RANGES = {
    "person.age_years": (8, 100), "person.body_mass_kg": (25, 250),
    "footwear.current_drop_mm": (0, 30), "footwear.heel_insert_mm": (0, 25),
    "footwear.current_stack_mm": (0, 60), "footwear.weeks_in_current_drop": (0, 2080),
    "footwear.previous_drop_mm": (0, 30), "footwear.years_in_heeled_shoes": (0, 90),
    "footwear.high_heel_hours_per_week": (0, 112), "activity.running_km_per_week": (0, 300),
    "activity.running_years": (0, 80), "history.weeks_since_ankle_surgery": (0, 5200),
    "history.weeks_since_ankle_injury": (0, 5200), "history.ankle_sprains_past_2_years": (0, 50),
    "history.weeks_since_achilles_rupture": (0, 5200),
    "history.leg_length_difference_mm": (0, 60),
    "mobility.knee_to_wall_cm.left": (0, 25), "mobility.knee_to_wall_cm.right": (0, 25),
    "mobility.lunge_angle_deg.left": (0, 80), "mobility.lunge_angle_deg.right": (0, 80),
    **{f"symptoms.{k}": (0, 10) for k in SEVERITIES},
}  # fmt: skip
ENUMS = {
    "person.sex": {"female", "male", "other", "unspecified"},
    "footwear.current_type": {"road_running", "trail_running", "walking", "casual", "dress",
                              "work_boot", "minimalist", "weightlifting", "court", "other"},
    "activity.primary": {"running", "walking", "standing_work", "weightlifting", "court_sports",
                         "general"},
    "mobility.measured_in": {"barefoot", "shoes"},
    "mobility.restriction_felt": {"front", "back", "both", "none", "unknown"},
    "footwear.heel_lift_effect": {"helps", "no_change", "worse", "untried"},
    "mobility.tighter_with_knee": {"straight", "bent", "same", "unknown"},
    "outcome_band": set(BANDS),
}  # fmt: skip
FLAGS = ("activity.squats_in_lifting_shoes", "symptoms.started_after_shoe_change",
         "symptoms.calf_swelling_one_side", "symptoms.hot_red_joint_or_fever",
         "symptoms.night_or_rest_pain", "history.suspected_achilles_rupture",
         "history.diabetes_or_neuropathy", "history.previous_stress_fracture",
         "history.can_walk_four_steps", "mobility.deep_squat_heels_down",
         "symptoms.ankle_locks_or_catches", "symptoms.focal_bone_pain")  # fmt: skip
INTEGERS = (
    *(f"symptoms.{k}" for k in SEVERITIES), "history.ankle_sprains_past_2_years",
    "footwear.current_drop_mm", "outcome_drop_mm",
)  # fmt: skip
# Every request field path, in the contract's order, between client_ref and the outcome.
COLUMNS = ["client_ref", "person.age_years", "person.body_mass_kg", "person.sex",
           "footwear.current_drop_mm", "footwear.heel_insert_mm", "footwear.current_stack_mm",
           "footwear.current_type", "footwear.weeks_in_current_drop", "footwear.previous_drop_mm",
           "footwear.years_in_heeled_shoes", "footwear.high_heel_hours_per_week",
           "footwear.heel_lift_effect", "activity.primary", "activity.running_km_per_week",
           "activity.running_years", "activity.squats_in_lifting_shoes",
           *(f"symptoms.{k}" for k in SEVERITIES),
           "symptoms.started_after_shoe_change", "symptoms.calf_swelling_one_side",
           "symptoms.hot_red_joint_or_fever", "symptoms.night_or_rest_pain",
           "symptoms.ankle_locks_or_catches", "symptoms.focal_bone_pain",
           "history.weeks_since_ankle_surgery", "history.weeks_since_ankle_injury",
           "history.ankle_sprains_past_2_years", "history.suspected_achilles_rupture",
           "history.weeks_since_achilles_rupture", "history.diabetes_or_neuropathy",
           "history.previous_stress_fracture", "history.leg_length_difference_mm",
           "history.can_walk_four_steps", "mobility.knee_to_wall_cm.left",
           "mobility.knee_to_wall_cm.right", "mobility.lunge_angle_deg.left",
           "mobility.lunge_angle_deg.right", "mobility.measured_in", "mobility.restriction_felt",
           "mobility.deep_squat_heels_down", "mobility.tighter_with_knee", "outcome_band",
           "outcome_drop_mm"]  # fmt: skip


def band_of(mm: pd.Series) -> pd.Series:
    """The band name of each drop in mm (docs/evidence.md)."""
    return pd.Series(np.array(BANDS)[np.searchsorted(EDGES, mm, side="right") - 1], mm.index)


def derived(df: pd.DataFrame) -> pd.DataFrame:
    """Add the derived values of docs/rules.md, the way the rules would see them."""
    fill = {c: 0 for c in df.columns if c.startswith("symptoms.") and c[9:] in SEVERITIES}
    df = df.fillna(fill)
    current = df["footwear.current_drop_mm"] + df["footwear.heel_insert_mm"].fillna(0)
    df["current"] = current.astype("int64")
    df["current_band"] = band_of(df["current"])
    shoes = (df["mobility.measured_in"] == "shoes").astype(float)
    sides = [
        df[f"mobility.knee_to_wall_cm.{s}"].fillna(df[f"mobility.lunge_angle_deg.{s}"] / 3.6)
        - shoes
        for s in ("left", "right")
    ]
    df["ktw_min"] = pd.concat(sides, axis=1).astype(float).min(axis=1)
    df["pain_max"] = df[[f"symptoms.{k}" for k in PAINS]].max(axis=1)
    years, km = df["activity.running_years"], df["activity.running_km_per_week"]
    runs = df["activity.primary"] == "running"
    df["regular"] = (years >= 0.5) & (runs | (km >= 5))
    df["occasional"] = ((years < 0.5) | (~runs & (km < 5))) & (runs | (km > 0))
    return df


@pytest.fixture(scope="module")
def cohort() -> pd.DataFrame:
    """20k rows: enough for every encoded effect to show, fast enough to run every time."""
    return derived(simulate(20_000, seed=2024))


def test_the_same_seed_writes_byte_identical_files(tmp_path: Path) -> None:
    write_cohort(tmp_path / "a.csv", 3000, seed=7)
    write_cohort(tmp_path / "b.csv", 3000, seed=7)
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_different_seeds_write_different_files(tmp_path: Path) -> None:
    write_cohort(tmp_path / "a.csv", 3000, seed=7)
    write_cohort(tmp_path / "b.csv", 3000, seed=8)
    assert (tmp_path / "a.csv").read_bytes() != (tmp_path / "b.csv").read_bytes()


def test_writing_replaces_the_target_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "data" / "cohort.csv"
    write_cohort(target, 50, seed=1)
    write_cohort(target, 80, seed=1)
    assert os.listdir(target.parent) == ["cohort.csv"]
    assert len(target.read_text().splitlines()) == 81


def test_the_csv_uses_the_batch_format_for_absent_booleans_integers_and_floats(
    tmp_path: Path,
) -> None:
    write_cohort(tmp_path / "c.csv", 2000, seed=3)
    raw = pd.read_csv(tmp_path / "c.csv", dtype=str, keep_default_na=False)
    assert list(raw.columns) == COLUMNS
    for col in FLAGS:
        assert set(raw[col]) <= {"true", "false", ""}, col
    for col in INTEGERS:
        assert raw[col].str.fullmatch(r"\d*").all(), col
    for col in ("person.body_mass_kg", "mobility.knee_to_wall_cm.left"):
        assert raw[col].str.fullmatch(r"(\d+(\.\d)?)?").all(), col
    assert (raw["mobility.knee_to_wall_cm.left"] == "").any()  # absent is an empty cell
    frame = simulate(2000, seed=3)
    assert (raw["outcome_band"] == frame["outcome_band"]).all()
    assert raw["client_ref"].iloc[0] == "sim-0000001"


def test_columns_are_client_ref_then_every_spec_request_field_then_the_outcome() -> None:
    assert list(simulate(10, seed=0).columns) == COLUMNS


def test_zero_rows_give_an_empty_cohort_and_negative_rows_are_refused() -> None:
    assert list(simulate(0, seed=0).columns) == COLUMNS
    with pytest.raises(ValueError):
        simulate(-1, seed=0)


def test_every_value_is_within_the_spec_ranges_and_enums(cohort: pd.DataFrame) -> None:
    for col, (lo, hi) in RANGES.items():
        values = cohort[col].dropna()
        assert values.between(lo, hi).all(), col
    for col, allowed in ENUMS.items():
        assert set(cohort[col].dropna()) <= allowed, col
    for col in FLAGS:
        assert str(cohort[col].dtype) == "boolean", col
    for col in INTEGERS:
        assert str(cohort[col].dtype) == "Int64", col
    assert cohort["footwear.current_drop_mm"].notna().all()
    assert cohort["client_ref"].is_unique
    assert (cohort["client_ref"].str.len() <= 64).all()


def test_outcome_drop_lies_inside_its_band(cohort: pd.DataFrame) -> None:
    assert (band_of(cohort["outcome_drop_mm"]) == cohort["outcome_band"]).all()
    assert set(cohort["outcome_band"]) == set(BANDS)


def test_optional_fields_are_missing_at_plausible_rates(cohort: pd.DataFrame) -> None:
    mob = cohort[[c for c in COLUMNS if "knee_to_wall" in c or "lunge" in c]]
    assert 0.2 < mob.isna().all(axis=1).mean() < 0.3
    ktw_l, ktw_r = cohort["mobility.knee_to_wall_cm.left"], cohort["mobility.knee_to_wall_cm.right"]
    angle_only = cohort["mobility.lunge_angle_deg.left"].notna() & ktw_l.isna()
    assert 0.05 < angle_only.mean() < 0.2
    assert 0.02 < (ktw_l.notna() != ktw_r.notna()).mean() < 0.15  # only one side measured
    assert 0.05 < (cohort["mobility.measured_in"] == "shoes").mean() < 0.3
    raw = simulate(5000, seed=2024)
    assert raw["symptoms.achilles_pain"].isna().mean() > 0.3  # absent mostly means none


def test_red_flag_inputs_are_rare_but_present(cohort: pd.DataFrame) -> None:
    flags = {
        "cannot walk four steps": cohort["history.can_walk_four_steps"] == False,  # noqa: E712
        "rupture": cohort["history.suspected_achilles_rupture"] == True,  # noqa: E712
        "fever": cohort["symptoms.hot_red_joint_or_fever"] == True,  # noqa: E712
        "calf swelling": cohort["symptoms.calf_swelling_one_side"] == True,  # noqa: E712
        "surgery": cohort["history.weeks_since_ankle_surgery"] < 12,
        "injury": cohort["history.weeks_since_ankle_injury"] < 6,
        "diabetes": cohort["history.diabetes_or_neuropathy"] == True,  # noqa: E712
        "numbness": cohort["symptoms.numbness_tingling"] >= 3,
    }
    rates = {name: flag.fillna(False).mean() for name, flag in flags.items()}
    assert all(rate <= 0.03 for rate in rates.values()), rates
    assert sum(rates.values()) > 0.005, rates


def test_knee_to_wall_follows_hoch_norms_falls_with_age_and_is_higher_in_males(
    cohort: pd.DataFrame,
) -> None:
    bare = cohort[cohort["mobility.measured_in"] == "barefoot"]
    ktw, age = bare["mobility.knee_to_wall_cm.left"].dropna(), bare["person.age_years"]
    assert 11 < ktw.mean() < 13 and 2.4 < ktw.std() < 3.4
    young = ktw[age.reindex(ktw.index).between(20, 39)].mean()
    sixties = ktw[age.reindex(ktw.index).between(60, 69)].mean()
    assert young - sixties > 0.5
    sex = bare["person.sex"].reindex(ktw.index)
    assert ktw[sex == "male"].mean() > ktw[sex == "female"].mean()


def test_left_right_differences_are_mostly_within_one_and_a_half_cm(cohort: pd.DataFrame) -> None:
    left, right = cohort["mobility.knee_to_wall_cm.left"], cohort["mobility.knee_to_wall_cm.right"]
    diff = (left - right).abs()
    assert 0.55 < (diff.dropna() <= 1.5).mean() < 0.8


def test_current_drops_reflect_the_market(cohort: pd.DataFrame) -> None:
    drop = cohort["footwear.current_drop_mm"]
    assert drop.between(8, 12).mean() > 0.4
    assert 0.1 < drop.between(4, 6).mean() < 0.3
    assert 0.05 < (drop <= 2).mean() < 0.2
    assert 0.02 < (drop >= 15).mean() < 0.15


def test_achilles_pain_raises_the_drop_that_worked(cohort: pd.DataFrame) -> None:
    pain, drop = cohort["symptoms.achilles_pain"], cohort["outcome_drop_mm"]
    assert drop[pain >= 3].mean() > drop[pain == 0].mean() + 1.5
    assert cohort["outcome_band"][pain >= 3].isin(["moderate", "high", "lift"]).mean() > 0.8


def test_plantar_heel_pain_raises_the_drop_that_worked(cohort: pd.DataFrame) -> None:
    same = cohort[cohort["current_band"] == "moderate"]
    pain, drop = same["symptoms.plantar_heel_pain"], same["outcome_drop_mm"]
    assert drop[pain >= 3].mean() > drop[pain == 0].mean() + 0.5


def test_forefoot_pain_lowers_the_drop_that_worked(cohort: pd.DataFrame) -> None:
    same = cohort[cohort["current"].between(7, 14)]
    pain, drop = same["symptoms.forefoot_pain"], same["outcome_drop_mm"]
    assert drop[pain >= 3].mean() < drop[pain == 0].mean() - 1


def test_knee_pain_lowers_the_drop_that_worked(cohort: pd.DataFrame) -> None:
    same = cohort[cohort["current"].between(7, 14)]
    pain, drop = same["symptoms.knee_pain"], same["outcome_drop_mm"]
    assert drop[pain >= 3].mean() < drop[pain == 0].mean() - 0.5


def test_heeled_zero_drop_converts_with_pain_rarely_do_best_at_zero(cohort: pd.DataFrame) -> None:
    zero = cohort[cohort["current"] <= 2]
    recent = (zero["footwear.weeks_in_current_drop"] < 26) | zero[
        "symptoms.started_after_shoe_change"
    ].fillna(False)
    heeled = zero["footwear.years_in_heeled_shoes"] >= 5
    pain = zero[[f"symptoms.{k}" for k in PAINS[:4]]].max(axis=1) >= 3
    converts = zero["outcome_band"][(recent & heeled & pain).fillna(False)]
    content = zero["outcome_band"][zero["pain_max"] == 0]
    assert len(converts) > 100
    assert (converts == "zero").mean() < 0.1 < (content == "zero").mean()
    assert converts.isin(["low", "moderate"]).mean() > 0.6


def test_regular_runners_do_best_in_low_drop_less_often_than_occasional_ones(
    cohort: pd.DataFrame,
) -> None:
    same = cohort[(cohort["pain_max"] < 3) & (cohort["current_band"] == "moderate")]
    low = same["outcome_band"] == "low"
    regular, occasional = low[same["regular"].fillna(False)], low[same["occasional"].fillna(False)]
    assert len(occasional) > 200
    assert regular.mean() + 0.05 < occasional.mean()


def test_asymptomatic_adapted_people_do_best_in_their_current_band(cohort: pd.DataFrame) -> None:
    adapted = cohort[(cohort["pain_max"] == 0) & (cohort["ktw_min"] >= 10)]
    same = adapted["outcome_band"] == adapted["current_band"]
    assert same.mean() > 0.5
    for band in ("low", "moderate", "high"):
        group = adapted[adapted["current_band"] == band]
        assert group["outcome_band"].value_counts().idxmax() == band


def test_a_front_pinch_with_severe_restriction_avoids_high_drops_unlike_a_calf_restriction(
    cohort: pd.DataFrame,
) -> None:
    severe = cohort[cohort["ktw_min"] < 6]
    felt = severe["mobility.restriction_felt"]
    high = severe["outcome_band"].isin(["high", "lift"])
    front, back = high[felt.isin(["front", "both"])], high[felt == "back"]
    assert len(front) > 40 and len(back) > 40
    assert front.mean() + 0.2 < back.mean()
    assert severe["outcome_drop_mm"][felt == "back"].mean() > 10


def test_outcomes_are_noisy_so_no_simple_rule_is_perfect(cohort: pd.DataFrame) -> None:
    keep = (cohort["outcome_band"] == cohort["current_band"]).mean()
    assert 0.4 < keep < 0.75
    content = cohort[(cohort["pain_max"] == 0) & (cohort["current_band"] == "moderate")]
    assert 0.5 < (content["outcome_band"] == "moderate").mean() < 0.9  # alike people differ
    assert cohort["outcome_band"].value_counts(normalize=True).min() > 0.02


def test_the_version_2_inputs_follow_their_documented_rates_and_effects() -> None:
    """docs/cohort.md: tighter with the knee straight goes with calf tightness; locking with
    injury or surgery; focal bone pain with a regular runner's forefoot pain in low drops; a
    heel lift helps when the drop that worked is above the current one and worsens when below."""
    frame = simulate(60_000, seed=17)
    calf = frame["symptoms.calf_tightness"].fillna(0) >= 3
    straight = frame["mobility.tighter_with_knee"] == "straight"
    asked = frame["mobility.tighter_with_knee"].notna()
    assert straight[asked & calf].mean() > straight[asked & ~calf].mean() + 0.15
    injured = frame["history.weeks_since_ankle_injury"] < 104
    locks = frame["symptoms.ankle_locks_or_catches"].fillna(False).astype(bool)
    assert locks[injured].mean() > 3 * locks[~injured.fillna(False)].mean()
    assert 0.002 < locks.mean() < 0.03
    focal = frame["symptoms.focal_bone_pain"].fillna(False).astype(bool)
    assert 0.001 < focal.mean() < 0.02
    runner_pain = (frame["activity.running_years"] >= 0.5) & (
        frame["symptoms.forefoot_pain"].fillna(0) >= 3
    )
    assert focal[runner_pain.fillna(False)].mean() > 5 * focal.mean()
    effect = frame["footwear.heel_lift_effect"]
    current = frame["footwear.current_drop_mm"] + frame["footwear.heel_insert_mm"].fillna(0)
    gap = (frame["outcome_drop_mm"] - current).astype(float)
    assert gap[effect == "helps"].mean() > 3 > -3 > gap[effect == "worse"].mean()
    tried = effect.isin(["helps", "no_change", "worse"])
    assert 0.05 < tried.mean() < 0.15
