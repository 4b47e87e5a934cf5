"""Columnar validation of tabular records (CSV, Parquet, labelled training data).

Built from the same field table as the JSON schemas: ranges and enums are checked on whole
columns with pyarrow compute and numpy (a million rows cannot afford Python per cell), and
errors are gathered per row; a bad row never stops the others.
"""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from service.core.columns import absent
from service.core.errors import InvalidInput
from service.core.fields import EFFECTIVE_DROP_TOO_HIGH, FIELDS, MAX_EFFECTIVE_DROP, Field

if TYPE_CHECKING:  # frames arrive already built; the batch door never needs pandas loaded
    import pandas as pd

TRUE = ("true", "1", "yes")
FALSE = ("false", "0", "no")
# A number as JSON writes one (and the forms a spreadsheet adds: +1, .5, 1., 007). Arrow's
# parser also takes inf and nan, which fail the finite check, so both paths agree on every cell.
NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"
Arrow: TypeAlias = pa.Array | pa.ChunkedArray


@dataclass
class Checked:
    """Validated columns for every row, and the messages of the rows that failed."""

    columns: dict[str, np.ndarray]
    errors: dict[int, dict[str, list[str]]]

    @property
    def ok(self) -> np.ndarray:
        mask = np.ones(len(self.columns["footwear.current_drop_mm"]), dtype=bool)
        mask[list(self.errors)] = False
        return mask


def _numpy(values: Arrow) -> np.ndarray:
    return values.to_numpy(zero_copy_only=False)


def _strings(values: pa.Array, trim: bool) -> pa.Array:
    """Cells as text, '' for absent; trimmed only when asked, as trimming copies every cell."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        try:
            values = pc.cast(values, pa.string())
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            raise InvalidInput(f"a column of type {values.type} cannot be read as text") from None
    values = pc.fill_null(values, "") if values.null_count else values
    return pc.utf8_trim_whitespace(values) if trim else values


def _given(text: pa.Array) -> np.ndarray:
    return _numpy(pc.greater(pc.binary_length(text), 0))


def _parse(text: pa.Array, cells: np.ndarray) -> np.ndarray:
    """The chosen cells as float64, NaN elsewhere; ArrowInvalid if one is not a number."""
    chosen = pc.if_else(pa.array(cells), text, pa.scalar(None, text.type))
    return _numpy(pc.cast(chosen, pa.float64()))


def _number(field: Field, raw: pa.Array) -> tuple[np.ndarray, np.ndarray, str]:
    whole = field.kind in ("count", "severity")
    message = (
        f"must be {'a whole number' if whole else 'a number'} from {field.lo:g} to {field.hi:g}"
    )
    unparsed = np.zeros(len(raw), dtype=bool)
    if pa.types.is_boolean(raw.type):
        return np.full(len(raw), np.nan), ~_numpy(pc.is_null(raw)), message
    if pa.types.is_integer(raw.type) or pa.types.is_floating(raw.type):
        values = _numpy(pc.cast(raw, pa.float64()))
        given = ~np.isnan(values)
    else:
        text = _strings(raw, trim=False)
        given = _given(text)
        try:  # the common case: every given cell is a bare number
            values = _parse(text, given)
        except pa.ArrowInvalid:  # spaces or bad cells: trim, and parse only the numbers
            text = _strings(raw, trim=True)
            given = _given(text)
            number = _numpy(pc.match_substring_regex(text, NUMBER))
            unparsed = given & ~number
            values = _parse(text, given & number)
    with np.errstate(invalid="ignore"):
        bad = unparsed | (
            given & (~np.isfinite(values) | (values < field.lo) | (values > field.hi))
        )
        if whole:
            bad |= given & np.isfinite(values) & (values != np.round(values))
    return np.where(bad, np.nan, values), bad, message


def _lookup(raw: pa.Array, choices: tuple[str, ...], lower: bool) -> tuple[np.ndarray, np.ndarray]:
    """Each cell's index in `choices` (-1 if none) and whether a given cell matched none."""
    value_set = pa.array(choices)
    text = _strings(raw, trim=False)
    found = _numpy(pc.fill_null(pc.index_in(text, value_set=value_set), -1))
    given = _given(text)
    if (given & (found < 0)).any():  # rare: spaces, capitals or bad cells
        text = _strings(raw, trim=True)
        text = pc.utf8_lower(text) if lower else text
        found = _numpy(pc.fill_null(pc.index_in(text, value_set=value_set), -1))
        given = _given(text)
    return found, given & (found < 0)


def _bool(field: Field, raw: pa.Array) -> tuple[np.ndarray, np.ndarray, str]:
    message = "must be true or false (also 1/0, yes/no)"
    if pa.types.is_boolean(raw.type):
        return _numpy(pc.cast(raw, pa.float64())), np.zeros(len(raw), dtype=bool), message
    found, bad = _lookup(raw, TRUE + FALSE, lower=True)
    return np.where(found < 0, np.nan, (found < len(TRUE)).astype(np.float64)), bad, message


def _enum(field: Field, raw: pa.Array) -> tuple[np.ndarray, np.ndarray, str]:
    found, bad = _lookup(raw, field.choices, lower=False)
    values = np.where(found >= 0, found, np.where(bad, np.nan, field.blank))  # codes (columns.py)
    return values, bad, f"must be one of {', '.join(field.choices)}"


def _text(field: Field, raw: pa.Array) -> tuple[np.ndarray, np.ndarray, str]:
    text = _strings(raw, trim=True)
    bad = _numpy(pc.greater(pc.utf8_length(text), int(field.hi)))
    values = _numpy(text).astype(object)
    values[values == ""] = None
    return values, bad, f"must be at most {field.hi:g} characters"


_CHECKS = {"bool": _bool, "enum": _enum, "text": _text}


def check_columns(columns: Mapping[str, Arrow], n: int) -> Checked:
    """Validate n rows of arrow columns named by field path; a missing column is absent."""
    cols: dict[str, np.ndarray] = {}
    errors: dict[int, dict[str, list[str]]] = {}
    for field in FIELDS:
        if field.path not in columns:
            cols[field.path] = absent(field, n)
            bad, message = np.zeros(n, bool), ""
        else:
            raw = columns[field.path]
            raw = raw.combine_chunks() if isinstance(raw, pa.ChunkedArray) else raw
            check = _CHECKS.get(field.kind, _number)
            cols[field.path], bad, message = check(field, raw)
        if field.required:
            missing = np.isnan(cols[field.path]) & ~bad
            for row in np.flatnonzero(missing):
                errors.setdefault(int(row), {}).setdefault(field.path, []).append("is required")
        for row in np.flatnonzero(bad):
            errors.setdefault(int(row), {}).setdefault(field.path, []).append(message)
    insert = np.nan_to_num(cols["footwear.heel_insert_mm"])
    with np.errstate(invalid="ignore"):
        too_high = cols["footwear.current_drop_mm"] + insert > MAX_EFFECTIVE_DROP
    for row in np.flatnonzero(too_high):
        errors.setdefault(int(row), {}).setdefault("footwear.heel_insert_mm", []).append(
            EFFECTIVE_DROP_TOO_HIGH
        )
    return Checked(cols, errors)


def _arrow(series: "pd.Series") -> Arrow:
    try:
        return pa.array(series, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed Python objects: read them as text
        return pa.array(series.astype("str"), from_pandas=True)


def check_frame(frame: "pd.DataFrame") -> Checked:
    """Validate every known column of `frame`; absent columns are absent values."""
    known = {f.path for f in FIELDS}
    columns = {name: _arrow(frame[name]) for name in frame.columns if name in known}
    return check_columns(columns, len(frame))
