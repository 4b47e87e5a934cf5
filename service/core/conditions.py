"""A small expression language for rule conditions and bounds, evaluated with numpy.

Conditions read like docs/rules.md (`ktw_min < 6 and restriction_felt in ("front", "both")`) and are
checked against the typed rule context when the rules load, so a rule naming an unknown value
or an enum option that does not exist fails at start-up, not on a request. An enum (a "text")
compares only with its options, by == != in and not in, and compiles to a comparison of its code
(columns.py). A comparison with an absent value (NaN) is false, so "the type is not a lifting
shoe, or not given" reads `not (current_type == 'weightlifting')`. Besides `and`, `or`, `not`,
`+ - *` and comparisons (chained too), the functions are max(a, b), min(a, b), floor(x),
ceil(x), where(condition, a, b), missing(x) and fired(rule ids of earlier stages).

An expression compiles to a small tree of numpy functions; a `Program` evaluates many trees
over whole columns, each distinct sub-expression once: one request or a million rows alike.
"""

import ast
import math
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

Kind = Literal["number", "bool", "flag", "text"]
Node = tuple[Any, ...]  # ("name", x) | ("const", v) | (numpy name, *children) | ("fired", ids)
Typed = tuple[Node, Kind]
Compiled = Callable[[Mapping[str, Any]], Any]  # an array over rows, or a scalar constant

_COMPARE = {
    ast.Lt: "less",
    ast.LtE: "less_equal",
    ast.Gt: "greater",
    ast.GtE: "greater_equal",
    ast.Eq: "equal",
    ast.NotEq: "not_equal",
}
_ARITH = {ast.Sub: "subtract", ast.Add: "add", ast.Mult: "multiply"}


class ConditionError(ValueError):
    """A rule expression that does not compile against the context."""


def _all(head: str, parts: list[Node]) -> Node:
    node = parts[0]
    for part in parts[1:]:
        node = (head, node, part)
    return node


def _present(value: Node) -> Node:
    return ("equal", value, value)  # false for NaN, absent


class Compiler:
    """Compile expressions over a context whose names have known kinds (and enum options)."""

    def __init__(
        self,
        kinds: Mapping[str, Kind],
        rule_ids: frozenset[str] = frozenset(),
        options: Mapping[str, tuple[str, ...]] | None = None,
    ):
        self.kinds = kinds
        self.rule_ids = rule_ids
        self.options = options or {}

    def condition_tree(self, text: str) -> Node:
        """The tree of a boolean expression."""
        node, kind = self._node(self._parse(text), text)
        if kind not in ("bool", "flag"):
            raise ConditionError(f"{text!r} is not a condition")
        return node if kind == "flag" else ("equal", node, ("const", 1.0))

    def value_tree(self, text: str) -> Node:
        """The tree of a numeric expression (a floor or a ceiling)."""
        node, kind = self._node(self._parse(text), text)
        if kind != "number":
            raise ConditionError(f"{text!r} is not a number")
        return node

    def condition(self, text: str) -> Compiled:
        """A boolean expression as a function of the context."""
        return _single(self.condition_tree(text), True)

    def value(self, text: str) -> Compiled:
        """A numeric expression as a function of the context."""
        return _single(self.value_tree(text), False)

    def _parse(self, text: str) -> ast.expr:
        try:
            return ast.parse(text, mode="eval").body
        except SyntaxError as exc:
            raise ConditionError(f"{text!r}: {exc.msg}") from None

    def _mask(self, node: ast.expr, text: str) -> Node:
        tree, kind = self._node(node, text)
        if kind == "flag":
            return tree
        if kind == "bool":
            return ("equal", tree, ("const", 1.0))
        raise ConditionError(f"{text!r}: {ast.unparse(node)!r} is not true or false")

    def _node(self, node: ast.expr, text: str) -> tuple[Node, Kind]:
        if isinstance(node, ast.Name):
            if node.id in ("true", "false"):
                return ("const", 1.0 if node.id == "true" else 0.0), "bool"
            if node.id not in self.kinds:
                raise ConditionError(f"{text!r}: unknown name {node.id!r}")
            return ("name", node.id), self.kinds[node.id]
        if isinstance(node, ast.Constant) and isinstance(node.value, int | float | str):
            if isinstance(node.value, str):
                return ("const", node.value), "text"
            return ("const", float(node.value)), "number"
        if isinstance(node, ast.BoolOp):
            head = "logical_and" if isinstance(node.op, ast.And) else "logical_or"
            return _all(head, [self._mask(v, text) for v in node.values]), "flag"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return ("logical_not", self._mask(node.operand, text)), "flag"
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            inner, kind = self._node(node.operand, text)
            if kind == "text":
                raise ConditionError(f"{text!r}: arithmetic on text")
            return ("negative", inner), "number"
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITH:
            left, left_kind = self._node(node.left, text)
            right, right_kind = self._node(node.right, text)
            if "text" in (left_kind, right_kind):
                raise ConditionError(f"{text!r}: arithmetic on text")
            return (_ARITH[type(node.op)], left, right), "number"
        if isinstance(node, ast.Compare):
            return self._compare(node, text), "flag"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            return self._call(node.func.id, node.args, text)
        raise ConditionError(f"{text!r}: {ast.unparse(node)!r} is not allowed")

    def _compare(self, node: ast.Compare, text: str) -> Node:
        left, left_kind = self._node(node.left, text)
        tests: list[Node] = []
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            if isinstance(op, ast.In | ast.NotIn):
                if not isinstance(right_node, ast.Tuple):
                    raise ConditionError(f"{text!r}: 'in' takes a tuple of values")
                options = [self._node(e, text) for e in right_node.elts]
                hits = [self._test("equal", (left, left_kind), o, text) for o in options]
                hit = _all("logical_or", hits)
                if isinstance(op, ast.NotIn):
                    hit = ("logical_and", ("logical_not", hit), _present(left))
                tests.append(hit)
                continue
            if type(op) not in _COMPARE:
                raise ConditionError(f"{text!r}: operator not allowed")
            right = self._node(right_node, text)
            tests.append(self._test(_COMPARE[type(op)], (left, left_kind), right, text))
            left, left_kind = right
        return _all("logical_and", tests)

    def _test(self, head: str, left: Typed, right: Typed, text: str) -> Node:
        """One comparison; a text's with a literal becomes its code's with the option's."""
        (a, a_kind), (b, b_kind) = left, right
        if "text" in (a_kind, b_kind):
            (name, _), (literal, _) = sorted((left, right), key=lambda side: side[0][0] != "name")
            if name[0] != "name" or literal[0] != "const" or a_kind != b_kind:
                raise ConditionError(f"{text!r}: a text is compared with one of its options")
            if head not in ("equal", "not_equal"):
                raise ConditionError(f"{text!r}: a text is compared by ==, !=, in or not in")
            a, b = name, ("const", self._code(name[1], literal[1], text))
        test = (head, a, b)
        if head == "not_equal":  # false for an absent value, like every comparison
            test = ("logical_and", test, _present(a if a[0] != "const" else b))
        return test

    def _code(self, name: str, literal: str, text: str) -> float:
        """An option's code (columns.py); the literal must be one of the field's options."""
        known = self.options.get(name, ())
        if literal not in known:
            choices = ", ".join(known)
            raise ConditionError(f"{text!r}: {name} is never {literal!r} ({choices})")
        return float(known.index(literal))

    def _call(self, name: str, args: list[ast.expr], text: str) -> tuple[Node, Kind]:
        if name in ("max", "min") and len(args) == 2:
            (a, a_kind), (b, b_kind) = self._node(args[0], text), self._node(args[1], text)
            if "text" in (a_kind, b_kind):
                raise ConditionError(f"{text!r}: {name}() of a text")
            return ("fmax" if name == "max" else "fmin", a, b), "number"
        if name in ("floor", "ceil") and len(args) == 1:
            inner, kind = self._node(args[0], text)
            if kind != "number":
                raise ConditionError(f"{text!r}: {name}() of something not a number")
            return (name, inner), "number"
        if name == "where" and len(args) == 3:  # where(condition, value if true, value if not)
            test = self._mask(args[0], text)
            (a, a_kind), (b, b_kind) = self._node(args[1], text), self._node(args[2], text)
            if a_kind != "number" or b_kind != "number":
                raise ConditionError(f"{text!r}: where() chooses between two numbers")
            return ("where", test, a, b), "number"
        if name == "missing" and len(args) == 1:
            inner, _ = self._node(args[0], text)
            return ("isnan", inner), "flag"
        if name == "fired":
            ids = [a.id for a in args if isinstance(a, ast.Name)]
            unknown = [i for i in ids if i not in self.rule_ids]
            if not ids or len(ids) != len(args) or unknown:
                raise ConditionError(
                    f"{text!r}: fired() takes ids of rules in earlier stages, not {unknown}"
                )
            return ("fired", tuple(ids)), "flag"
        raise ConditionError(f"{text!r}: unknown function {name}()")


# The numpy function each tree head names. Comparisons with NaN are false; `and`, `or` and
# `not` take any non-zero number as true; fmax and fmin let a NaN give way to the other value.
FUNCTIONS: dict[str, Callable[..., Any]] = {
    name: getattr(np, name)
    for name in ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "add",
                 "subtract", "multiply", "negative", "fmax", "fmin", "floor", "ceil", "where",
                 "isnan", "logical_and", "logical_or", "logical_not")
}  # fmt: skip


def _fmax(a: float, b: float) -> float:
    return b if a != a else a if b != b or a >= b else b  # a != a: NaN gives way, as in fmax


def _fmin(a: float, b: float) -> float:
    return b if a != a else a if b != b or a <= b else b


# The same functions on one row's Python numbers: numpy's call costs more than the arithmetic
# for a single request. Each gives what its numpy twin gives on a one-row array (NaN included).
SCALAR: dict[str, Callable[..., Any]] = {
    "less": operator.lt,
    "less_equal": operator.le,
    "greater": operator.gt,
    "greater_equal": operator.ge,
    "equal": operator.eq,
    "not_equal": operator.ne,
    "add": operator.add,
    "subtract": operator.sub,
    "multiply": operator.mul,
    "negative": operator.neg,
    "fmax": _fmax,
    "fmin": _fmin,
    "floor": lambda x: x if x != x else float(math.floor(x)),
    "ceil": lambda x: x if x != x else float(math.ceil(x)),
    "where": lambda c, a, b: a if c else b,
    "isnan": lambda x: x != x,
    "logical_and": lambda a, b: bool(a) and bool(b),
    "logical_or": lambda a, b: bool(a) or bool(b),
    "logical_not": operator.not_,
}


def fired_name(rule_id: str) -> str:
    """The context name under which a rule's firing is read by fired() in later stages."""
    return f"fired:{rule_id}"


class Program:
    """Expression trees evaluated over a context of n-row arrays, each distinct sub-tree once.

    Leaves are context names and constants (numpy broadcasts a constant over the rows); fired(A,
    B) reads the firings of A and B, which the caller puts in the context (`fired_name`). A
    program is meant for one stage: values a later stage rewrites are read afresh by its own
    program, never shared across stages.
    """

    def __init__(self, trees: Sequence[Node]):
        self._numbers: dict[Node, int] = {}
        self.names: list[str] = []  # the context names read, slots 0..
        self.constants: list[Any] = []  # then the constants
        self.steps: list[tuple[Callable[..., Any], int, int, int]] = []  # then f(a[, b[, c]])
        self.scalar_steps: list[tuple[Callable[..., Any], int, int, int]] = []  # one row
        leaves = {leaf for tree in trees for leaf in _leaves(tree)}
        for leaf in sorted(leaves, key=lambda leaf: (leaf[0] != "name", repr(leaf))):
            self._numbers[leaf] = len(self._numbers)
            (self.names if leaf[0] == "name" else self.constants).append(leaf[1])
        self.roots = [self._number(tree) for tree in trees]

    def _number(self, node: Node) -> int:
        number = self._numbers.get(node)
        if number is None:
            if node[0] == "fired":
                parts = [("name", fired_name(rule_id)) for rule_id in node[1]]
                return self._number(_all("logical_or", parts) if len(parts) > 1 else parts[0])
            if node[0] not in FUNCTIONS:
                raise ConditionError(f"cannot evaluate {node[0]!r}")
            a, b, c = [self._number(child) for child in node[1:]] + [-1] * (4 - len(node))
            self.steps.append((FUNCTIONS[node[0]], a, b, c))
            self.scalar_steps.append((SCALAR[node[0]], a, b, c))
            number = self._numbers[node] = len(self._numbers)
        return number

    def run(self, ctx: Mapping[str, Any], numbers: bool = False) -> list[Any]:
        """Each tree's value: an n-row array, or a number for a tree of constants only. With
        `numbers`, a one-row context gives plain Python numbers and booleans instead."""
        values = [ctx[name] for name in self.names]
        one_row = bool(values) and len(values[0]) == 1
        if one_row:  # Python numbers, then each tree's value as a one-row array
            values = [value.item() for value in values]
        values += self.constants
        add = values.append
        for function, a, b, c in self.scalar_steps if one_row else self.steps:
            if b < 0:
                add(function(values[a]))
            elif c < 0:
                add(function(values[a], values[b]))
            else:
                add(function(values[a], values[b], values[c]))
        if one_row and not numbers:
            return [np.array([values[k]]) for k in self.roots]
        return [values[k] for k in self.roots]


def _leaves(tree: Node) -> set[Node]:
    """The names (fired() read as names) and constants of a tree."""
    if tree[0] in ("name", "const"):
        return {tree}
    if tree[0] == "fired":
        return {("name", fired_name(rule_id)) for rule_id in tree[1]}
    return set().union(*(_leaves(child) for child in tree[1:]))


def reads(tree: Node) -> set[str]:
    """The context names an expression reads (`fired` for fired())."""
    if tree[0] == "name":
        return {tree[1]}
    if tree[0] == "fired":
        return {"fired"}
    if tree[0] == "const":
        return set()
    return set().union(*(reads(child) for child in tree[1:]))


def _single(tree: Node, flag: bool) -> Compiled:
    program = Program([tree])

    def run(ctx: Mapping[str, Any]) -> Any:
        (value,) = program.run(ctx)
        return np.asarray(value, dtype=bool) if flag else value

    return run
