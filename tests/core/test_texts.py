"""Texts worded per distinct values (rows share a text only when its inputs are equal), and the
numbers in them."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from service.core.texts import Amount, distinct

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


@given(st.floats(0, 1000, allow_nan=False), st.sampled_from(["weeks", "years", "hours"]))
def test_an_amount_with_a_unit_is_singular_exactly_when_it_reads_1(value, unit):
    said = format(Amount(value), f".0f {unit}")
    number, word = said.split(" ")
    assert number == format(value, ".0f")
    assert word == (unit[:-1] if number == "1" else unit)
    assert format(Amount(value), "g") == format(value, "g")  # without a unit, a float's format
