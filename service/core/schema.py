"""The request's marshmallow schema, generated from the field table, and its quick check."""

import math
from collections.abc import Callable, Mapping
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, fields, validate, validates_schema

from service.core.errors import InvalidInput
from service.core.fields import EFFECTIVE_DROP_TOO_HIGH, FIELDS, MAX_EFFECTIVE_DROP, Field


class StrictNumber(fields.Float):
    """A JSON number: not a bool, not a string, not NaN or Infinity."""

    default_error_messages = {  # noqa: RUF012 - marshmallow's own convention
        "invalid": "Not a valid number.",
        "whole": "Not a whole number.",
    }

    def __init__(self, *, whole: bool = False, **kwargs: Any):
        super().__init__(**kwargs)
        self.whole = whole

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.make_error("invalid")
        if isinstance(value, float) and not math.isfinite(value):  # ints are exact, any size
            raise self.make_error("invalid")
        if self.whole and isinstance(value, float) and not value.is_integer():
            raise self.make_error("whole")
        return value


class StrictBool(fields.Boolean):
    """A JSON true or false, not 1, 0 or a string."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> bool:
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


def _field(f: Field) -> fields.Field:
    if f.kind in ("number", "count", "severity"):
        rng = validate.Range(f.lo, f.hi)
        whole = f.kind != "number"
        meta = {"type": "integer"} if whole else {}
        return StrictNumber(whole=whole, required=f.required, validate=rng, metadata=meta)
    if f.kind == "bool":
        return StrictBool()
    if f.kind == "enum":
        return fields.String(validate=validate.OneOf(f.choices))
    return fields.String(validate=validate.Length(max=int(f.hi)))


def _camel(path: str) -> str:
    return "".join(part.capitalize() for part in path.replace(".", "_").split("_"))


def _required(name: str, node: Field | dict[str, Any]) -> bool:
    """A field the request must give, or a group it must have (footwear, for the drop)."""
    return node.required if isinstance(node, Field) else name == "footwear"


class Declined(Exception):
    """The quick check found something to refuse, or was unsure: marshmallow decides."""


Check = Callable[[Any], Any]


def _quick(f: Field) -> Check:
    """A value's check against its Field, as marshmallow checks it, for the plain JSON types."""
    lo, hi = f.lo, f.hi
    if f.kind in ("number", "count", "severity"):
        whole = f.kind != "number"

        def number(value: Any) -> Any:
            kind = type(value)  # exact types: bool, int subclasses and the rest go to marshmallow
            if kind is float:
                if not (value.is_integer() if whole else math.isfinite(value)):
                    raise Declined
            elif kind is not int:
                raise Declined
            if not lo <= value <= hi:
                raise Declined
            return value

        return number
    if f.kind == "bool":

        def boolean(value: Any) -> Any:
            if type(value) is not bool:
                raise Declined
            return value

        return boolean
    options = frozenset(f.choices)
    longest = int(hi)

    def text(value: Any) -> Any:
        if type(value) is not str or (value not in options if options else len(value) > longest):
            raise Declined
        return value

    return text


def effective_drop(footwear: Mapping[str, Any]) -> float:
    """A request's effective drop: the shoe's drop plus its heel insert (absent counts as 0)."""
    return float(footwear.get("current_drop_mm") or 0) + float(footwear.get("heel_insert_mm") or 0)


def effective_drop_fits(footwear: Mapping[str, Any]) -> bool:
    """Whether the shoe's drop plus its insert stays within the most heeldrop advises."""
    return footwear.get("current_drop_mm") is None or effective_drop(footwear) <= MAX_EFFECTIVE_DROP


def _fits(footwear: Any, **kwargs: Any) -> None:
    if not effective_drop_fits(footwear):
        raise ValidationError(EFFECTIVE_DROP_TOO_HIGH, field_name="heel_insert_mm")


# Checks across a group's fields, by group: marshmallow's schema validators (quick checks
# decline what they refuse, so marshmallow words the error).
GROUP_CHECKS: dict[str, Callable[..., None]] = {"footwear": _fits}


def _quick_group(tree: dict[str, Any], name: str = "") -> Check:
    """A group's check: an object of known names, each value checked, required names present."""
    checks = {
        key: _quick_group(node, key) if isinstance(node, dict) else _quick(node)
        for key, node in tree.items()
    }  # fmt: skip
    required = tuple(key for key, node in tree.items() if _required(key, node))
    across = GROUP_CHECKS.get(name)

    def group(value: Any) -> dict[str, Any]:
        if type(value) is not dict:
            raise Declined
        loaded = {}
        for key, item in value.items():
            check = checks.get(key)
            if check is None:
                raise Declined
            loaded[key] = check(item)
        for key in required:
            if key not in loaded:
                raise Declined
        if across is not None:
            try:
                across(loaded)
            except ValidationError:
                raise Declined from None
        return loaded

    return group


class QuickLoad(Schema):
    """A request schema whose `load` first runs a quick check compiled from the same field
    table: a valid request (nearly every one) loads in ~5 us where marshmallow takes ~95 us,
    with the same result. Anything the check declines, and any call with load options, goes
    through marshmallow, which decides and words the errors. tests/test_schemas.py checks the
    two agree on valid, invalid and arbitrary bodies.
    """

    quick: Check

    def load(self, data: Any, *args: Any, **kwargs: Any) -> Any:
        if not args and not kwargs:
            try:
                return self.quick(data)
            except Declined:
                pass
        return super().load(data, *args, **kwargs)


def _build(prefix: str, tree: dict[str, Any]) -> type[Schema]:
    attrs: dict[str, Any] = {}
    for name, node in tree.items():
        if isinstance(node, Field):
            attrs[name] = _field(node)
        else:
            nested = _build(f"{prefix}.{name}" if prefix else name, node)
            attrs[name] = fields.Nested(nested, required=_required(name, node))
    attrs["Meta"] = type("Meta", (), {"unknown": RAISE})
    if prefix in GROUP_CHECKS:
        check = GROUP_CHECKS[prefix]
        attrs["check_across_fields"] = validates_schema(lambda self, data, **kw: check(data, **kw))
    if prefix:
        return type(f"{_camel(prefix)}Schema", (Schema,), attrs)
    quick = _quick_group(tree)
    attrs["quick"] = staticmethod(quick)
    return type("RecommendationRequestSchema", (QuickLoad,), attrs)


def field_tree() -> dict[str, Any]:
    """The request's groups as nested dicts, with each Field at its leaf."""
    root: dict[str, Any] = {}
    for f in FIELDS:
        *groups, leaf = f.path.split(".")
        node = root
        for g in groups:
            node = node.setdefault(g, {})
        node[leaf] = f
    return root


RequestSchema = _build("", field_tree())
request_schema = RequestSchema()


def flatten_errors(messages: Any, prefix: str = "") -> dict[str, list[str]]:
    """marshmallow's nested messages as {field path: [messages]}."""
    if not isinstance(messages, Mapping):
        items = messages if isinstance(messages, list) else [messages]
        return {prefix or "_schema": [str(m) for m in items]}
    flat: dict[str, list[str]] = {}
    for key, value in messages.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            flat.update(flatten_errors(value, path))
        else:
            flat[path] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return flat


def load_request(data: Any) -> dict[str, Any]:
    """Validate one request; raise InvalidInput with messages keyed by field path."""
    if not isinstance(data, Mapping):
        raise InvalidInput("The request must be a JSON object.", {"_schema": ["Not an object."]})
    try:
        return request_schema.load(data)
    except ValidationError as exc:
        messages = exc.messages if isinstance(exc.messages, Mapping) else {"_schema": exc.messages}
        raise InvalidInput("The request has invalid fields.", flatten_errors(messages)) from None
