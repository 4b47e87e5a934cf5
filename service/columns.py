"""Requests as columns: a dict of numpy arrays, n rows, one per field path.

Numbers, severities and booleans are float64 with NaN for absent (booleans 1.0/0.0); enums are
fixed-width strings with "" for absent; `client_ref` is an object array with None for absent.
One request is the n = 1 case, so every later stage works on whole columns.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from service.fields import FIELDS

Columns = dict[str, np.ndarray]


def _get(request: Mapping[str, Any], path: str) -> Any:
    node: Any = request
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def from_requests(requests: Sequence[Mapping[str, Any]]) -> Columns:
    """Build columns from validated (nested) request dicts."""
    cols: Columns = {}
    for field in FIELDS:
        values = [_get(r, field.path) for r in requests]
        if field.kind == "enum":
            default = field.default or ""
            cols[field.path] = np.array([default if v is None else v for v in values], dtype="<U16")
        elif field.kind == "text":
            cols[field.path] = np.array(values, dtype=object)
        else:
            cols[field.path] = np.array(
                [np.nan if v is None else float(v) for v in values], dtype=np.float64
            )
    return cols


def empty(n: int) -> Columns:
    """Columns of n rows with every field absent (defaults applied)."""
    cols: Columns = {}
    for field in FIELDS:
        if field.kind == "enum":
            cols[field.path] = np.full(n, field.default or "", dtype="<U16")
        elif field.kind == "text":
            cols[field.path] = np.full(n, None, dtype=object)
        else:
            cols[field.path] = np.full(n, np.nan)
    return cols


def row_count(cols: Columns) -> int:
    return len(cols["footwear.current_drop_mm"])
