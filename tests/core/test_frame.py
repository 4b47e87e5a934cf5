"""Frame: named rows of one matrix, arrays of its own taking precedence, rows taken at once."""

import numpy as np
import pytest

from service.core.columns import FIELD_ROWS, Frame, Layout, from_requests
from service.core.features import CONTEXT_ROWS, features


def frame():
    rows = np.arange(6.0).reshape(3, 2)
    return Frame(rows, Layout(("a", "b", "a2")), {"t": np.array([9.0, 8.0])})


def test_rows_are_read_by_name_and_own_arrays_beside_them():
    f = frame()
    assert f["b"].tolist() == [2.0, 3.0]
    assert f["t"].tolist() == [9.0, 8.0]
    assert list(f) == ["a", "b", "a2", "t"] and len(f) == 4
    assert "a" in f and "t" in f and "zz" not in f
    with pytest.raises(KeyError):
        f["zz"]


def test_a_name_given_twice_in_a_layout_is_its_later_row():
    layout = Layout(("x", "y", "x"))
    assert layout.row == {"x": 2, "y": 1}


def test_an_array_of_its_own_replaces_a_row_and_take_then_declines():
    f = frame()
    assert f.take(("a2", "a")).tolist() == [[4.0, 5.0], [0.0, 1.0]]
    f["a"] = np.array([7.0, 7.0])
    assert f["a"].tolist() == [7.0, 7.0]
    assert f.take(("a2", "a")) is None  # the matrix no longer holds what "a" is
    assert f.take(("zz",)) is None
    del f["a"]
    assert f["a"].tolist() == [0.0, 1.0]


def test_a_copy_shares_the_rows_but_not_the_added_arrays():
    f = frame()
    g = f.copy()
    g["u"] = np.zeros(2)
    assert "u" in g and "u" not in f


def test_the_context_of_request_columns_equals_that_of_the_same_columns_as_a_dict():
    bodies = [{"footwear": {"current_drop_mm": d}, "symptoms": {"calf_tightness": s}}
              for d, s in ((0, 4), (8, 0), (12, 7))]  # fmt: skip
    cols = from_requests(bodies)
    assert isinstance(cols, Frame) and cols.layout is FIELD_ROWS
    from_frame, X1 = features(cols)
    from_dict, X2 = features(dict(cols))
    assert from_frame.layout is CONTEXT_ROWS
    np.testing.assert_array_equal(X1, X2)
    for name in CONTEXT_ROWS.row:
        np.testing.assert_array_equal(from_frame[name], from_dict[name])
