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


def _flatten(node: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> dict[str, Any]:
    for key, value in node.items():
        if isinstance(value, Mapping):
            _flatten(value, f"{prefix}{key}.", out)
        else:
            out[prefix + key] = value
    return out


def from_requests(requests: Sequence[Mapping[str, Any]]) -> Columns:
    """Build columns from validated (nested) request dicts: one array build for all numbers."""
    flat = [_flatten(r, "", {}) for r in requests]
    numbers = np.array(
        [[np.nan if (v := f.get(p)) is None else float(v) for p in NUMERIC] for f in flat],
        dtype=np.float64,
    ).reshape(len(flat), len(NUMERIC))
    cols: Columns = dict(zip(NUMERIC, numbers.T.copy(), strict=True))  # one contiguous row each
    for field in ENUMS:
        default = field.default or ""
        cols[field.path] = np.array([f.get(field.path) or default for f in flat], dtype="<U16")
    cols["client_ref"] = np.array([f.get("client_ref") for f in flat], dtype=object)
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
