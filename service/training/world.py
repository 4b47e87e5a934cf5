"""A simulated world whose truth differs from the cohort's: the test bed that shows learning
from outcomes works (scripts/outcomes_demo.py, tests/training/test_world.py).

Its people are the cohort's (docs/cohort.md), and so is the drop that works for them, except
for one thing the simulator got wrong: adults with Achilles or plantar heel pain of 3 or more
do best SHIFT_MM higher than the cohort says, wherever the rules allow that drop (the rules
decide the rest: no model could learn a truth they forbid, so a shift there would lower both
models' scores alike and show nothing).

Simulated shops ask the API, their customers wear a drop near the recommendation (shoes come in
steps: within +-SPREAD_MM of the range's middle) and report after WEEKS weeks: better within
2 mm of their true drop, the same within 4 mm, worse beyond, their symptoms easing or rising
accordingly.
"""

from typing import Any

import numpy as np

from service.core.columns import from_requests, nest
from service.core.recommend import Recommender
from service.training.cohort import table

SHIFT_MM = 3
SPREAD_MM = 4
WEEKS = 6


def differs(request: dict[str, Any]) -> bool:
    """Whether this world's truth may differ from the cohort's for a person."""
    symptoms = request.get("symptoms") or {}
    if ((request.get("person") or {}).get("age_years") or 18) < 18:
        return False  # children's heel pain is another matter (the rules' HD047)
    return any((symptoms.get(name) or 0) >= 3 for name in ("achilles_pain", "plantar_heel_pain"))


def people(rows: int, seed: int) -> tuple[list[dict[str, Any]], np.ndarray]:
    """`rows` requests of the world's people and the effective drop that truly works for each."""
    cohort = table(rows, seed)
    drops = cohort.column("outcome_drop_mm").to_numpy().astype(np.float64)
    records = cohort.drop_columns(["outcome_band", "outcome_drop_mm"]).to_pylist()
    requests = [nest(record) for record in records]
    group = np.array([differs(request) for request in requests])
    rules = Recommender(None, None).decide(from_requests(requests))
    shifted = drops + SHIFT_MM
    allowed = (rules.allowed_min <= shifted) & (shifted <= rules.allowed_max)
    return requests, np.where(group & allowed, shifted, drops)


def worn(answer: dict[str, Any], rng: np.random.Generator) -> int:
    """The effective drop a customer wears after a recommendation."""
    span = answer["recommendation"]["drop_mm"]
    middle = (span["min"] + span["max"]) / 2
    return int(np.clip(round(middle + rng.uniform(-SPREAD_MM, SPREAD_MM)), 0, 30))


def follow_up(request: dict[str, Any], request_id: str, drop: int, truth: float) -> dict[str, Any]:
    """The outcome report of someone who wore `drop` when `truth` works for them."""
    miss = abs(drop - truth)
    outcome = "better" if miss <= 2 else "same" if miss <= 4 else "worse"
    change = {"better": -2, "same": 0, "worse": 2}[outcome]
    symptoms = request.get("symptoms") or {}
    after = {
        name: int(np.clip((symptoms.get(name) or 0) + change, 0, 10))
        for name in ("calf_tightness", "achilles_pain", "plantar_heel_pain")
    }
    return {"request_id": request_id, "weeks_worn": WEEKS, "drop_mm_worn": drop,
            "outcome": outcome, "symptoms_after": after}  # fmt: skip


def contains(answers: list[dict[str, Any]], truth: np.ndarray) -> float:
    """The share of answers whose range holds the drop that truly works."""
    spans = [a["recommendation"]["drop_mm"] for a in answers]
    return float(np.mean([s["min"] <= t <= s["max"] for s, t in zip(spans, truth, strict=True)]))
