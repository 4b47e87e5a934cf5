"""Batch summaries are the single answers' summaries, worded once per distinct set of parts."""

import dataclasses

import numpy as np
import pytest

from service.batch.columns import summaries
from service.core.columns import from_requests
from service.core.combine import RuleBook, decide
from service.core.explain import render
from service.core.features import features
from service.core.schema import load_request

CLINICIAN_CASES = [
    {"symptoms": {"ankle_swelling": 3}, "mobility": {"restriction_felt": "front"}},
    {"symptoms": {"ankle_swelling": 3}, "mobility": {"restriction_felt": "front"},
     "history": {"leg_length_difference_mm": 12}},
    {"history": {"leg_length_difference_mm": 12}},
    {"symptoms": {"ankle_swelling": 3}, "mobility": {"restriction_felt": "front"},
     "history": {"can_walk_four_steps": False}},
    {"symptoms": {"forefoot_pain": 4}, "activity": {"running_km_per_week": 20}},
    {"symptoms": {"forefoot_pain": 4}},
    {},
]  # fmt: skip


def test_the_advice_to_see_a_clinician_ends_batch_summaries_as_single_ones(rules_only):
    """Each combination of clinician advice (none, one, two, silenced by a referral) is worded
    by the batch summaries exactly as by a single request."""
    requests = [load_request({"footwear": {"current_drop_mm": 10}, **r}) for r in CLINICIAN_CASES]
    d = rules_only.decide(from_requests(requests * 3))  # repeated rows share their parts
    single = [rules_only.recommend(r)["explanation"]["summary"] for r in requests]
    assert summaries(d, simulated=False).to_pylist() == single * 3
    assert sum("clinician" in s for s in single) == 5  # the referral's own words say it too


@pytest.mark.parametrize("simulated", [True, False])
def test_the_models_part_of_batch_summaries_matches_single_ones(rules, registry, simulated):
    """The same top band at the same probability, chosen by the model in one row and set by
    content-keep (HD050) in the others, worded by the batch summaries as by explain, for a
    model that learned from a simulation and for one that learned from outcomes."""
    bodies = [
        {"footwear": {"current_drop_mm": 10}, "symptoms": {"anterior_ankle_pinch": 3}},
        {"footwear": {"current_drop_mm": 10}, "mobility": {"knee_to_wall_cm": {"left": 12}}},
        {"footwear": {"current_drop_mm": 4}, "mobility": {"knee_to_wall_cm": {"left": 12}}},
    ]
    cols = from_requests([load_request(b) for b in bodies])
    probs = np.full((3, 5), 0.1)
    probs[:, 2] = 0.6  # moderate for everyone
    d = decide(features(cols)[0], RuleBook(rules), probs)
    champion = registry.load_champion()
    said = {**champion.metadata, "trained_on": "simulated" if simulated else "outcomes"}
    model = dataclasses.replace(champion, metadata=said)
    single = [answer["explanation"]["summary"] for answer in render(d, model)]
    assert summaries(d, simulated=simulated).to_pylist() == single
    assert "the model's best estimate for people like you" in single[0]
    assert ("learned so far from simulated people" in single[0]) is simulated
    assert "Your shoes suit you" in single[1] and "Your shoes suit you" in single[2]
    assert "3-6 mm (low)" in single[2]
