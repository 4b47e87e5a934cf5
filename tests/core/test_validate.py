"""The columnar validator agrees with the JSON schema, cell by cell and row by row."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service.core.columns import from_requests
from service.core.fields import BY_PATH, FIELDS
from service.core.validate import check_frame
from tests.strategies import get, invalid_cells, requests

PATHS = [f.path for f in FIELDS]
SETTINGS = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)
BOOL_SPELLINGS = {True: ("true", "1", "yes"), False: ("false", "0", "no")}


def spell_bool(value: bool, data: st.DataObject) -> str:
    word = data.draw(st.sampled_from(BOOL_SPELLINGS[value]))
    flips = data.draw(st.lists(st.booleans(), min_size=len(word), max_size=len(word)))
    return "".join(c.upper() if up else c for c, up in zip(word, flips, strict=True))


def cell(path: str, value, data: st.DataObject) -> str:
    """How a CSV file would spell the value: empty when absent, numbers as in JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return spell_bool(value, data)
    if isinstance(value, float):
        return data.draw(st.sampled_from((repr(value), f"{value!r}".upper())))
    return str(value)


def text_frame(bodies, data: st.DataObject) -> pd.DataFrame:
    rows = [{p: cell(p, get(body, p), data) for p in PATHS} for body in bodies]
    return pd.DataFrame(rows, columns=PATHS, dtype=str)


def assert_columns_equal(got, expected, rows=None):
    assert set(got) == set(expected)
    for path, want in expected.items():
        have = got[path] if rows is None else got[path][rows]
        if want.dtype.kind == "f":
            np.testing.assert_array_equal(have.astype(np.float64), want, err_msg=path)
        else:
            assert have.tolist() == want.tolist(), path


@SETTINGS
@given(bodies=st.lists(requests(), min_size=1, max_size=4), data=st.data())
def test_valid_requests_as_text_cells_pass_and_give_the_schemas_columns(bodies, data):
    checked = check_frame(text_frame(bodies, data))
    assert checked.errors == {}
    assert checked.ok.tolist() == [True] * len(bodies)
    assert_columns_equal(checked.columns, from_requests(bodies))


@SETTINGS
@given(
    bodies=st.lists(requests(), min_size=2, max_size=4),
    field=st.sampled_from(FIELDS),
    data=st.data(),
)
def test_a_planted_bad_cell_names_its_column_and_leaves_other_rows_alone(bodies, field, data):
    frame = text_frame(bodies, data)
    row = data.draw(st.integers(0, len(bodies) - 1))
    frame.loc[row, field.path] = data.draw(invalid_cells(field))
    checked = check_frame(frame)
    assert list(checked.errors) == [row]
    assert list(checked.errors[row]) == [field.path]
    assert checked.errors[row][field.path]
    others = [i for i in range(len(bodies)) if i != row]
    assert checked.ok.tolist() == [i != row for i in range(len(bodies))]
    assert_columns_equal(checked.columns, from_requests([bodies[i] for i in others]), others)


@pytest.mark.parametrize(
    ("path", "text", "words"),
    [
        ("footwear.current_drop_mm", "abc", ("number", "0", "30")),
        ("footwear.current_drop_mm", "31", ("number", "0", "30")),
        ("footwear.current_drop_mm", "-0.5", ("number", "0", "30")),
        ("person.age_years", "7", ("8", "100")),
        ("person.age_years", "100.5", ("8", "100")),
        ("symptoms.achilles_pain", "2.5", ("whole",)),
        ("symptoms.knee_pain", "11", ("whole", "10")),
        ("history.ankle_sprains_past_2_years", "1.5", ("whole",)),
        ("symptoms.started_after_shoe_change", "maybe", ("true", "false")),
        ("history.can_walk_four_steps", "2", ("true", "false")),
        ("person.sex", "robot", ("female", "male")),
        ("activity.primary", "Running", ("running",)),
        ("client_ref", "r" * 65, ("64",)),
    ],
)
def test_a_bad_cell_gets_a_message_that_says_what_the_column_accepts(path, text, words):
    frame = pd.DataFrame({"footwear.current_drop_mm": ["8", "8"]}, dtype=str)
    frame[path] = ["8" if path == "footwear.current_drop_mm" else "", text]
    checked = check_frame(frame)
    assert list(checked.errors) == [1]
    (message,) = checked.errors[1][path]
    assert all(w in message for w in words), message


def test_a_missing_current_drop_cell_is_required_in_its_row_only():
    frame = pd.DataFrame({"footwear.current_drop_mm": ["8", "", "12.5"]}, dtype=str)
    checked = check_frame(frame)
    assert checked.errors == {1: {"footwear.current_drop_mm": ["is required"]}}
    assert checked.ok.tolist() == [True, False, True]
    np.testing.assert_array_equal(checked.columns["footwear.current_drop_mm"][[0, 2]], [8, 12.5])


def test_a_frame_without_a_current_drop_column_fails_every_row():
    checked = check_frame(pd.DataFrame({"person.age_years": ["40", "50"]}, dtype=str))
    assert set(checked.errors) == {0, 1}
    assert all("footwear.current_drop_mm" in e for e in checked.errors.values())


def test_unknown_columns_are_ignored_by_the_validator():
    frame = pd.DataFrame({"footwear.current_drop_mm": ["8"], "shop.till": ["x"]}, dtype=str)
    checked = check_frame(frame)
    assert checked.errors == {}
    assert "shop.till" not in checked.columns


def test_cells_with_surrounding_spaces_read_like_the_trimmed_value():
    frame = pd.DataFrame(
        {"footwear.current_drop_mm": [" 8 "], "symptoms.night_or_rest_pain": [" No "]}, dtype=str
    )
    checked = check_frame(frame)
    assert checked.errors == {}
    assert checked.columns["footwear.current_drop_mm"].tolist() == [8.0]
    assert checked.columns["symptoms.night_or_rest_pain"].tolist() == [0.0]


def test_an_absent_enum_with_a_default_takes_the_default_like_the_schema_path():
    checked = check_frame(pd.DataFrame({"footwear.current_drop_mm": ["8"]}, dtype=str))
    field = BY_PATH["mobility.measured_in"]
    assert checked.columns[field.path].tolist() == [field.codes[field.default]]
    assert field.option(checked.columns[field.path][0]) == "barefoot"
    expected = from_requests([{"footwear": {"current_drop_mm": 8}}])
    assert_columns_equal(checked.columns, expected)


def typed_frame(bodies) -> pd.DataFrame:
    """The bodies as a typed frame: floats with NaN, nullable ints, nullable booleans, strings."""
    columns = {}
    for f in FIELDS:
        values = [get(body, f.path) for body in bodies]
        if f.kind == "number":
            columns[f.path] = pd.array([np.nan if v is None else float(v) for v in values],
                                       dtype="float64")  # fmt: skip
        elif f.kind in ("count", "severity"):
            columns[f.path] = pd.array(values, dtype="Int64")
        elif f.kind == "bool":
            columns[f.path] = pd.array(values, dtype="boolean")
        else:
            columns[f.path] = pd.array(values, dtype="string")
    return pd.DataFrame(columns)


@settings(max_examples=30, deadline=None, database=None)
@given(bodies=st.lists(requests(), min_size=1, max_size=5))
def test_typed_columns_as_from_parquet_pass_and_give_the_schemas_columns(bodies, tmp_path_factory):
    path = tmp_path_factory.mktemp("parquet") / "records.parquet"
    typed_frame(bodies).to_parquet(path)
    frame = pd.read_parquet(path)
    checked = check_frame(frame)
    assert checked.errors == {}
    assert_columns_equal(checked.columns, from_requests(bodies))


def test_typed_columns_refuse_out_of_range_numbers_and_bools_for_numbers():
    frame = pd.DataFrame(
        {
            "footwear.current_drop_mm": pd.array([8.0, 31.0, 8.0]),
            "symptoms.achilles_pain": pd.array([2, 3, 12], dtype="Int64"),
            "person.age_years": pd.array([True, False, True]),
        }
    )
    checked = check_frame(frame)
    assert set(checked.errors) == {0, 1, 2}
    assert set(checked.errors[0]) == {"person.age_years"}
    assert set(checked.errors[1]) == {"footwear.current_drop_mm", "person.age_years"}
    assert set(checked.errors[2]) == {"symptoms.achilles_pain", "person.age_years"}


def test_typed_integer_flags_read_as_booleans():
    frame = pd.DataFrame(
        {
            "footwear.current_drop_mm": pd.array([8, 8, 8], dtype="int64"),
            "history.diabetes_or_neuropathy": pd.array([1, 0, None], dtype="Int64"),
        }
    )
    checked = check_frame(frame)
    assert checked.errors == {}
    np.testing.assert_array_equal(checked.columns["history.diabetes_or_neuropathy"], [1, 0, np.nan])
    np.testing.assert_array_equal(checked.columns["footwear.current_drop_mm"], [8, 8, 8])
