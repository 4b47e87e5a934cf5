"""Requests as columns: a dict of numpy arrays, n rows, one per field path.

Every field but the free text is float64 with NaN for absent: numbers and severities as given,
booleans 1.0/0.0, enums as their option's index in the field's choices (`Field.codes`; an absent
enum with a default is its default's code), so all later work compares numbers, never strings.
`client_ref` is an object array with None for absent.
One request is the n = 1 case, so every later stage works on whole columns.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.fields import BY_PATH, FIELDS, Field

Columns = dict[str, np.ndarray]


NUMERIC = tuple(f.path for f in FIELDS if f.kind != "text")  # all float64, enums as codes


def _slots() -> dict[str, Any]:
    """The field tree with each leaf's position in a flat row (the float fields, then the text);
    an enum's leaf is (position, its options' codes)."""
    order = [*NUMERIC, "client_ref"]
    root: dict[str, Any] = {}
    for position, path in enumerate(order):
        *groups, leaf = path.split(".")
        node = root
        for group in groups:
            node = node.setdefault(group, {})
        field = BY_PATH[path]
        node[leaf] = (position, field.codes) if field.kind == "enum" else position
    return root


_SLOTS = _slots()
_BLANK: list[Any] = [BY_PATH[p].blank if BY_PATH[p].kind == "enum" else np.nan for p in NUMERIC]
_BLANK.append(None)


def _fill(row: list[Any], node: Mapping[str, Any], slots: Mapping[str, Any]) -> None:
    """Write the values a (nested) request gives into its flat row; only given fields cost."""
    for key, value in node.items():
        slot: Any = slots.get(key)
        kind = type(slot)
        if kind is int:
            if value is not None and value != "":
                row[slot] = value
        elif kind is dict:
            if type(value) is dict or isinstance(value, Mapping):  # (an ABC check is slow)
                _fill(row, value, slot)
        elif kind is tuple and value is not None:
            position, codes = slot
            row[position] = codes.get(value, row[position])  # an option's code, or the blank


def from_requests(requests: Sequence[Mapping[str, Any]]) -> Columns:
    """Build columns from validated (nested) request dicts: one array build for all of them."""
    rows, refs = [], []
    for request in requests:
        row = _BLANK.copy()
        _fill(row, request, _SLOTS)
        refs.append(row.pop())
        rows.append(row)
    numbers = np.array(rows, dtype=np.float64).reshape(len(rows), len(NUMERIC))
    cols: Columns = dict(zip(NUMERIC, numbers.T.copy(), strict=True))  # one contiguous row each
    cols["client_ref"] = np.array(refs, dtype=object)
    return cols


def absent(field: Field, n: int) -> np.ndarray:
    """A column of n absent values for `field` (its default, if it has one)."""
    if field.kind == "enum":
        return np.full(n, field.blank)
    if field.kind == "text":
        return np.full(n, None, dtype=object)
    return np.full(n, np.nan)


def empty(n: int) -> Columns:
    """Columns of n rows with every field absent."""
    return {field.path: absent(field, n) for field in FIELDS}
