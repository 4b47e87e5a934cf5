"""The formula guard: cells a spreadsheet would run as formulas defused, data left as it is."""

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.batch.writer import defuse

TRIGGERS = "=+-@\t\r"


def defused(cells: list[str | None]) -> list[str | None]:
    return defuse(pa.array(cells, pa.string())).to_pylist()


@pytest.mark.parametrize(
    "cell",
    ["=1+1", "=HYPERLINK(\"http://x\")", "+1+1", "-1+2", "@SUM(1)", "\tTAB", "\r=1",
     "-A1", "+cmd|' /C calc'!A0", "=49 170 1234567", "+49 170 SUM(1)", "-", "+"],
)  # fmt: skip
def test_a_cell_a_spreadsheet_would_run_is_defused(cell):
    assert defused([cell]) == ["'" + cell]


@pytest.mark.parametrize(
    "cell",
    ["+49 170 1234567", "+49 (0)170 1234567", "+1-202-555-0143", "+44.20.7946.0958", "-5",
     "+3", "-1.5", "-2e3", "-7,5", "plain", "", "0049 170", "a=b"],
)  # fmt: skip
def test_numbers_phone_numbers_and_other_text_are_data(cell):
    assert defused([cell]) == [cell]


@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=30))
def test_the_guard_only_ever_adds_a_quote_to_cells_starting_like_a_formula(cells):
    out = defused(cells)
    for before, after in zip(cells, out, strict=True):
        assert after in (before, None if before is None else "'" + before)
        if after != before:
            assert before[0] in TRIGGERS


@given(
    st.sampled_from(TRIGGERS),
    st.text(max_size=8),
    st.sampled_from("ABCXYZabcxyz|!"),
    st.text(max_size=8),
)
def test_a_cell_starting_like_a_formula_with_a_letter_in_it_is_always_defused(a, b, letter, c):
    """A function, a cell or sheet reference and a command all need a letter (or |, !)."""
    cell = a + b + letter + c
    assert defused([cell]) == ["'" + cell]


@given(
    st.integers(1, 999),
    st.lists(st.tuples(st.sampled_from(["", " ", "-", ".", "/"]), st.integers(0, 99999)),
             max_size=4),
)  # fmt: skip
def test_a_phone_number_in_international_form_is_data(country, groups):
    cell = f"+{country}" + "".join(f"{sep}{digits}" for sep, digits in groups)
    assert defused([cell]) == [cell]
