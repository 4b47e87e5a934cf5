"""Seeded simulated cohort (docs/cohort.md): people, their shoes and the drop band that worked.

No public data set links mobility, symptoms and footwear to outcomes, so the first classifier is
trained on this generator. Every distribution and effect, and which are sourced, is in
docs/cohort.md. Everything is vectorised numpy drawn from one seeded generator, in a fixed order,
so the same seed gives the same bytes.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

from service.core.fields import FIELDS
from service.files import atomic_path

BANDS = ("zero", "low", "moderate", "high", "lift")
EDGES = np.array([0, 3, 7, 11, 15, 31])  # band b: EDGES[b]..EDGES[b + 1] - 1 mm (docs/evidence.md)
SEXES = ("female", "male", "other", "unspecified")
PRIMARY = ("running", "walking", "standing_work", "weightlifting", "court_sports", "general")
# fmt: off
SHOES = ("road_running", "trail_running", "walking", "casual", "dress", "work_boot", "minimalist",
         "weightlifting", "court", "other")
FELT = ("front", "back", "both", "none", "unknown")
KNEE = ("straight", "bent", "same", "unknown")  # the calf stretch is tighter with the knee ...
LIFT = ("helps", "no_change", "worse", "untried")  # what a higher heel did to the pain
# P(shoe type | primary activity), rows in PRIMARY order, columns in SHOES order (assumption).
SHOE_GIVEN_PRIMARY = np.array([
    [.66, .18, 0, 0, 0, 0, .12, 0, 0, .04], [.10, .10, .40, .20, 0, 0, .12, 0, 0, .08],
    [.05, 0, .20, .20, .05, .45, .03, 0, 0, .02], [.10, 0, 0, .15, 0, 0, .20, .45, .05, .05],
    [.15, 0, 0, .05, 0, 0, .02, 0, .75, .03], [.12, .03, .20, .35, .12, .03, .10, 0, .02, .03]])
# Stated drops (mm) and their shares per shoe type, reflecting the market (assumption).
DROPS = {
    0: ([0, 4, 5, 6, 8, 10, 12, 13], [.04, .10, .05, .12, .28, .25, .13, .03]),
    1: ([0, 4, 6, 8, 10], [.12, .25, .25, .25, .13]),
    2: ([4, 6, 8, 10, 12], [.1, .2, .3, .25, .15]),
    3: ([0, 5, 8, 10, 12, 15], [.05, .1, .2, .3, .25, .1]),
    4: ([10, 12, 15, 20, 25, 30], [.15, .2, .2, .2, .15, .1]),
    5: ([8, 10, 12, 15, 20], [.1, .25, .3, .25, .1]), 6: ([0, 1, 2, 4], [.8, .05, .05, .1]),
    7: ([15, 17, 19, 20, 22, 25], [.1, .2, .3, .2, .1, .1]), 8: ([6, 8, 10, 12], [.2, .3, .3, .2]),
    9: ([0, 4, 8, 10, 12], [.2, .2, .2, .2, .2])}
STACK = np.array([32, 28, 30, 28, 35, 38, 10, 35, 25, 25])  # mean heel stack per type (assumption)
PAINS = ("anterior_ankle_pinch", "calf_tightness", "achilles_pain", "plantar_heel_pain",
         "forefoot_pain", "knee_pain")
# fmt: on
Arrays = dict[str, np.ndarray]


def _pick(rng: np.random.Generator, cum: np.ndarray) -> np.ndarray:
    """One categorical draw per row, from each row's cumulative probabilities, vectorised."""
    return (rng.random(len(cum))[:, None] > cum[:, :-1]).sum(axis=1)


def _logn(rng: np.random.Generator, n: int, median: float, sigma: float) -> np.ndarray:
    """Log-normal draws: skewed positive quantities (km, weeks, years)."""
    return median * np.exp(sigma * rng.standard_normal(n))


def _severity(rng: np.random.Generator, p: np.ndarray, median: float = 3.5) -> np.ndarray:
    """0 with probability 1 - p, else an integer 1-10 (skewed to mild)."""
    sev = np.clip(np.rint(_logn(rng, len(p), median, 0.5)), 1, 10)
    return np.where(rng.random(len(p)) < p, sev, 0).astype(np.int64)


def _people(rng: np.random.Generator, n: int) -> Arrays:
    """The true (complete) values of every person; observation and missingness come later."""
    u = rng.random
    p: Arrays = {"age": np.clip(np.rint(rng.normal(42, 14, n)), 8, 92)}
    p["sex"] = rng.choice(4, n, p=[0.48, 0.48, 0.01, 0.03])
    sex = p["sex"]
    mass = np.array([67, 82, 75, 75])[sex] + np.array([11, 12, 13, 13])[sex] * rng.normal(size=n)
    p["mass"] = np.clip(mass, 35, 180)
    p["primary"] = rng.choice(6, n, p=[0.40, 0.20, 0.10, 0.07, 0.08, 0.15])
    runs = p["primary"] == 0
    p["km"] = np.where(
        runs,
        np.clip(_logn(rng, n, 22, 0.6), 1, 200),
        np.where(u(n) < 0.6, 0.0, np.clip(_logn(rng, n, 6, 0.8), 0.5, 80)),
    )
    years = np.where(u(n) < 0.12, u(n) * 0.5, _logn(rng, n, 5, 0.9))
    years = np.where(runs, years, np.where(p["km"] > 0, _logn(rng, n, 2, 1.2), 0.0))
    p["run_years"] = np.minimum(years, np.maximum(p["age"] - 6, 0))
    p["regular"] = (p["run_years"] >= 0.5) & (runs | (p["km"] >= 5))  # Malisoux 2016
    p["occasional"] = ~p["regular"] & (runs | (p["km"] > 0))
    p["squats"] = u(n) < np.where(p["primary"] == 3, 0.6, 0.03)
    p["type"] = _pick(rng, np.cumsum(SHOE_GIVEN_PRIMARY, axis=1)[p["primary"]])
    drop = np.zeros(n)
    for t, (opts, w) in DROPS.items():
        idx = np.flatnonzero(p["type"] == t)
        drop[idx] = rng.choice(opts, size=idx.size, p=w)
    p["drop"] = drop
    zero, recent = drop <= 2, u(n) < 0.5
    p["weeks"] = np.clip(
        np.rint(np.where(zero & recent, rng.integers(1, 26, n), _logn(rng, n, 70, 1.1))), 0, 2080
    )
    p["prev"] = np.where(
        zero,
        rng.choice([6, 8, 10, 12], n, p=[0.15, 0.3, 0.3, 0.25]),
        np.clip(drop + rng.choice([-4, -2, 2, 4], n), 0, 30),
    )
    heeled = p["age"] - rng.uniform(3, 12, n) - np.where(zero & ~recent, p["weeks"] / 52, 0)
    p["heeled"] = np.clip(np.rint(heeled), 0, 90)
    p["heels_h"] = np.where(
        u(n) < np.where(p["sex"] == 0, 0.25, 0.01),
        np.clip(np.rint(_logn(rng, n, 6, 0.8)), 1, 112),
        0,
    )
    stack = np.rint(STACK[p["type"]] + rng.normal(0, 4, n))
    p["stack"] = np.clip(np.maximum(stack, drop + 4), 0, 60)
    # Knee-to-wall: Hoch & McKeon 2011 (12 ± 2.8 cm); falls with age, most at 60-69; males higher.
    age = p["age"]
    mean = (
        12.4
        - 0.02 * np.maximum(age - 30, 0)
        - 0.12 * np.clip(age - 60, 0, 10)
        - 0.04 * np.maximum(age - 70, 0)
        + np.array([-0.5, 0.5, 0, 0])[sex]
    )
    m, d = mean + rng.normal(0, 2.8, n), rng.normal(0, 1.5, n)  # Hoch 2011: 68% differ <= 1.5 cm
    p["ktw_l"], p["ktw_r"] = np.clip(m - d / 2, 0.5, 25), np.clip(m + d / 2, 0.5, 25)
    p["ktw"] = np.minimum(p["ktw_l"], p["ktw_r"])
    p["injury"] = np.where(u(n) < 0.18, np.clip(np.rint(_logn(rng, n, 100, 1.5)), 0, 5200), -1)
    p["surgery"] = np.where(u(n) < 0.03, np.clip(np.rint(_logn(rng, n, 250, 1.3)), 1, 5200), -1)
    recent_injury = (p["injury"] >= 0) & (p["injury"] < 104)
    p["sprains"] = np.minimum(rng.poisson(0.3 + 0.8 * recent_injury), 50)
    front = 0.05 + 0.2 * (p["ktw"] < 12) + 0.1 * (p["sprains"] >= 2) + 0.1 * (p["surgery"] >= 0)
    back = np.where(p["ktw"] < 12, 0.5, 0.22)
    cum = [front * 0.65, front * 0.65 + back, front + back, np.ones(n)]  # front, back, both, none
    p["felt"] = _pick(rng, np.stack(cum, axis=1))
    p["diabetes"] = u(n) < 0.005 + 0.02 * (age > 50)
    convert = zero & (p["weeks"] < 26) & (p["heeled"] >= 5)
    fronty = np.isin(p["felt"], (0, 2))
    probs = {
        "anterior_ankle_pinch": 0.03 + 0.12 * convert + 0.15 * fronty + 0.03 * (p["sprains"] >= 2),
        "calf_tightness": 0.10 + 0.25 * convert + 0.08 * (p["ktw"] < 9),
        "achilles_pain": 0.05 + 0.04 * p["regular"] + 0.15 * convert + 0.03 * (age > 40),
        "plantar_heel_pain": 0.05 + 0.10 * convert + 0.04 * (p["mass"] > 85),
        "forefoot_pain": 0.04 + 0.04 * (drop >= 13) + 0.05 * (p["heels_h"] >= 10) + 0.04 * zero,
        "knee_pain": 0.07 + 0.05 * (age > 50) + 0.03 * p["regular"] + 0.03 * (drop >= 12),
    }
    for name, prob in probs.items():
        p[name] = _severity(rng, prob)
    recent_injury = (p["injury"] >= 0) & (p["injury"] < 26)
    p["ankle_swelling"] = _severity(rng, 0.02 + 0.2 * recent_injury, median=2.0)
    p["numbness_tingling"] = _severity(rng, 0.008 + 0.25 * p["diabetes"], median=2.5)
    pain = np.max([p[k] for k in PAINS], axis=0)
    p["after_change"] = (pain > 0) & (u(n) < np.where(p["weeks"] < 26, 0.6, 0.03))
    p["insert"] = np.where(
        u(n) < 0.03 + 0.25 * (p["achilles_pain"] >= 3),
        np.minimum(rng.choice([3, 6, 9, 12], n), 30 - drop),
        0,
    )
    p["current"] = drop + p["insert"]
    p["convert"] = zero & (p["heeled"] >= 5) & ((p["weeks"] < 26) | p["after_change"])
    # Tighter with the knee straight (the two-joint calf muscle, Silfverskiold) goes with calf
    # tightness and a restriction felt at the back; else bent or the same (assumption).
    straight = 0.15 + 0.3 * (p["calf_tightness"] >= 3) + 0.2 * (p["felt"] == 1)
    p["knee"] = np.where(u(n) < straight, 0, np.where(u(n) < 0.6, 2, 1))
    # Locking or catching after injuries and surgery (a loose body, a cartilage lesion);
    # focal bone pain in regular runners with forefoot pain in low drops (Ridge 2013).
    injured = (p["injury"] >= 0) & (p["injury"] < 104)
    p["locks"] = u(n) < 0.004 + 0.03 * injured + 0.05 * (p["surgery"] >= 0)
    bone_stress = p["regular"] & (p["forefoot_pain"] >= 3) & (drop <= 6)
    p["focal"] = u(n) < 0.003 + 0.15 * bone_stress
    return p


def _outcome(rng: np.random.Generator, p: Arrays) -> tuple[np.ndarray, np.ndarray]:
    """The band (index) and drop that worked: a target drop, then band utilities plus noise."""
    n, cur, ktw, felt = len(p["age"]), p["current"], p["ktw"], p["felt"]
    ach, calf, plant = p["achilles_pain"], p["calf_tightness"], p["plantar_heel_pain"]
    fore, knee, pinch = p["forefoot_pain"], p["knee_pain"], p["anterior_ankle_pinch"]
    pain = np.max([p[k] for k in PAINS], axis=0)
    adapted = (pain < 3) & (ktw >= 10)
    w = np.where(adapted, np.where(p["weeks"] >= 26, 0.9, 0.75), 0.6)
    t = w * cur + (1 - w) * 8.0  # anchored on the current drop, pulled toward a moderate drop
    convert_pain = p["convert"] & (np.max([calf, ach, plant, pinch], axis=0) >= 3)
    t = np.where(convert_pain, np.clip(t, 5, 9), t)
    mild = 0.03 * (p["age"] - 40) + 0.02 * np.clip(p["mass"] - 75, -20, 40)
    t = t + mild + 0.25 * calf + 0.3 * plant + 0.5 * ach - 0.45 * fore - 0.3 * knee
    t = np.where(ach >= 3, np.maximum(t, 8.5 + 0.3 * (ach - 3)), t)
    front, back = np.isin(felt, (0, 2)) | (pinch >= 3), felt == 1
    t = np.where((ktw < 6) & back, t + 3, np.where((ktw < 10) & back, t + 1, t))
    t = np.where((ktw < 6) & front, np.clip(t, 7, 10), t)
    t = t + 0.5 * (p["knee"] == 0)  # a tight two-joint calf muscle is eased by some heel
    t = np.clip(t + rng.normal(0, 1.0, n), 0, 30)  # unobserved person-to-person variation
    # A quarter of those in pain have tried a higher heel: it helped when the drop that works
    # is well above theirs, made it worse when well below (the person's own response).
    tried = (pain >= 3) & (rng.random(n) < 0.25)
    effect = np.where(t > cur + 2, 0, np.where(t < cur - 2, 2, 1))  # helps, no change, worse
    noise = rng.random(n) < 0.2  # a fifth report no change whatever happened
    p["lift"] = np.where(tried, np.where(noise, 1, effect), 3)
    lo, hi = EDGES[:-1] - 0.5, EDGES[1:] - 0.5
    util = -0.25 * np.square(np.maximum(lo - t[:, None], 0) + np.maximum(t[:, None] - hi, 0))
    bonus = np.zeros((n, 5))
    cur_band = np.searchsorted(EDGES, cur, side="right") - 1
    bonus[np.arange(n), cur_band] += np.where(adapted, 0.6, 0.0)  # habit: what they know works
    bonus[:, 0] -= 1.0 * convert_pain + 1.5 * (ach >= 3) + 0.8 * (plant >= 3)
    bonus[:, 0] -= 0.6 * p["regular"] + 0.3 * np.clip((p["mass"] - 71.4) / 20, 0, 1)
    bonus[:, 1] += -0.6 * p["regular"] + 0.4 * p["occasional"] - 0.8 * (ach >= 3)
    bonus[:, 3] -= 0.8 * (fore >= 3) + 0.5 * (knee >= 3) + 1.5 * (front & (ktw < 6))
    bonus[:, 4] -= (
        1.5 * (fore >= 3) + 1.0 * (knee >= 3) + 2.5 * (front & (ktw < 6)) + 0.5 * (cur < 15)
    )
    band = np.argmax(util + bonus + rng.gumbel(0, 0.8, (n, 5)), axis=1)
    drop = np.clip(np.rint(t + rng.normal(0, 2.0, n)), EDGES[band], EDGES[band + 1] - 1)
    return band, drop.astype(np.int64)


def _observe(rng: np.random.Generator, p: Arrays) -> dict[str, pa.Array]:
    """What a shop records: rounding, measurement error and missingness, as arrow columns."""
    n, u = len(p["age"]), rng.random

    def num(v: np.ndarray, miss: np.ndarray | float, dec: bool = False) -> pa.Array:
        miss = u(n) < miss if isinstance(miss, float) else miss
        return pa.array(np.round(v, 1) if dec else np.rint(v).astype(np.int64), mask=miss)

    def cat(labels: tuple[str, ...], codes: np.ndarray, miss: np.ndarray | float) -> pa.Array:
        miss = u(n) < miss if isinstance(miss, float) else miss
        return pa.array(labels).take(pa.array(codes, mask=miss))

    def flag(v: np.ndarray, miss: float) -> pa.Array:
        return pa.array(v, mask=(u(n) < miss) & ~v)  # a true red flag is nearly always recorded

    c = {
        "person.age_years": num(p["age"], 0.05),
        "person.body_mass_kg": num(p["mass"], 0.15, True),
        "person.sex": cat(SEXES, p["sex"], 0.05),
        "footwear.current_drop_mm": num(p["drop"], 0.0),
    }
    c["footwear.heel_insert_mm"] = num(p["insert"], (p["insert"] == 0) & (u(n) < 0.9))
    c["footwear.current_stack_mm"] = num(p["stack"], 0.55)
    c["footwear.current_type"] = cat(SHOES, p["type"], 0.15)
    c["footwear.weeks_in_current_drop"] = num(p["weeks"], 0.2)
    c["footwear.previous_drop_mm"] = num(p["prev"], 0.55)
    c["footwear.years_in_heeled_shoes"] = num(p["heeled"], 0.4)
    c["footwear.high_heel_hours_per_week"] = num(p["heels_h"], 0.5)
    c["activity.primary"] = cat(PRIMARY, p["primary"], 0.08)
    c["activity.running_km_per_week"] = num(p["km"], 0.2, True)
    c["activity.running_years"] = num(p["run_years"], 0.3, True)
    c["activity.squats_in_lifting_shoes"] = pa.array(p["squats"], mask=u(n) < 0.4)
    for k in (*PAINS, "ankle_swelling", "numbness_tingling"):  # absent mostly means none
        c[f"symptoms.{k}"] = num(p[k], u(n) < np.where(p[k] > 0, 0.03, 0.55))
    c["symptoms.started_after_shoe_change"] = pa.array(p["after_change"], mask=u(n) < 0.5)
    c["symptoms.calf_swelling_one_side"] = flag(u(n) < 0.004, 0.55)
    c["symptoms.hot_red_joint_or_fever"] = flag(u(n) < 0.003, 0.55)
    c["symptoms.night_or_rest_pain"] = flag(u(n) < 0.02, 0.55)
    c["history.weeks_since_ankle_surgery"] = num(p["surgery"], p["surgery"] < 0)
    c["history.weeks_since_ankle_injury"] = num(p["injury"], p["injury"] < 0)
    c["history.ankle_sprains_past_2_years"] = num(p["sprains"], 0.4)
    c["history.suspected_achilles_rupture"] = flag(u(n) < 0.0015, 0.65)
    rupture = np.clip(np.rint(_logn(rng, n, 200, 1.0)), 1, 5200)
    c["history.weeks_since_achilles_rupture"] = num(rupture, u(n) >= 0.004)
    c["history.diabetes_or_neuropathy"] = flag(p["diabetes"], 0.5)
    c["history.previous_stress_fracture"] = flag(u(n) < 0.03 + 0.03 * p["regular"], 0.55)
    c["history.leg_length_difference_mm"] = num(np.abs(rng.normal(0, 5, n)), 0.92)
    walks = u(n) >= 0.0025
    c["history.can_walk_four_steps"] = pa.array(walks, mask=(u(n) < 0.5) & walks)
    measured, method, shoes = u(n) >= 0.25, u(n), u(n) < 0.2  # method: KTW 80%, lunge 15%, both 5%
    one_side = np.where(u(n) < 0.1, np.where(u(n) < 0.5, 1, 2), 0)  # 1: left only, 2: right only
    ktw, kept = {}, {}
    for side, s in (("left", 1), ("right", 2)):
        seen = measured & (one_side != 3 - s)
        ktw[side] = np.clip(p[f"ktw_{side[0]}"] + rng.normal(0, 0.6, n) + shoes, 0, 25)  # Powden
        kept[side] = ((method < 0.8) | (method >= 0.95)) & seen, (method >= 0.8) & seen
        c[f"mobility.knee_to_wall_cm.{side}"] = num(ktw[side], ~kept[side][0], True)
    for side in ("left", "right"):  # Bennell 1998: 1 cm = 3.6 degrees
        angle = np.clip(ktw[side] * 3.6 + rng.normal(0, 2, n), 0, 80)
        c[f"mobility.lunge_angle_deg.{side}"] = num(angle, ~kept[side][1])
    c["mobility.measured_in"] = cat(
        ("barefoot", "shoes"),
        shoes.astype(np.int64),
        ~measured | (u(n) < np.where(shoes, 0.1, 0.5)),
    )
    felt = np.where(u(n) < 0.12, 4, p["felt"])
    c["mobility.restriction_felt"] = cat(FELT, felt, u(n) < np.where(measured, 0.25, 0.85))
    heels_down = p["ktw"] + rng.normal(0, 1.5, n) >= 11.5
    c["mobility.deep_squat_heels_down"] = pa.array(heels_down, mask=u(n) < 0.65)
    knee = np.where(u(n) < 0.1, 3, p["knee"])
    c["mobility.tighter_with_knee"] = cat(KNEE, knee, u(n) < np.where(measured, 0.5, 0.9))
    lift = p["lift"]
    c["footwear.heel_lift_effect"] = cat(LIFT, lift, u(n) < np.where(lift == 3, 0.8, 0.15))
    c["symptoms.ankle_locks_or_catches"] = flag(p["locks"], 0.55)
    c["symptoms.focal_bone_pain"] = flag(p["focal"], 0.55)
    return c


def table(rows: int, seed: int) -> pa.Table:
    """The cohort as an arrow table: client_ref, the request fields, then the outcome."""
    if rows < 0:
        raise ValueError("rows must be >= 0")
    rng = np.random.default_rng(seed)
    people = _people(rng, rows)
    band, drop = _outcome(rng, people)
    refs = pc.utf8_lpad(
        pa.array(np.arange(1, rows + 1)).cast(pa.string()), max(7, len(str(rows))), "0"
    )
    observed = _observe(rng, people)
    cols = {"client_ref": pc.binary_join_element_wise("sim-", refs, "")}
    cols |= {f.path: observed[f.path] for f in FIELDS if f.path in observed}  # in field order
    cols["outcome_band"] = pa.array(BANDS).take(pa.array(band))
    cols["outcome_drop_mm"] = pa.array(drop)
    return pa.table(cols)


def requests_table(rows: int, seed: int) -> pa.Table:
    """The cohort without its outcome: a shop's file of requests."""
    return table(rows, seed).drop_columns(["outcome_band", "outcome_drop_mm"])


def simulate(rows: int, seed: int) -> pd.DataFrame:
    """`rows` simulated people with their outcome; nullable dtypes so absent stays absent."""
    types: dict[pa.DataType, pd.api.extensions.ExtensionDtype] = {pa.bool_(): pd.BooleanDtype()}
    types |= {pa.int64(): pd.Int64Dtype(), pa.float64(): pd.Float64Dtype()}
    return table(rows, seed).to_pandas(types_mapper=types.get)


def write_cohort(path: str | os.PathLike[str], rows: int, seed: int) -> None:
    """Write the cohort as CSV, atomically; the same seed gives a byte-identical file."""
    opts = pacsv.WriteOptions(batch_size=65536, quoting_style="none", quoting_header="none")
    with atomic_path(path) as tmp:
        pacsv.write_csv(table(rows, seed), tmp, opts)
