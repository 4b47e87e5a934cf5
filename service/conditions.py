"""A small expression language for rule conditions and bounds, compiled to straight-line numpy.

Conditions read like RULES.md (`ktw_min < 6 and restriction_felt in ("front", "both")`) and are
checked against the typed rule context when the rules load, so a rule naming an unknown value
or an enum option that does not exist fails at start-up, not on a request. A comparison with an
absent value (NaN, "") is false.

An expression compiles to a small tree; a `Program` turns many trees into one generated Python
function with each shared sub-expression computed once. Every step is one numpy call over all
rows, so one request costs a few hundred microseconds and a million rows a few numpy passes.
"""

import ast
from collections.abc import Callable, Mapping
from typing import Any, Literal

import numpy as np

Kind = Literal["number", "bool", "flag", "text"]
Node = tuple[Any, ...]  # ("name", x) | ("const", v) | (ufunc name, *children) | ("fired", ids)
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
# Node heads that are numpy functions of their children; anything else is a leaf or `fired`.
_UFUNCS = {*_COMPARE.values(), *_ARITH.values(), "negative", "fmax", "fmin", "isnan",
           "logical_and", "logical_or", "logical_not"}  # fmt: skip


class ConditionError(ValueError):
    """A rule expression that does not compile against the context."""


def _family(kind: Kind) -> str:
    """Text compares with text; numbers, bools and flags with each other."""
    return "text" if kind == "text" else "number"


def _all(head: str, parts: list[Node]) -> Node:
    node = parts[0]
    for part in parts[1:]:
        node = (head, node, part)
    return node


def _present(value: Node, kind: Kind) -> Node:
    return ("not_equal", value, ("const", "")) if kind == "text" else ("equal", value, value)


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
        return _single(self.condition_tree(text))

    def value(self, text: str) -> Compiled:
        """A numeric expression as a function of the context."""
        return _single(self.value_tree(text))

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
                options = [self._typed(e, left, left_kind, text) for e in right_node.elts]
                hit = _all("logical_or", [("equal", left, o) for o in options])
                if isinstance(op, ast.NotIn):
                    hit = ("logical_and", ("logical_not", hit), _present(left, left_kind))
                tests.append(hit)
                continue
            if type(op) not in _COMPARE:
                raise ConditionError(f"{text!r}: operator not allowed")
            right, right_kind = self._node(right_node, text)
            if _family(left_kind) != _family(right_kind):
                raise ConditionError(f"{text!r}: compares {left_kind} with {right_kind}")
            self._check_option(left, right, text)
            self._check_option(right, left, text)
            test = (_COMPARE[type(op)], left, right)
            if isinstance(op, ast.NotEq):  # false for an absent value, like every comparison
                test = ("logical_and", test, _present(left, left_kind))
            tests.append(test)
            left, left_kind = right, right_kind
        return _all("logical_and", tests)

    def _typed(self, node: ast.expr, left: Node, kind: Kind, text: str) -> Node:
        tree, got = self._node(node, text)
        if _family(got) != _family(kind):
            raise ConditionError(f"{text!r}: compares {kind} with {got}")
        self._check_option(left, tree, text)
        return tree

    def _check_option(self, name: Node, const: Node, text: str) -> None:
        """A text compared with a literal: the literal must be one of the field's options."""
        known = self.options.get(name[1], ()) if name[0] == "name" else ()
        if known and const[0] == "const" and const[1] not in known:
            choices = ", ".join(known)
            raise ConditionError(f"{text!r}: {name[1]} is never {const[1]!r} ({choices})")

    def _call(self, name: str, args: list[ast.expr], text: str) -> tuple[Node, Kind]:
        if name in ("max", "min") and len(args) == 2:
            a, _ = self._node(args[0], text)
            b, _ = self._node(args[1], text)
            return ("fmax" if name == "max" else "fmin", a, b), "number"
        if name == "missing" and len(args) == 1:
            inner, kind = self._node(args[0], text)
            if kind == "text":
                return ("equal", inner, ("const", "")), "flag"
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


class Firings:
    """Which rules fired on which rows (rules x rows), for `fired(...)`: any of some rules."""

    def __init__(self, matrix: np.ndarray, index: Mapping[str, int]):
        self.matrix, self.index = matrix, index

    def any_of(self, ids: tuple[str, ...]) -> np.ndarray:
        return np.logical_or.reduce(self.matrix[[self.index[i] for i in ids]], axis=0)


class Program:
    """Many expression trees as one generated function of the context: ctx -> {key: value}.

    Each distinct sub-tree is computed once. An `and` whose first part reads the context stops
    as soon as it is false on every row, so a rule that does not fire costs its first test
    (a sub-tree first computed inside such a branch is shared only within it). Names and
    constants are written with repr() and names were checked against the context, so the
    generated code holds nothing but numpy calls, context lookups and literals.
    """

    def __init__(self, trees: Mapping[Any, Node]):
        self.keys = tuple(trees)
        self._lines: list[str] = []
        self._vars: dict[Node, str] = {}
        self._scopes: list[list[Node]] = [[]]  # the sub-trees first computed in each branch
        self._count = 0
        results = [self._emit(tree) for tree in trees.values()]
        body = "\n".join(f"    {line}" for line in self._lines)
        source = f"def run(c):\n{body}\n    return ({''.join(r + ', ' for r in results)})\n"
        namespace: dict[str, Any] = {"np": np}
        exec(compile(source, "<rules>", "exec"), namespace)  # the docstring says why this is safe
        self._run = namespace["run"]
        self.source = source

    def _line(self, text: str) -> None:
        self._lines.append("    " * (len(self._scopes) - 1) + text)

    def _bind(self, node: Node, expr: str) -> str:
        var = f"v{self._count}"
        self._count += 1
        self._line(f"{var} = {expr}")
        self._vars[node] = var
        self._scopes[-1].append(node)
        return var

    def _emit(self, node: Node) -> str:
        if node[0] == "const":
            return repr(node[1])
        if node in self._vars:
            return self._vars[node]
        head = node[0]
        if head == "name":
            return self._bind(node, f"c[{node[1]!r}]")
        if head == "fired":
            return self._bind(node, f"c['fired'].any_of({node[1]!r})")
        if head == "logical_and" and reads(_chain(node)[0]):
            return self._and(node)
        if head in _UFUNCS:
            args = ", ".join(self._emit(child) for child in node[1:])
            return self._bind(node, f"np.{head}({args})")
        raise ConditionError(f"cannot emit {head!r}")

    def _and(self, node: Node) -> str:
        """`a and b and c`, each later part computed only while some row is still true."""
        first, *rest = _chain(node)
        var = self._bind(node, self._emit(first))
        depth = len(self._scopes)
        for part in rest:
            self._line(f"if np.count_nonzero({var}):")
            self._scopes.append([])
            self._line(f"{var} = np.logical_and({var}, {self._emit(part)})")
        while len(self._scopes) > depth:
            for inner in self._scopes.pop():
                del self._vars[inner]
        return var

    def __call__(self, ctx: Mapping[str, Any]) -> dict[Any, Any]:
        return dict(zip(self.keys, self._run(ctx), strict=True))


def _chain(node: Node) -> list[Node]:
    """The parts of a left-nested chain of one operator: (and (and a b) c) -> [a, b, c]."""
    parts = []
    while node[0] == "logical_and":
        parts.append(node[2])
        node = node[1]
    return [node, *reversed(parts)]


def reads(tree: Node) -> set[str]:
    """The context names an expression reads (`fired` for fired())."""
    if tree[0] == "name":
        return {tree[1]}
    if tree[0] == "fired":
        return {"fired"}
    if tree[0] == "const":
        return set()
    return set().union(*(reads(child) for child in tree[1:]))


def _single(tree: Node) -> Compiled:
    program = Program({0: tree})
    return lambda ctx: program(ctx)[0]
