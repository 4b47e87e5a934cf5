"""The grouping under the batch summaries: rows share a part only when its inputs are equal."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.core.columns import from_requests
from service.core.combine import RuleBook, decide
from service.core.explain import render
from service.core.features import features
from service.core.schema import load_request
from service.core.summaries import distinct, summaries

FLOATS = st.sampled_from([0.0, -0.0, 1.5, 1.5000000000000002, np.nan, -np.inf, 7.0, 1e300])


def _keys(n: int) -> st.SearchStrategy[list[np.ndarray]]:
    key = st.one_of(
        hnp.arrays(np.int8, n, elements=st.integers(-3, 3)),
        hnp.arrays(np.int64, n, elements=st.sampled_from([0, 1, -(2**62), 2**62])),
        hnp.arrays(np.bool_, n),
        hnp.arrays(np.float64, n, elements=FLOATS),
        hnp.arrays("<U8", n, elements=st.sampled_from(["", "shoes", "barefoot"])),
    )
    return st.lists(key, min_size=1, max_size=6)


def _bits(key: np.ndarray) -> list[object]:
    return key.view(np.int64).tolist() if key.dtype.kind == "f" else key.tolist()


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 40).flatmap(_keys))
def test_rows_share_a_group_exactly_when_every_key_is_equal_floats_by_their_bits(keys):
    first, which = distinct(*keys)
    rows = list(zip(*(_bits(k) for k in keys), strict=True))
    assert sorted(set(which.tolist())) == list(range(len(first)))
    for i, row in enumerate(rows):
        assert rows[first[which[i]]] == row
        for j, other in enumerate(rows):
            assert (which[i] == which[j]) == (row == other)


def test_keys_with_more_combinations_than_an_integer_holds_still_group_exactly():
    rng = np.random.default_rng(0)
    keys = [rng.integers(0, 2**40, 1000) for _ in range(8)]  # 1000^8 combinations > 2^62
    for key in keys:
        key[500:] = key[:500]  # every row has a twin
    first, which = distinct(*keys)
    assert len(first) == 500
    assert np.array_equal(which[:500], which[500:])


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
    d, _ = rules_only.decide(from_requests(requests * 3))  # repeated rows share their parts
    single = [rules_only.recommend(r)["explanation"]["summary"] for r in requests]
    assert summaries(d).to_pylist() == single * 3
    assert sum("clinician" in s for s in single) == 5  # the referral's own words say it too


def test_the_classifier_part_of_batch_summaries_matches_single_ones(rules):
    """The same top band at the same probability, chosen by the classifier in one row and set by
    content-keep (HD050) in the other, worded by the batch summaries as by explain."""
    bodies = [
        {"footwear": {"current_drop_mm": 10}},
        {"footwear": {"current_drop_mm": 10}, "mobility": {"knee_to_wall_cm": {"left": 12}}},
        {"footwear": {"current_drop_mm": 4}, "mobility": {"knee_to_wall_cm": {"left": 12}}},
    ]
    cols = from_requests([load_request(b) for b in bodies])
    probs = np.full((3, 5), 0.1)
    probs[:, 2] = 0.6  # moderate for everyone
    d = decide(features(cols)[0], RuleBook(rules), probs)
    single = [answer["explanation"]["summary"] for answer in render(d, None, None, None)]
    assert summaries(d).to_pylist() == single
    assert [s.count("classifier agrees") for s in single] == [0, 1, 0]
    assert "the rules above moved the answer to low" in single[2]
