"""Hypothesis strategies for heeldrop requests, built from the one field table.

`requests()` draws valid requests: any subset of the optional groups and fields, numbers
inside their ranges (whole numbers for severities and counts), enums from their choices.
`invalid_values(field)` draws JSON values the schema must refuse for that field, and
`invalid_cells(field)` draws CSV cell texts the columnar validator must refuse.
"""

import math
import string
from typing import Any

from hypothesis import strategies as st

from service.core.fields import FIELDS, Field
from service.core.schema import field_tree

# Any JSON value, small: what a careless or hostile client might put anywhere.
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=6,
)
REQUIRED_GROUPS = frozenset(f.group for f in FIELDS if f.required)
REF_ALPHABET = string.ascii_letters + string.digits + "-_:/#.éßø漢"


def client_refs() -> st.SearchStrategy[str]:
    """References up to 64 characters that survive a CSV cell unchanged (no outer spaces)."""
    return st.text(REF_ALPHABET, min_size=1, max_size=64)


def valid_values(field: Field) -> st.SearchStrategy[Any]:
    """Any value the API accepts for `field`."""
    if field.kind == "number":
        return st.one_of(
            st.integers(math.ceil(field.lo), math.floor(field.hi)),
            st.floats(field.lo, field.hi, allow_nan=False, allow_infinity=False),
            st.sampled_from((field.lo, field.hi)),
        )
    if field.kind in ("count", "severity"):
        return st.integers(int(field.lo), int(field.hi))
    if field.kind == "bool":
        return st.booleans()
    if field.kind == "enum":
        return st.sampled_from(field.choices)
    return client_refs()


def _node(node: Any, top: bool = False) -> st.SearchStrategy[Any]:
    if isinstance(node, Field):
        return valid_values(node)
    required, optional = {}, {}
    for name, child in node.items():
        needed = (
            child.required
            if isinstance(child, Field)
            else (top and name in REQUIRED_GROUPS) or _has_required(child)
        )
        (required if needed else optional)[name] = _node(child)
    return st.fixed_dictionaries(required, optional=optional)


def _has_required(node: Any) -> bool:
    if isinstance(node, Field):
        return node.required
    return any(_has_required(child) for child in node.values())


TREE = field_tree()


def _within_30_mm(request: dict[str, Any]) -> dict[str, Any]:
    """The request with its insert cut so the effective drop stays at most 30 mm."""
    footwear = request["footwear"]
    room = 30 - footwear["current_drop_mm"]
    if footwear.get("heel_insert_mm", 0) > room:
        request = {**request, "footwear": {**footwear, "heel_insert_mm": room}}
    return request


_REQUESTS = _node(TREE, top=True).map(_within_30_mm)


# Red flags (HD001-HD003) and values that keep them quiet: about half the drawn requests
# have none, so the answers that change the drop are explored as much as the referrals.
CALM = {
    "history.can_walk_four_steps": True,
    "history.suspected_achilles_rupture": False,
    "symptoms.hot_red_joint_or_fever": False,
    "symptoms.calf_swelling_one_side": False,
    "symptoms.night_or_rest_pain": False,
    "history.diabetes_or_neuropathy": False,
    "history.weeks_since_ankle_surgery": 60,
    "history.weeks_since_ankle_injury": 30,
    "history.weeks_since_achilles_rupture": 60,
    "symptoms.numbness_tingling": 2,
    "symptoms.ankle_swelling": 2,
}


def calm(request: dict[str, Any]) -> dict[str, Any]:
    """`request` with every red flag it gives replaced by a quiet value."""
    out = request
    for path, quiet in CALM.items():
        if get(out, path) is not None:
            out = put(out, path, quiet)
    return out


def _low_drop(request: dict[str, Any], drop: float) -> dict[str, Any]:
    footwear = {k: v for k, v in request["footwear"].items() if k != "heel_insert_mm"}
    return {**request, "footwear": {**footwear, "current_drop_mm": drop}}


_LOW = st.builds(_low_drop, _REQUESTS.map(calm), st.one_of(st.integers(0, 7), st.floats(0, 7)))


def requests() -> st.SearchStrategy[dict[str, Any]]:
    """Valid requests (nested dicts, as JSON would give them).

    A third as drawn, a third without red flags, a third also in low-drop shoes with no insert
    (where raising and stepping back up happen).
    """
    return st.one_of(_REQUESTS, _REQUESTS.map(calm), _LOW)


def get(request: dict[str, Any], path: str) -> Any:
    """The value at a dotted path, or None when absent."""
    node: Any = request
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def put(request: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of `request` with `value` at `path` (groups created as needed)."""
    out = _copy(request)
    node = out
    *groups, leaf = path.split(".")
    for g in groups:
        node = node.setdefault(g, {})
    node[leaf] = value
    return out


def _copy(value: Any) -> Any:
    return {k: _copy(v) for k, v in value.items()} if isinstance(value, dict) else value


def current(request: dict[str, Any]) -> float:
    """The effective drop: current_drop_mm + heel_insert_mm (absent = 0)."""
    return request["footwear"]["current_drop_mm"] + (get(request, "footwear.heel_insert_mm") or 0)


def below_range(field: Field) -> st.SearchStrategy[float]:
    return st.one_of(st.just(field.lo - 1), st.floats(max_value=field.lo, allow_nan=False)).filter(
        lambda x: math.isfinite(x) and x < field.lo
    )


def above_range(field: Field) -> st.SearchStrategy[float]:
    return st.one_of(st.just(field.hi + 1), st.floats(min_value=field.hi, allow_nan=False)).filter(
        lambda x: math.isfinite(x) and x > field.hi
    )


def invalid_values(field: Field) -> st.SearchStrategy[Any]:
    """JSON values the request schema must refuse for `field`."""
    wrong_type = st.one_of(st.none(), st.lists(st.integers(), max_size=2), st.just({}))
    if field.kind in ("number", "count", "severity"):
        numbers = st.one_of(
            st.booleans(),
            st.integers(int(field.lo), int(field.hi)).map(str),
            st.sampled_from((math.nan, math.inf, -math.inf)),
            below_range(field),
            above_range(field),
            wrong_type,
        )
        if field.kind == "number":
            return numbers
        fractions = st.floats(field.lo, field.hi).filter(lambda x: x != int(x))
        return st.one_of(numbers, fractions)
    if field.kind == "bool":
        return st.one_of(st.sampled_from((0, 1, "true", "false", "yes", 1.0)), wrong_type)
    if field.kind == "enum":
        others = st.text(max_size=20).filter(lambda s: s not in field.choices)
        upper = st.sampled_from(field.choices).map(str.upper)
        return st.one_of(others, upper, st.integers(), st.booleans(), wrong_type)
    too_long = st.text(REF_ALPHABET, min_size=int(field.hi) + 1, max_size=int(field.hi) + 40)
    return st.one_of(too_long, st.integers(), st.booleans(), st.lists(st.text(), max_size=2))


def invalid_cells(field: Field) -> st.SearchStrategy[str]:
    """CSV cell texts the columnar validator must refuse for `field`."""
    if field.kind in ("number", "count", "severity"):
        cells = st.one_of(
            st.sampled_from(("abc", "1,5", "nan", "inf", "-inf", "true", "5 mm", "--1")),
            below_range(field).map(repr),
            above_range(field).map(repr),
        )
        if field.kind == "number":
            return cells
        return st.one_of(cells, st.just("2.5"), st.just(f"{field.hi - 0.5:g}"))
    if field.kind == "bool":
        return st.sampled_from(("maybe", "2", "y", "n", "t", "on", "off", "-1", "truee"))
    if field.kind == "enum":
        return st.sampled_from(("unknown_value", "x", "none?", *(c.upper() for c in field.choices)))
    return st.text(string.ascii_letters, min_size=int(field.hi) + 1, max_size=int(field.hi) + 20)
