"""Requests as columns: a dict of numpy arrays, n rows, one per field path.

Numbers, severities and booleans are float64 with NaN for absent (booleans 1.0/0.0); enums are
fixed-width strings with "" for absent; `client_ref` is an object array with None for absent.
One request is the n = 1 case, so every later stage works on whole columns.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.fields import FIELDS, Field

Columns = dict[str, np.ndarray]


NUMERIC = tuple(f.path for f in FIELDS if f.kind not in ("enum", "text"))
ENUMS = tuple(f for f in FIELDS if f.kind == "enum")


def _slots() -> dict[str, Any]:
    """The field tree with each leaf's position in a flat row: numbers, then enums, then text."""
    order = [*NUMERIC, *(f.path for f in ENUMS), "client_ref"]
    root: dict[str, Any] = {}
    for position, path in enumerate(order):
        *groups, leaf = path.split(".")
        node = root
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = position
    return root


_SLOTS = _slots()
_BLANK = [np.nan] * len(NUMERIC) + [f.default or "" for f in ENUMS] + [None]
_ENUM_END = len(NUMERIC) + len(ENUMS)


def _fill(row: list[Any], node: Mapping[str, Any], slots: Mapping[str, Any]) -> None:
    """Write the values a (nested) request gives into its flat row; only given fields cost."""
    for key, value in node.items():
        slot = slots.get(key)
        if type(slot) is dict:
            if isinstance(value, Mapping):
                _fill(row, value, slot)
        elif slot is not None and value is not None and value != "":
            row[slot] = value


def from_requests(requests: Sequence[Mapping[str, Any]]) -> Columns:
    """Build columns from validated (nested) request dicts: one array build for all numbers."""
    rows = []
    for request in requests:
        row = _BLANK.copy()
        _fill(row, request, _SLOTS)
        rows.append(row)
    n, width = len(rows), len(NUMERIC)
    numbers = np.array([row[:width] for row in rows], dtype=np.float64).reshape(n, width)
    cols: Columns = dict(zip(NUMERIC, numbers.T.copy(), strict=True))  # one contiguous row each
    enums = np.array([row[width:_ENUM_END] for row in rows], dtype="<U16").reshape(n, len(ENUMS))
    cols.update(zip((f.path for f in ENUMS), enums.T.copy(), strict=True))
    cols["client_ref"] = np.array([row[-1] for row in rows], dtype=object)
    return cols


def absent(field: Field, n: int) -> np.ndarray:
    """A column of n absent values for `field` (its default, if it has one)."""
    if field.kind == "enum":
        return np.full(n, field.default or "", dtype="<U16")
    if field.kind == "text":
        return np.full(n, None, dtype=object)
    return np.full(n, np.nan)


def empty(n: int) -> Columns:
    """Columns of n rows with every field absent."""
    return {field.path: absent(field, n) for field in FIELDS}
