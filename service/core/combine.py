"""Rules and classifier combined as RULES.md says, over whole columns (one request is n = 1).

The rules' expressions compile to one register program, and the compiled kernel
(service/_kernel.c) runs it and every combining step in one pass over the rows: referral and
the hard stop, the bounds in priority order, the band (the model's most probable band within
the bounds), band and range rules, pace, overruling, advice, confidence and urgency. This module
lays out the rule table for the kernel and gathers its outputs into `Decisions`.
"""

from collections.abc import Callable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from service.core import _kernel as kernel
from service.core.conditions import Node, Program
from service.core.features import BAND_HI, BAND_LO
from service.core.rules import STAGE_VALUES, STAGES, Rule

DIRECTIONS = ("keep", "lower_gradually", "raise", "step_back_up")
URGENCY = ("", "soon", "today")
RULES_ONLY_CONFIDENCE = 0.5  # no model: a coin's confidence in the rules' least-change band
REFERRAL_CONFIDENCE = 0.5  # RULES.md step 1
DEFAULT_PACE_WEEKS = 4  # one step's weeks when keeping or raising; also the retest interval
MAX_DROP = 30.0  # the highest drop a range reaches, whatever the current shoe and insert
# What the kernel is given besides the rule table (the order of L_* in _kernel.c)
LIMITS = np.array(
    [*BAND_LO, *BAND_HI, REFERRAL_CONFIDENCE, RULES_ONLY_CONFIDENCE, DEFAULT_PACE_WEEKS, MAX_DROP]
)
STAGE_NAMES = frozenset(name for values in STAGE_VALUES.values() for name in values)
# The values the kernel writes for later stages, after the two it reads (R_* in _kernel.c).
OUTPUTS = ("allowed_min", "allowed_max", "range_min", "range_max")
LEADING = ("current", "current_band")
# Columns of the rule table (T_* in _kernel.c) and of the kernel's per-row results (O_*).
_TABLE = ("stage", "when", "floor", "ceiling", "advice_when", "urgency", "stops", "has_advice",
          "band", "pace")  # fmt: skip
# The kernel's per-row results (O_* in _kernel.c), as Decisions.table holds them.
TABLE = ("allowed_min", "allowed_max", "model_band", "band", "range_min", "range_max",
         "direction", "pace_weeks", "confidence", "urgency")  # fmt: skip
_WHOLE = [TABLE.index(name) for name in ("model_band", "band", "range_min", "range_max",
                                           "direction", "urgency")]  # fmt: skip
_OUTPUT_COLUMNS = [(name, TABLE.index(name)) for name in OUTPUTS]
_NO_PROBS = np.empty((0, 5))


class RuleBook:
    """The rules as the kernel's program and table, in the order they are given (priority order
    within a stage). A condition that reads an earlier stage's outcome (fired(), the range) runs
    in that stage's segment of the program; every other one in the first segment."""

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules
        self.index = {rule.id: j for j, rule in enumerate(rules)}
        self.id_order = sorted(range(len(rules)), key=lambda j: rules[j].id)  # as answers list
        self.late = frozenset(r.id for r in rules if any(_late(t) for t in _trees(r).values()))
        segments: list[list[Node]] = [[] for _ in range(len(STAGES) + 1)]
        keys: list[list[tuple[int, str]]] = [[] for _ in segments]
        for j, rule in enumerate(rules):
            k = STAGES.index(rule.stage) + 1 if rule.id in self.late else 0
            for part, tree in _trees(rule).items():
                segments[k].append(tree)
                keys[k].append((j, part))
        self.program = program = Program(
            segments, leading=LEADING, outputs=OUTPUTS,
            fired={rule.id: rule.when for rule in rules},
        )  # fmt: skip
        pairs = zip(keys, program.roots, strict=True)
        reg = {key: r for ks, rs in pairs for key, r in zip(ks, rs, strict=True)}
        self.table = np.array(
            [
                (
                    STAGES.index(rule.stage),
                    reg[j, "when"],
                    reg.get((j, "floor"), -1),
                    reg.get((j, "ceiling"), -1),
                    reg.get((j, "advice_when"), -1),
                    URGENCY.index(rule.referral or ""),
                    bool(rule.referral) and not rule.provisional,
                    rule.advice is not None,
                    bool(rule.band),
                    rule.pace_weeks or 0,
                )
                for j, rule in enumerate(rules)
            ],
            dtype=np.int32,
        ).reshape(len(rules), len(_TABLE))
        self.factor = np.array([r.confidence or 1.0 for r in rules], dtype=np.float64)
        reason_of = [(j, k) for j, r in enumerate(rules) for k in range(len(r.reasons))]
        self.reason_regs = np.array([reg[j, f"reason{k}"] for j, k in reason_of], np.int32)
        # where Decisions finds each rule's reasons, floor and ceiling among the kernel's outputs
        self.reason_columns = {
            r.id: [q for q, (i, _) in enumerate(reason_of) if i == j]
            for j, r in enumerate(rules)
            if r.reasons
        }
        self.floor_columns = {r.id: j for j, r in enumerate(rules) if r.floor is not None}
        self.ceiling_columns = {r.id: j for j, r in enumerate(rules) if r.ceiling is not None}
        self.special = np.array(
            [program.slots[name] for name in LEADING] + [program.outputs[n] for n in OUTPUTS],
            dtype=np.int32,
        )
        self._args = (program.code, program.registers, len(program.slots), program.creg,
                      program.cval, program.bounds, self.table, self.factor, self.reason_regs,
                      self.special, LIMITS)  # fmt: skip


def _late(tree: Node) -> bool:
    """Whether an expression reads what an earlier stage decided (fired(), the range)."""
    if tree[0] == "fired" or (tree[0] == "name" and tree[1] in STAGE_NAMES):
        return True
    return tree[0] not in ("name", "const") and any(_late(child) for child in tree[1:])


def _trees(rule: Rule) -> dict[str, Node]:
    """Every expression of a rule by its part; reasons by their position."""
    trees = {"when": rule.when} | {f"reason{k}": r.when for k, r in enumerate(rule.reasons)}
    for part in ("floor", "ceiling", "advice_when"):
        tree = getattr(rule, part)
        if tree is not None:
            trees[part] = tree
    return trees


class ByRule(Mapping[str, Any]):
    """Rule id -> what a kernel output holds for that rule, taken out only when asked for (a
    request's answer reads a few of them)."""

    def __init__(self, columns: Mapping[str, Any], take: Callable[[Any], Any]):
        self._columns, self._take = columns, take

    def __getitem__(self, rule_id: str) -> Any:
        return self._take(self._columns[rule_id])

    def __iter__(self) -> Iterator[str]:
        return iter(self._columns)

    def __len__(self) -> int:
        return len(self._columns)


def _column(name: str, whole: bool = False) -> property:
    """A per-row result read from Decisions.table when asked for (a request's answer reads the
    table's row instead): floats as the kernel wrote them, or whole numbers as int64."""
    k = TABLE.index(name)
    if whole:
        w = _WHOLE.index(k)
        return property(lambda d: d.whole[w], doc=f"{name} of every row (int64)")
    return property(lambda d: d.table[:, k], doc=f"{name} of every row")


@dataclass
class Decisions:
    """Everything decided for n rows, as arrays; `explain` turns a row into a response."""

    book: RuleBook
    ctx: MutableMapping[str, Any]
    probs: np.ndarray | None
    fired: np.ndarray  # n x rules: the condition held
    overruled: np.ndarray  # n x rules: it held but was set aside
    advice: np.ndarray  # n x rules: its advice is given
    shaped: np.ndarray  # n x rules: it shaped the answer (the summary says why by it)
    floors: Mapping[str, np.ndarray]  # rule id -> its floor on every row (bounds rules)
    ceilings: Mapping[str, np.ndarray]
    reasons: Mapping[str, list[np.ndarray]]  # rule id -> whether each reason held, per row
    table: np.ndarray  # n x len(TABLE): the per-row results, as the kernel wrote them

    allowed_min = _column("allowed_min")
    allowed_max = _column("allowed_max")
    pace_weeks = _column("pace_weeks")
    confidence = _column("confidence")
    model_band = _column("model_band", whole=True)
    band = _column("band", whole=True)
    range_min = _column("range_min", whole=True)
    range_max = _column("range_max", whole=True)
    direction = _column("direction", whole=True)
    urgency = _column("urgency", whole=True)

    @cached_property
    def whole(self) -> np.ndarray:
        """The whole-number results (_WHOLE's columns) as int64 rows, converted once."""
        return self.table.T[_WHOLE].astype(np.int64)


def decide(ctx: MutableMapping[str, Any], book: RuleBook, probs: np.ndarray | None) -> Decisions:
    """Run every combining step of RULES.md over all rows at once (in the kernel)."""
    n = len(ctx["current"])
    nrules = len(book.rules)
    flags = np.empty((4, n, nrules), dtype=np.bool_)
    bounds = np.empty((2, nrules, n))
    held = np.empty((n, len(book.reason_regs)), dtype=np.bool_)
    rows = np.empty((n, len(TABLE)))
    given = _NO_PROBS if probs is None else np.ascontiguousarray(probs, dtype=np.float64)
    kernel.combine(*book._args, book.program.context(ctx, n), n, given, flags, bounds, held, rows)
    results = rows.T
    ctx.update({name: results[k] for name, k in _OUTPUT_COLUMNS})  # for the templates
    floors, ceilings, by_reason = bounds[0], bounds[1], held.T
    return Decisions(
        book=book,
        ctx=ctx,
        probs=probs,
        fired=flags[0],
        overruled=flags[1],
        advice=flags[2],
        shaped=flags[3],
        floors=ByRule(book.floor_columns, floors.__getitem__),
        ceilings=ByRule(book.ceiling_columns, ceilings.__getitem__),
        reasons=ByRule(book.reason_columns, lambda qs: [by_reason[q] for q in qs]),
        table=rows,
    )
