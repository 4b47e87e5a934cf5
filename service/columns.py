"""Requests as columns: a dict of numpy arrays, n rows, one per field path.

Numbers, severities and booleans are float64 with NaN for absent (booleans 1.0/0.0); enums are
fixed-width strings with "" for absent; `client_ref` is an object array with None for absent.
One request is the n = 1 case, so every later stage works on whole columns.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from service.fields import FIELDS, Field

Columns = dict[str, np.ndarray]


NUMERIC = tuple(f.path for f in FIELDS if f.kind not in ("enum", "text"))
ENUMS = tuple(f for f in FIELDS if f.kind == "enum")


def _reader(path: str) -> Callable[[Mapping[str, Any]], Any]:
    """A function reading one dotted path from a nested request (None when absent)."""
    keys = path.split(".")
    if len(keys) == 1:
        return lambda r: r.get(keys[0])
    if len(keys) == 2:
        group, leaf = keys
        return lambda r: (r.get(group) or _NONE).get(leaf)
    group, mid, leaf = keys
    return lambda r: ((r.get(group) or _NONE).get(mid) or _NONE).get(leaf)


_NONE: Mapping[str, Any] = {}
_NUMBERS = [_reader(p) for p in NUMERIC]
_ENUMS = [(f.path, _reader(f.path), f.default or "") for f in ENUMS]
_CLIENT_REF = _reader("client_ref")


def from_requests(requests: Sequence[Mapping[str, Any]]) -> Columns:
    """Build columns from validated (nested) request dicts: one array build for all numbers."""
    numbers = np.array(
        [[np.nan if (v := read(r)) is None else float(v) for read in _NUMBERS] for r in requests],
        dtype=np.float64,
    ).reshape(len(requests), len(NUMERIC))
    cols: Columns = dict(zip(NUMERIC, numbers.T.copy(), strict=True))  # one contiguous row each
    for path, read, default in _ENUMS:
        cols[path] = np.array([read(r) or default for r in requests], dtype="<U16")
    cols["client_ref"] = np.array([_CLIENT_REF(r) for r in requests], dtype=object)
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
