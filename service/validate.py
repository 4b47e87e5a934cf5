"""Columnar validation of tabular records (CSV, Parquet, labelled training data).

Built from the same field table as the JSON schemas: ranges and enums are checked on whole
columns, and errors are gathered per row; a bad row never stops the others.
"""

from dataclasses import dataclass

import numpy as np
import pandas as pd

from service.columns import Columns, absent
from service.fields import FIELDS, Field

TRUE = ("true", "1", "yes")
FALSE = ("false", "0", "no")


@dataclass
class Checked:
    """Validated columns for every row, and the messages of the rows that failed."""

    columns: Columns
    errors: dict[int, dict[str, list[str]]]

    @property
    def ok(self) -> np.ndarray:
        mask = np.ones(len(self.columns["footwear.current_drop_mm"]), dtype=bool)
        mask[list(self.errors)] = False
        return mask


def _text(series: pd.Series) -> np.ndarray:
    """Cells as stripped strings, '' for absent, whatever dtype the reader gave."""
    values = series.astype(object).where(series.notna(), "")
    return np.array(
        [str(v).strip() if not isinstance(v, bool) else str(v).lower() for v in values],
        dtype=object,
    )


def _number(field: Field, raw: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    if pd.api.types.is_bool_dtype(raw.dtype):
        return np.full(len(raw), np.nan), np.ones(len(raw), bool), "must be a number"
    if pd.api.types.is_numeric_dtype(raw.dtype):
        values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        given = ~np.isnan(values)
    else:
        text = _text(raw)
        given = text != ""
        values = pd.to_numeric(pd.Series(text), errors="coerce").to_numpy(np.float64, copy=True)
        values[~given] = np.nan
    with np.errstate(invalid="ignore"):
        bad = given & (~np.isfinite(values) | (values < field.lo) | (values > field.hi))
        whole = field.kind in ("count", "severity")
        if whole:
            bad |= given & np.isfinite(values) & (values != np.round(values))
    kind = "a whole number" if whole else "a number"
    return np.where(bad, np.nan, values), bad, f"must be {kind} from {field.lo:g} to {field.hi:g}"


def _bool(raw: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    text = np.char.lower(_text(raw).astype(str))
    values = np.select([np.isin(text, TRUE), np.isin(text, FALSE)], [1.0, 0.0], np.nan)
    bad = (text != "") & np.isnan(values)
    return values, bad, "must be true or false (also 1/0, yes/no)"


def _enum(field: Field, raw: pd.Series) -> tuple[np.ndarray, np.ndarray, str]:
    text = _text(raw).astype(str)
    bad = (text != "") & ~np.isin(text, field.choices)
    text = np.where(text == "", field.default or "", text)
    return np.where(bad, "", text).astype("<U16"), bad, f"must be one of {', '.join(field.choices)}"


def check_frame(frame: pd.DataFrame) -> Checked:
    """Validate every known column of `frame`; absent columns are absent values."""
    n = len(frame)
    cols: Columns = {}
    errors: dict[int, dict[str, list[str]]] = {}
    for field in FIELDS:
        if field.path not in frame.columns:
            cols[field.path] = absent(field, n)
            bad, message = np.zeros(n, bool), ""
        elif field.kind == "bool":
            cols[field.path], bad, message = _bool(frame[field.path])
        elif field.kind == "enum":
            cols[field.path], bad, message = _enum(field, frame[field.path])
        elif field.kind == "text":
            text = _text(frame[field.path])
            bad = np.array([len(t) > field.hi for t in text], dtype=bool)
            cols[field.path] = np.array([t or None for t in text], dtype=object)
            message = f"must be at most {field.hi:g} characters"
        else:
            cols[field.path], bad, message = _number(field, frame[field.path])
        if field.required:
            missing = np.isnan(cols[field.path]) & ~bad
            for row in np.flatnonzero(missing):
                errors.setdefault(int(row), {}).setdefault(field.path, []).append("is required")
        for row in np.flatnonzero(bad):
            errors.setdefault(int(row), {}).setdefault(field.path, []).append(message)
    return Checked(cols, errors)
