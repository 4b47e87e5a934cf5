"""Rules and classifier combined as RULES.md says, over whole columns (one request is n = 1).

Firings are an n x rules boolean matrix, so the steps that look at every rule (overruling on
referral, confidence factors, urgency, advice) are a few array operations, not a loop per rule.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.conditions import Firings, Node, Program
from service.features import BAND_HI, BAND_LO
from service.rules import STAGE_VALUES, STAGES, Rule

DIRECTIONS = ("keep", "lower_gradually", "raise", "step_back_up")
URGENCY = ("", "soon", "today")
RULES_ONLY_CONFIDENCE = 0.5  # no model: a coin's confidence in the rules' least-change band
REFERRAL_CONFIDENCE = 0.5  # RULES.md step 1
DEFAULT_PACE_WEEKS = 4  # one step's weeks when keeping or raising; also the retest interval

STAGE_NAMES = frozenset(name for values in STAGE_VALUES.values() for name in values)


class RuleBook:
    """The rules grouped by stage, their per-rule effects as arrays, one program per stage."""

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules
        self.index = {rule.id: j for j, rule in enumerate(rules)}
        self.stages: dict[str, list[tuple[int, Rule]]] = {stage: [] for stage in STAGES}
        for j, rule in enumerate(rules):
            self.stages[rule.stage].append((j, rule))
        late = {j for j, rule in enumerate(rules) if any(_late(t) for _, t in _trees(rule))}
        self.late_rows = frozenset(late)
        self.early_rows = np.array([j for j in range(len(rules)) if j not in late], dtype=np.intp)
        self.early_keys = [(rules[j].id, "when") for j in self.early_rows.tolist()]
        self.early = Program({k: t for j in self.early_rows.tolist() for k, t in _trees(rules[j])})
        self.late = {
            stage: Program({k: t for j, rule in members if j in late for k, t in _trees(rule)})
            for stage, members in self.stages.items()
            if any(j in late for j, _ in members)
        }
        self.factor = np.array([r.confidence or 1.0 for r in rules])[:, None]
        self.urgency = np.array([URGENCY.index(r.referral or "") for r in rules], dtype=np.int8)
        self.stops = np.array([bool(r.referral) and not r.provisional for r in rules])
        self.has_advice = np.array([r.advice is not None for r in rules])


def _late(tree: Node) -> bool:
    """Whether an expression reads what an earlier stage decided (fired(), the range)."""
    if tree[0] == "fired" or (tree[0] == "name" and tree[1] in STAGE_NAMES):
        return True
    return tree[0] not in ("name", "const") and any(_late(child) for child in tree[1:])


def _trees(rule: Rule) -> list[tuple[tuple[str, Any], Node]]:
    """Every expression of a rule, keyed (rule id, part); reasons by their position."""
    trees: list[tuple[tuple[str, Any], Node]] = [((rule.id, "when"), rule.when)]
    trees += [((rule.id, k), reason.when) for k, reason in enumerate(rule.reasons)]
    for part in ("floor", "ceiling", "advice_when"):
        tree = getattr(rule, part)
        if tree is not None:
            trees.append(((rule.id, part), tree))
    return trees


@dataclass
class Decisions:
    """Everything decided for n rows, as arrays; `explain` turns a row into a response."""

    book: RuleBook
    ctx: dict[str, Any]
    probs: np.ndarray | None
    fired: np.ndarray  # n x rules: the condition held
    overruled: np.ndarray  # n x rules: it held but was set aside
    advice: np.ndarray  # n x rules: its advice is given
    floors: dict[str, np.ndarray]
    ceilings: dict[str, np.ndarray]
    reasons: dict[str, list[np.ndarray]]
    urgency: np.ndarray
    model_band: np.ndarray
    band: np.ndarray
    allowed_min: np.ndarray
    allowed_max: np.ndarray
    range_min: np.ndarray
    range_max: np.ndarray
    direction: np.ndarray
    pace_weeks: np.ndarray
    confidence: np.ndarray

    def fired_ids(self, i: int) -> list[str]:
        return [r.id for r, hit in zip(self.book.rules, self.fired[i], strict=True) if hit]


def _full(value: Any, n: int) -> np.ndarray:
    """A per-row array from a compiled expression, which is a scalar when it names no column."""
    return value if isinstance(value, np.ndarray) and value.shape == (n,) else np.full(n, value)


class _Run:
    """One evaluation: the context, and the rules x rows firing matrices filled stage by stage.

    Every condition that reads only the request is evaluated up front by one program; the few
    that read an earlier stage's outcome (fired(), the range) wait for their stage. A rule that
    fired on no row changes nothing, so the stages skip it: one request costs what its firing
    rules cost.
    """

    def __init__(self, book: RuleBook, ctx: dict[str, Any]):
        self.book, self.ctx = book, ctx
        self.n = n = len(ctx["current"])
        self.fired = np.zeros((len(book.rules), n), dtype=bool)
        self.overruled = np.zeros((len(book.rules), n), dtype=bool)
        self.advice_when: dict[int, np.ndarray] = {}
        self.reasons: dict[str, list[np.ndarray]] = {}
        self.floors: dict[str, np.ndarray] = {}
        self.ceilings: dict[str, np.ndarray] = {}
        self.values = book.early(ctx)
        early = np.concatenate([self.values[key] for key in book.early_keys])
        early = early.reshape(len(book.early_keys), n)
        self.fired[book.early_rows] = early
        self.hit = set(book.early_rows[early.any(axis=1)].tolist())

    def stage(self, name: str) -> list[tuple[int, Rule]]:
        """Fire a stage's rules; the ones that fired on some row."""
        late = self.book.late.get(name)
        if late is not None:
            self.values.update(late(self.ctx))
        out = []
        for j, rule in self.book.stages[name]:
            if j in self.book.late_rows:
                self.fired[j] = mask = self.values[rule.id, "when"]
                if not np.count_nonzero(mask):
                    continue
            elif j not in self.hit:
                continue
            if rule.reasons:
                self.reasons[rule.id] = [
                    _full(self.values[rule.id, k], self.n) for k in range(len(rule.reasons))
                ]
            if rule.advice_when is not None:
                self.advice_when[j] = self.values[rule.id, "advice_when"]
            out.append((j, rule))
        return out

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Floors and ceilings in priority order; a bound that would empty the interval drops."""
        lo, hi = np.zeros(self.n), np.full(self.n, 30.0)
        values = self.values
        for j, rule in self.stage("bounds"):
            mask = self.fired[j]
            new_lo, new_hi = lo, hi
            if rule.floor is not None:
                floor = np.ceil(_full(values[rule.id, "floor"], self.n))
                self.floors[rule.id] = floor
                new_lo = np.fmax(lo, floor)
            if rule.ceiling is not None:
                ceiling = np.floor(_full(values[rule.id, "ceiling"], self.n))
                self.ceilings[rule.id] = ceiling
                new_hi = np.fmin(hi, ceiling)
            ok = mask & (new_lo <= new_hi)
            self.overruled[j] = mask & ~ok
            lo, hi = np.where(ok, new_lo, lo), np.where(ok, new_hi, hi)
        return lo, hi


def _choose_band(
    current: np.ndarray, probs: np.ndarray | None, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The model's most probable band that overlaps [lo, hi]; rules only: the least change."""
    overlap = (hi[:, None] >= BAND_LO) & (lo[:, None] <= BAND_HI)
    if probs is not None:
        return probs.argmax(axis=1), np.where(overlap, probs, -1.0).argmax(axis=1)
    gap = np.fmax(np.fmax(BAND_LO - current[:, None], current[:, None] - BAND_HI), 0.0)
    return np.full(len(current), -1), np.where(overlap, gap, np.inf).argmin(axis=1)


def decide(ctx: dict[str, Any], book: RuleBook, probs: np.ndarray | None) -> Decisions:
    """Run every combining step of RULES.md over all rows at once."""
    run = _Run(book, ctx)
    ctx["fired"] = Firings(run.fired, book.index)  # filled in stage by stage
    current = ctx["current"]
    referred = bool(run.stage("referral"))  # some row has a referral: the steps it adds run
    stop = (run.fired & book.stops[:, None]).any(axis=0) if referred else np.zeros(run.n, bool)
    stopped = referred and bool(np.count_nonzero(stop))
    lo, hi = run.bounds()
    run.stage("advice")
    model_band, band = _choose_band(current, probs, lo, hi)
    for j, _ in run.stage("band"):
        mask = run.fired[j]
        target = ctx["current_band"]
        fits = (BAND_LO[target] <= hi) & (BAND_HI[target] >= lo)
        run.overruled[j] = mask & ~fits
        band = np.where(mask & fits, target, band)
    rmin, rmax = np.fmax(BAND_LO[band], lo), np.fmin(BAND_HI[band], hi)
    ctx.update(allowed_min=lo, allowed_max=hi, range_min=rmin, range_max=rmax)
    for j, _ in run.stage("range"):
        mask = run.fired[j]
        rmin = np.where(mask, np.fmin(rmin, np.floor(current)), rmin)
        rmax = np.where(mask, np.fmax(rmax, np.ceil(current)), rmax)
    # A hard referral: no change, and every other firing is listed as overruled.
    if stopped:
        rmin = np.where(stop, np.floor(current), rmin)
        rmax = np.where(stop, np.ceil(current), rmax)
        band = np.where(stop, ctx["current_band"], band)
    # An effective drop over 30 mm (a 30 mm shoe plus an insert) still gets a range within 0-30.
    rmin, rmax = np.fmin(rmin, 30.0), np.fmin(rmax, 30.0)
    ctx.update(range_min=rmin, range_max=rmax)
    pace = np.full(run.n, float(DEFAULT_PACE_WEEKS))
    for j, rule in run.stage("pace"):
        pace = np.where(run.fired[j], np.fmax(pace, rule.pace_weeks or 0), pace)
    fired, overruled = run.fired, run.overruled
    # A bound set aside for a higher-priority bound keeps its advice (e.g. HD015's bone-stress
    # warning); only a hard referral silences advice.
    advice = fired & book.has_advice[:, None]
    if stopped:
        overruled |= stop & fired & ~book.stops[:, None]
        advice &= ~stop
    active = fired & ~overruled
    for j, when in run.advice_when.items():
        advice[j] &= when
    base = probs[np.arange(run.n), band] if probs is not None else RULES_ONLY_CONFIDENCE
    factor = np.where(active, book.factor, 1.0).prod(axis=0)
    direction = np.where(
        current > rmax, 1, np.where(current >= rmin, 0, np.where(current <= 2, 3, 2))
    )
    if stopped:
        factor = np.where(stop, factor * REFERRAL_CONFIDENCE, factor)
        direction = np.where(stop, 0, direction)  # a referral changes nothing, whatever the drop
    urgency = np.zeros(run.n, dtype=np.int8)
    if referred:
        urgency = np.where(active, book.urgency[:, None], 0).max(axis=0).astype(np.int8)
    return Decisions(
        book=book,
        ctx=ctx,
        probs=probs,
        fired=fired.T,
        overruled=overruled.T,
        advice=advice.T,
        floors=run.floors,
        ceilings=run.ceilings,
        reasons=run.reasons,
        urgency=urgency,
        model_band=model_band,
        band=band,
        allowed_min=lo,
        allowed_max=hi,
        range_min=rmin.astype(np.int64),
        range_max=rmax.astype(np.int64),
        direction=direction.astype(np.int8),
        pace_weeks=pace,
        confidence=np.minimum(base * factor, 1.0),
    )
