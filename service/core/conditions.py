"""A small expression language for rule conditions and bounds, compiled to register code.

Conditions read like RULES.md (`ktw_min < 6 and restriction_felt in ("front", "both")`) and are
checked against the typed rule context when the rules load, so a rule naming an unknown value
or an enum option that does not exist fails at start-up, not on a request. An enum (a "text")
compares only with its options, by == != in and not in, and compiles to a comparison of its code
(columns.py). A comparison with an absent value (NaN) is false.

An expression compiles to a small tree; a `Program` turns many trees into register code with
each shared sub-expression computed once, which the compiled kernel (service/_kernel.c) runs
over blocks of rows: one request costs a few microseconds, a million rows a fraction of a second.
"""

import ast
import operator
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

from service.core import _kernel as kernel
from service.core.columns import Frame

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


_OPCODES = {
    name: code
    for code, name in enumerate(
        ("less", "less_equal", "greater", "greater_equal", "equal", "not_equal", "add",
         "subtract", "multiply", "negative", "fmax", "fmin", "isnan", "logical_and",
         "logical_or", "logical_not")
    )
}  # fmt: skip  # the order of the opcodes in service/_kernel.c


class Program:
    """Expression trees compiled to register code, which service/_kernel.c runs.

    Registers 0..S-1 are the context rows `context()` builds (`slots`, by name); the rest are
    constants, temporaries and `outputs`, values the kernel writes itself
    between segments (a stage's range). Each distinct sub-tree is computed once, across all
    segments, which the kernel runs in order. `fired` gives each rule id's condition, so
    fired(...) is the `or` of those conditions; without it, fired(X) reads the slot "fired:X".
    """

    def __init__(
        self,
        segments: Sequence[Sequence[Node]],
        *,
        leading: Sequence[str] = (),
        outputs: Sequence[str] = (),
        fired: Mapping[str, Node] | None = None,
    ):
        self.fired = fired
        self.slots: dict[str, int] = {name: k for k, name in enumerate(leading)}
        self._outputs = {name: k for k, name in enumerate(outputs)}
        self._scratch = len(outputs)  # temporaries follow the outputs
        self._consts: dict[float, int] = {}
        self._vars: dict[Node, int] = {}
        self._code: list[tuple[int, int, int, int]] = []
        roots, bounds = [], [0]
        for trees in segments:
            roots.append([self._emit(tree) for tree in trees])
            bounds.append(len(self._code))
        S = len(self.slots)
        self.registers = S + self._scratch
        self._names = _getter(list(self.slots))
        self._slot_names = tuple(self.slots)

        def reg(r: int) -> int:  # slots were numbered -1, -2, ...; scratch from 0
            return -1 - r if r < 0 else S + r

        self.code = np.array(
            [(op, reg(d), reg(a), reg(b) if b is not None else -1) for op, d, a, b in self._code],
            dtype=np.int32,
        ).reshape(-1, 4)
        self.roots = [[reg(r) for r in segment] for segment in roots]
        self.bounds = np.array(bounds, dtype=np.int32)
        self.outputs = {name: reg(k) for name, k in self._outputs.items()}
        self.creg = np.array([reg(r) for r in self._consts.values()], dtype=np.int32)
        self.cval = np.array(list(self._consts), dtype=np.float64)

    def _slot(self, key: str) -> int:
        return -1 - self.slots.setdefault(key, len(self.slots))

    def _new(self, op: int, a: int, b: int | None = None) -> int:
        dst = self._scratch
        self._scratch += 1
        self._code.append((op, dst, a, b))  # type: ignore[arg-type]
        return dst

    def _emit(self, node: Node) -> int:
        if node in self._vars:
            return self._vars[node]
        self._vars[node] = reg = self._compute(node)
        return reg

    def _compute(self, node: Node) -> int:
        head = node[0]
        if head == "const":
            if node[1] not in self._consts:
                self._consts[node[1]] = self._scratch
                self._scratch += 1
            return self._consts[node[1]]
        if head == "name":
            name = node[1]
            if name in self._outputs:
                return self._outputs[name]
            return self._slot(name)
        if head == "fired":
            ids = node[1]
            parts = (
                [self._emit(self.fired[i]) for i in ids]
                if self.fired is not None
                else [self._slot(f"fired:{i}") for i in ids]
            )
            out = parts[0]
            for part in parts[1:]:
                out = self._new(_OPCODES["logical_or"], out, part)
            return out
        if head not in _OPCODES:
            raise ConditionError(f"cannot compile {head!r}")
        args = [self._emit(child) for child in node[1:]]
        return self._new(_OPCODES[head], *args)

    def context(self, ctx: Mapping[str, Any], n: int) -> np.ndarray:
        """The S x n float matrix of the slots, from a context of n-row arrays (taken from a
        Frame's matrix at once when they are all rows of it)."""
        if isinstance(ctx, Frame) and self.slots:
            taken = ctx.take(self._slot_names)
            if taken is not None:
                return taken
        rows = self._names(ctx)
        if not rows:
            return np.empty((0, n))
        return np.concatenate(rows, dtype=np.float64, casting="unsafe").reshape(len(rows), n)

    def evaluate(self, ctx: Mapping[str, Any], n: int) -> list[np.ndarray]:
        """Every root's values over n rows, segment by segment (for a standalone program)."""
        roots = np.array([r for segment in self.roots for r in segment], dtype=np.int32)
        out = np.empty((len(roots), n))
        kernel.evaluate(
            self.code, self.registers, len(self.slots), self.creg, self.cval,
            self.context(ctx, n), n, roots, out,
        )  # fmt: skip
        return list(out)


def _getter(keys: Sequence[str]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """The values of `keys` in a mapping, as a tuple (one itemgetter call for many)."""
    if len(keys) > 1:
        return operator.itemgetter(*keys)
    return lambda mapping: tuple(mapping[k] for k in keys)


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
    program = Program([[tree]])

    def run(ctx: Mapping[str, Any]) -> np.ndarray:
        n = len(next((v for v in ctx.values() if isinstance(v, np.ndarray)), [0.0]))
        (values,) = program.evaluate(ctx, n)
        return values != 0 if flag else values

    return run
