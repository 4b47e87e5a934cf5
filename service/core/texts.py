"""Texts for many rows at once: each distinct set of values is worded once, and rows hold codes.

One request and a million rows go through the same code: the rules' messages and the summary's
parts are worded per distinct combination of the values they read, so the Python work grows
with the variety of answers, not the row count.
"""

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from service.core.combine import Decisions
from service.core.features import DERIVED_OPTIONS, context_name
from service.core.fields import FIELDS
from service.core.rules import Rule

# Context values that are options, by their codes: the enum fields' and derived ones.
OPTIONS = {context_name(f.path): f.choices for f in FIELDS if f.kind == "enum"} | DERIVED_OPTIONS


def distinct(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row index per distinct combination of keys, and each row's combination number.

    Floats compare by their bits, so rows grouped together are worded identically.
    """
    n = len(keys[0])
    if n == 1:  # one request: nothing to group
        return np.zeros(1, dtype=np.int64), np.zeros(1, dtype=np.int64)
    combined, space = np.zeros(n, dtype=np.int64), 1
    for key in keys:  # fold the keys into one integer, re-numbering before it could overflow
        code, size = _codes(key)
        if space * size >= 1 << 62:
            values, inverse = np.unique(combined, return_inverse=True)
            combined, space = inverse.reshape(-1), len(values)
        combined, space = combined * size + code, space * size
    if space > 4 * n + 1024:
        _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        return first, inverse.reshape(-1)
    seen = np.zeros(space, dtype=bool)  # a small key space: number the keys without sorting
    seen[combined] = True
    number = np.cumsum(seen) - 1
    inverse = number[combined]
    first = np.zeros(np.count_nonzero(seen), dtype=np.int64)
    first[inverse] = np.arange(n)  # any row of a group stands for it
    return first, inverse


def _codes(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's number among `key`'s values, and how many numbers there may be."""
    if key.dtype.kind in "biu" and len(key):
        lo, hi = int(key.min()), int(key.max())
        if hi - lo < 1 << 16:
            return key.astype(np.int64) - lo, hi - lo + 1
    if key.dtype.kind == "f":
        key = np.ascontiguousarray(key, dtype=np.float64).view(np.int64)
    values, inverse = np.unique(key, return_inverse=True)
    return inverse.reshape(-1), len(values)


class Texts:
    """Worded texts by code; code 0 is no text."""

    def __init__(self) -> None:
        self.texts = [""]
        self._codes: dict[str, int] = {}

    def add(self, text: str) -> int:
        """The code of a fixed text (the same text, the same code)."""
        code = self._codes.get(text)
        if code is None:
            code = self._codes[text] = len(self.texts)
            self.texts.append(text)
        return code

    def word(
        self, rows: np.ndarray, keys: Sequence[np.ndarray], make: Callable[[int], str]
    ) -> np.ndarray:
        """Codes for `rows` (indices): `make(row)` is called once per distinct combination of
        `keys` (arrays over those rows), with a row of that combination."""
        if not len(rows):
            return np.zeros(0, dtype=np.int64)
        if keys:
            first, which = distinct(*keys)
        else:  # nothing to fill in: one text for every row
            first, which = np.zeros(1, dtype=np.int64), np.zeros(len(rows), dtype=np.int64)
        base = len(self.texts)
        self.texts += [make(int(rows[f])) for f in first]
        return which + base

    def join(self, slots: np.ndarray) -> list[str]:
        """Each row's texts in slot order (slots x rows codes), joined by spaces."""
        texts = self.texts
        return [" ".join(texts[c] for c in row if c) for row in slots.T.tolist()]


def value(d: Decisions, key: str, i: int) -> float:
    """Row i of a context value, as a float (NaN for absent)."""
    return float(d.ctx[key][i])


def plain(d: Decisions, key: str, i: int) -> Any:
    """Row i of a context value as a person reads it: an enum's option, or a number to one
    decimal (a knee-to-wall from a lunge angle is 7.3 cm, not 7.333...); None if absent."""
    number = value(d, key, i)
    if math.isnan(number):
        return None
    return OPTIONS[key][int(number)] if key in OPTIONS else round(number, 1)


class Amount(float):
    """A number in a rule's text: formatted as a float is, or, with a unit after a space in
    its format ("{weeks:.0f weeks}"), as "1 week" or "3 weeks"."""

    def __format__(self, spec: str) -> str:
        number, _, unit = spec.partition(" ")
        text = format(float(self), number)
        if not unit:
            return text
        return f"{text} {unit.removesuffix('s') if text == '1' else unit}"


class TemplateValues(dict[str, Any]):
    """The values a rule's message reads, for row i, read when the template asks."""

    def __init__(self, d: Decisions, i: int, rule: Rule):
        super().__init__()
        self.d, self.i, self.rule = d, i, rule

    def __missing__(self, key: str) -> Any:
        d, i = self.d, self.i
        if key == "floor_value":
            return float(d.floors[self.rule.id][i])
        if key == "ceiling_value":
            return float(d.ceilings[self.rule.id][i])
        if key == "reasons":
            return "; ".join(self.reasons())
        number = plain(d, key, i)
        if number is None:
            return math.nan
        return Amount(number) if isinstance(number, float) else number

    def reasons(self) -> list[str]:
        """The texts of the rule's reasons that held on this row."""
        held = self.d.reasons[self.rule.id]
        return [
            r.text.format_map(self)
            for r, h in zip(self.rule.reasons, held, strict=True)
            if h[self.i]
        ]


def messages(d: Decisions, texts: Texts, wanted: np.ndarray | None = None) -> np.ndarray:
    """Codes of the fired rules' messages (rules x rows; 0 where the rule did not fire), or of
    those `wanted` (a rules x rows mask of fired rules)."""
    wanted = d.fired if wanted is None else wanted
    codes = np.zeros(wanted.shape, dtype=np.int64)
    for j in np.flatnonzero(wanted.any(axis=1)).tolist():
        rule = d.book.rules[j]
        rows = wanted[j].nonzero()[0]
        keys = _inputs(d, rule, rows) if len(rows) > 1 else []  # one row: nothing to group
        codes[j, rows] = texts.word(rows, keys, _wording(d, rule))
    return codes


def _wording(d: Decisions, rule: Rule) -> Callable[[int], str]:
    """A rule's message for row i, its values filled in."""
    return lambda i: rule.message.format_map(TemplateValues(d, i, rule))


def _inputs(d: Decisions, rule: Rule, rows: np.ndarray) -> list[np.ndarray]:
    """Every value a rule's message reads, for the given rows."""
    values = [held[rows] for held in d.reasons.get(rule.id, ())] if rule.reasons else []
    for name in rule.reads:
        source = {"floor_value": d.floors, "ceiling_value": d.ceilings}.get(name)
        values.append((source[rule.id] if source is not None else d.ctx[name])[rows])
    return values
