"""Requests as columns: numpy arrays of n rows, one per field path.

Every field but the free text is float64 with NaN for absent: numbers and severities as given,
booleans 1.0/0.0, enums as their option's index in the field's choices (`Field.codes`; an absent
enum with a default is its default's code), so all later work compares numbers, never strings.
`client_ref` is an object array with None for absent.
One request is the n = 1 case, so every later stage works on whole columns.

The columnar validator gives a dict of arrays; `from_requests` gives a `Frame`: the float
fields as rows of one matrix, read by name only when asked for (a request reads a few), which
later stages can also take many rows of at once.
"""

from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import Any

import numpy as np

from service.core.fields import BY_PATH, FIELDS, Field

Columns = Mapping[str, np.ndarray]


class Layout:
    """Names of a matrix's rows (a name given twice is its later row), and the row indices of
    name tuples (worked out once each)."""

    def __init__(self, names: Sequence[str]):
        self.row = {name: k for k, name in enumerate(names)}
        self._indices: dict[tuple[str, ...], np.ndarray] = {}

    def indices(self, names: tuple[str, ...]) -> np.ndarray:
        found = self._indices.get(names)
        if found is None:
            found = self._indices[names] = np.array([self.row[n] for n in names], dtype=np.intp)
        return found


class Frame(MutableMapping[str, np.ndarray]):
    """Named n-row arrays: the rows of one float matrix (by `layout`), plus arrays of their own
    (text, values added later), which take precedence. A row is a view made when it is read."""

    __slots__ = ("extra", "layout", "matrix")

    def __init__(
        self, matrix: np.ndarray, layout: Layout, extra: dict[str, np.ndarray] | None = None
    ):
        self.matrix, self.layout, self.extra = matrix, layout, extra if extra is not None else {}

    def __getitem__(self, name: str) -> np.ndarray:
        extra = self.extra
        if name in extra:
            return extra[name]
        return self.matrix[self.layout.row[name]]

    def __setitem__(self, name: str, value: np.ndarray) -> None:
        self.extra[name] = value

    def update(self, *args: Any, **kwargs: Any) -> None:  # dict's own, not MutableMapping's loop
        self.extra.update(*args, **kwargs)

    def __delitem__(self, name: str) -> None:
        del self.extra[name]  # the matrix's rows stay

    def __contains__(self, name: object) -> bool:
        return name in self.extra or name in self.layout.row

    def __iter__(self) -> Iterator[str]:
        yield from self.layout.row
        yield from (name for name in self.extra if name not in self.layout.row)

    def __len__(self) -> int:
        return len(self.layout.row) + sum(name not in self.layout.row for name in self.extra)

    def copy(self) -> "Frame":
        """The same rows, with arrays of its own that the copy may add to or replace."""
        return Frame(self.matrix, self.layout, dict(self.extra))

    def take(self, names: tuple[str, ...]) -> np.ndarray | None:
        """The rows of `names` as one len(names) x n matrix (a copy), or None when one of them
        is not a row of the matrix as it stands."""
        extra = self.extra
        if extra and not extra.keys().isdisjoint(names):
            return None
        try:
            return self.matrix[self.layout.indices(names)]
        except KeyError:
            return None


NUMERIC = tuple(f.path for f in FIELDS if f.kind != "text")  # all float64, enums as codes
FIELD_ROWS = Layout(NUMERIC)  # a Frame of columns: the float fields in this order


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


def from_requests(requests: Sequence[Mapping[str, Any]]) -> Frame:
    """Build columns from validated (nested) request dicts: one array build for all of them."""
    rows, refs = [], []
    for request in requests:
        row = _BLANK.copy()
        _fill(row, request, _SLOTS)
        refs.append(row.pop())
        rows.append(row)
    numbers = np.array(rows, dtype=np.float64).reshape(len(rows), len(NUMERIC))
    refs_column = np.array(refs, dtype=object)
    return Frame(numbers.T.copy(), FIELD_ROWS, {"client_ref": refs_column})  # a field a row


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
