"""A small expression language for rule conditions and bounds, compiled to numpy.

Conditions read like RULES.md (`ktw_min < 6 and restriction_felt in ("front", "both")`) and are
checked against the typed rule context when the rules load, so a rule naming an unknown value
fails at start-up, not on a request. A comparison with an absent value (NaN, "") is false.
"""

import ast
import functools
import operator
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

Kind = Literal["number", "bool", "flag", "text"]
Compiled = Callable[[Mapping[str, Any]], Any]  # an array over rows, or a scalar constant

_COMPARE = {
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
}


class ConditionError(ValueError):
    """A rule expression that does not compile against the context."""


def _family(kind: Kind) -> str:
    """Text compares with text; numbers, bools and flags with each other."""
    return "text" if kind == "text" else "number"


def _present(value: Any, kind: Kind) -> Any:
    return value != "" if kind == "text" else ~np.isnan(value)


def _comparison(left: Compiled, right: Compiled, cmp: Callable[[Any, Any], Any]) -> Compiled:
    return lambda ctx: cmp(left(ctx), right(ctx))


def _not_equal(left: Compiled, right: Compiled, kind: Kind) -> Compiled:
    """`!=` that, like every comparison here, is false for an absent value."""

    def test(ctx: Mapping[str, Any]) -> Any:
        value = left(ctx)
        return (value != right(ctx)) & _present(value, kind)

    return test


def _member(left: Compiled, options: list[Compiled], negate: bool, kind: Kind) -> Compiled:
    def test(ctx: Mapping[str, Any]) -> Any:
        value = left(ctx)
        hit = functools.reduce(operator.or_, [value == o(ctx) for o in options])
        return (~hit & _present(value, kind)) if negate else hit

    return test


class Compiler:
    """Compile expressions over a context whose names have known kinds."""

    def __init__(self, kinds: Mapping[str, Kind], rule_ids: frozenset[str] = frozenset()):
        self.kinds = kinds
        self.rule_ids = rule_ids

    def condition(self, text: str) -> Compiled:
        """Compile a boolean expression."""
        fn, kind = self._node(self._parse(text), text)
        if kind not in ("bool", "flag"):
            raise ConditionError(f"{text!r} is not a condition")
        return fn if kind == "flag" else (lambda ctx: fn(ctx) == 1)

    def value(self, text: str) -> Compiled:
        """Compile a numeric expression (a floor or a ceiling)."""
        fn, kind = self._node(self._parse(text), text)
        if kind != "number":
            raise ConditionError(f"{text!r} is not a number")
        return fn

    def _parse(self, text: str) -> ast.expr:
        try:
            return ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise ConditionError(f"{text!r}: {exc.msg}") from None

    def _mask(self, node: ast.expr, text: str) -> Compiled:
        fn, kind = self._node(node, text)
        if kind == "flag":
            return fn
        if kind == "bool":
            return lambda ctx: fn(ctx) == 1
        raise ConditionError(f"{text!r}: {ast.unparse(node)!r} is not true or false")

    def _node(self, node: ast.expr, text: str) -> tuple[Compiled, Kind]:
        if isinstance(node, ast.Name):
            if node.id in ("true", "false"):
                value = 1.0 if node.id == "true" else 0.0
                return (lambda ctx: value), "bool"
            if node.id not in self.kinds:
                raise ConditionError(f"{text!r}: unknown name {node.id!r}")
            name = node.id
            return (lambda ctx: ctx[name]), self.kinds[name]
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
            const = node.value
            return (lambda ctx: const), "text" if isinstance(const, str) else "number"
        if isinstance(node, ast.BoolOp):
            parts = [self._mask(v, text) for v in node.values]
            op = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            return (lambda ctx: functools.reduce(op, [p(ctx) for p in parts])), "flag"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            inner = self._mask(node.operand, text)
            return (lambda ctx: ~inner(ctx)), "flag"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            neg, kind = self._node(node.operand, text)
            return (lambda ctx: -neg(ctx)), kind
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Sub | ast.Add | ast.Mult):
            left, left_kind = self._node(node.left, text)
            right, right_kind = self._node(node.right, text)
            if "text" in (left_kind, right_kind):
                raise ConditionError(f"{text!r}: arithmetic on text")
            arith = {ast.Sub: operator.sub, ast.Add: operator.add, ast.Mult: operator.mul}
            fn = arith[type(node.op)]
            return (lambda ctx: fn(left(ctx), right(ctx))), "number"
        if isinstance(node, ast.Compare):
            return self._compare(node, text), "flag"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node.func.id, node.args, text)
        raise ConditionError(f"{text!r}: {ast.unparse(node)!r} is not allowed")

    def _compare(self, node: ast.Compare, text: str) -> Compiled:
        left, left_kind = self._node(node.left, text)
        tests: list[Compiled] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right_node, ast.Tuple):
                    raise ConditionError(f"{text!r}: 'in' takes a tuple of values")
                options = [self._typed(e, left_kind, text) for e in right_node.elts]
                tests.append(_member(left, options, isinstance(op, ast.NotIn), left_kind))
                continue
            if type(op) not in _COMPARE:
                raise ConditionError(f"{text!r}: operator not allowed")
            right, right_kind = self._node(right_node, text)
            if _family(left_kind) != _family(right_kind):
                raise ConditionError(f"{text!r}: compares {left_kind} with {right_kind}")
            if isinstance(op, ast.NotEq):
                tests.append(_not_equal(left, right, left_kind))
            else:
                tests.append(_comparison(left, right, _COMPARE[type(op)]))
            left, left_kind = right, right_kind
        if len(tests) == 1:
            return tests[0]
        return lambda ctx: functools.reduce(operator.and_, [t(ctx) for t in tests])

    def _typed(self, node: ast.expr, kind: Kind, text: str) -> Compiled:
        fn, got = self._node(node, text)
        if _family(got) != _family(kind):
            raise ConditionError(f"{text!r}: compares {kind} with {got}")
        return fn

    def _call(self, name: str, args: list[ast.expr], text: str) -> tuple[Compiled, Kind]:
        if name in ("max", "min") and len(args) == 2:
            a, _ = self._node(args[0], text)
            b, _ = self._node(args[1], text)
            fn = np.fmax if name == "max" else np.fmin
            return (lambda ctx: fn(a(ctx), b(ctx))), "number"
        if name == "missing" and len(args) == 1:
            inner, kind = self._node(args[0], text)
            if kind == "text":
                return (lambda ctx: inner(ctx) == ""), "flag"
            return (lambda ctx: np.isnan(inner(ctx))), "flag"
        if name == "fired":
            ids = [a.id for a in args if isinstance(a, ast.Name)]
            unknown = [i for i in ids if i not in self.rule_ids]
            if not ids or len(ids) != len(args) or unknown:
                raise ConditionError(f"{text!r}: fired() takes known rule ids, not {unknown}")
            return (
                lambda ctx: functools.reduce(operator.or_, [ctx["fired"][i] for i in ids])
            ), "flag"
        raise ConditionError(f"{text!r}: unknown function {name}()")
