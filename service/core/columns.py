"""Requests as columns: one numpy array of n rows per field path.

Every field but the free text is float64 with NaN for absent: numbers and severities as given,
booleans 1.0/0.0, enums as their option's index in the field's choices (`Field.codes`; an absent
enum with a default is its default's code), so later stages compare numbers, never strings.
`client_ref` is an object array with None for absent. One request is the n = 1 case: every
later stage works on whole columns.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.core.fields import BY_PATH, FIELDS, Field

Columns = Mapping[str, np.ndarray]
NUMERIC = tuple(f.path for f in FIELDS if f.kind != "text")


def _slots() -> dict[str, Any]:
    """The field tree with each leaf's position in a flat row (the numeric fields, then the
    text); an enum's leaf is (position, its options' codes)."""
    root: dict[str, Any] = {}
    for position, path in enumerate((*NUMERIC, "client_ref")):
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
    """Write the values a (nested, validated) request gives into its flat row."""
    for key, value in node.items():
        slot = slots.get(key)
        if isinstance(slot, int):
            if value is not None and value != "":
                row[slot] = value
        elif isinstance(slot, dict):
            if isinstance(value, Mapping):
                _fill(row, value, slot)
        elif slot is not None and value is not None:
            position, codes = slot
            row[position] = codes.get(value, row[position])  # an option's code, or the blank


def from_requests(requests: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
    """Columns of validated (nested) request dicts, built from one matrix."""
    rows, refs = [], []
    for request in requests:
        row = _BLANK.copy()
        _fill(row, request, _SLOTS)
        refs.append(row.pop())
        rows.append(row)
    matrix = np.array(rows, dtype=np.float64).reshape(len(rows), len(NUMERIC)).T.copy()
    columns = dict(zip(NUMERIC, matrix, strict=True))
    columns["client_ref"] = np.array(refs, dtype=object)
    return columns


def nest(record: Mapping[str, Any]) -> dict[str, Any]:
    """A flat record keyed by field path as a nested request; absent (None) values left out."""
    request: dict[str, Any] = {}
    for path, value in record.items():
        if value is None:
            continue
        node = request
        *groups, leaf = path.split(".")
        for group in groups:
            node = node.setdefault(group, {})
        node[leaf] = value
    return request


def absent(field: Field, n: int) -> np.ndarray:
    """A column of n absent values for `field` (its default, if it has one)."""
    if field.kind == "enum":
        return np.full(n, field.blank)
    if field.kind == "text":
        return np.full(n, None, dtype=object)
    return np.full(n, np.nan)


def empty(n: int) -> dict[str, np.ndarray]:
    """Columns of n rows with every field absent."""
    return {field.path: absent(field, n) for field in FIELDS}
