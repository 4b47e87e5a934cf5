"""Separator and decimal mark: detected from the file as spreadsheets write it."""

import csv
import io

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.batch import dialect, headers
from service.batch.reader import CsvInput
from service.core.fields import FIELDS

NUMBERS = [f for f in FIELDS if f.kind == "number"]


def _number(value: float, mark: str) -> str:
    return f"{value:g}".replace(".", mark)


@st.composite
def files(draw):
    """A CSV as a spreadsheet writes it: some fields named by label or path (labels may hold
    commas), a free-text column, numbers with the mark, and the separator between them."""
    sep = draw(st.sampled_from(dialect.SEPARATORS))
    mark = draw(st.sampled_from(dialect.DECIMALS))
    chosen = draw(st.lists(st.sampled_from(NUMBERS), min_size=1, max_size=6, unique=True))
    names = [draw(st.sampled_from([f.path, f.label, headers.typed(f)])) for f in chosen]
    names.insert(draw(st.integers(0, len(names))), "Notes")
    rows = []
    for _ in range(draw(st.integers(1, 8))):
        values = [_number(draw(st.floats(f.lo, f.hi, allow_subnormal=False)), mark) for f in chosen]
        values.insert(names.index("Notes"), draw(st.text(';,\t" abc7.5', max_size=12)))
        rows.append(values)
    rows[0][-1] = ""  # an empty cell too
    with_fraction = "1.5".replace(".", mark)  # one number with a fraction, so the mark shows
    rows[-1][next(i for i, n in enumerate(names) if n != "Notes")] = with_fraction
    out = io.StringIO()
    csv.writer(out, delimiter=sep, lineterminator=draw(st.sampled_from(["\n", "\r\n"]))).writerows(
        [names, *rows]
    )
    return out.getvalue(), sep, mark, names


@settings(max_examples=150, deadline=None)
@given(files())
def test_the_separator_and_decimal_mark_a_spreadsheet_wrote_are_detected(tmp_path_factory, case):
    text, sep, mark, names = case
    path = tmp_path_factory.mktemp("sniff") / "in.csv"
    path.write_text(text, encoding="utf-8")
    source = CsvInput(path, 100)
    assert (source.sep, source.names) == (sep, names)
    first = source.first()
    numeric = [first.column(f"c{i}") for i, n in enumerate(names) if n != "Notes"]
    assert dialect.decimal_mark(numeric) == mark


@pytest.mark.parametrize(
    ("header", "sep"),
    [
        ("Knee to wall, left (cm);Knee to wall, right (cm)\n", ";"),
        ('"Knee to wall, left (cm)","Knee to wall, right (cm)"\n', ","),
        ("footwear.current_drop_mm\tAge\n", "\t"),
        ("footwear.current_drop_mm\n", ","),
        ("\n\nCurrent drop (mm);Notes, free text\n", ";"),
    ],
)
def test_the_header_line_says_the_separator(header, sep):
    assert dialect.separator(header.encode()) == sep


@pytest.mark.parametrize(
    ("cells", "mark"),
    [
        (["7,5", "8", ""], ","),
        (["7.5", "8", ""], "."),
        (["8", "12"], "."),  # whole numbers say nothing: the point
        (["7,5", "0,25", "7.5"], ","),  # the most cells win
        ([" -0,5 "], ","),
    ],
)
def test_the_numbers_say_the_decimal_mark(cells, mark):
    assert dialect.decimal_mark([pa.array(cells)]) == mark


def test_what_was_used_is_said_in_words():
    used = dialect.Dialect(";", ",", sep_given=False, decimal_given=True)
    assert used.describe() == "separator ';' (detected), decimal comma (given)"
    assert dialect.Dialect("\t").describe() == "separator tab (given), decimal point (given)"
