"""Rules and classifier combined as the rule catalogue says, over whole columns (one request
is n = 1).

Each stage's rules are evaluated when the stage comes (a condition may read what an earlier
stage decided: fired(), the allowed and symptom intervals, the range), then its combining step
runs over every row at once: the bounds in priority order (a bound that would empty the
interval clips it), advice, the band (the allowed band nearest the model's own, or the current
drop's), small changes, pace; a referral then stops everything else. Firings are rules x rows
boolean matrices, so the steps that look at every rule are a few array operations, not a loop
over rows.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np

from service.core.conditions import Node, Program, fired_name
from service.core.features import BAND_HI, BAND_LO, band_of
from service.core.rules import STAGES, Rule

DIRECTIONS = ("keep", "lower_gradually", "raise", "step_back_up")
URGENCY = ("", "soon", "today")
RULES_ONLY_CONFIDENCE = 0.5  # no model: a coin's confidence in the rules' least-change band
REFERRAL_CONFIDENCE = 0.5  # docs/rules.md, the referral stage
DEFAULT_PACE_WEEKS = 4  # one step's weeks when keeping or raising; also the retest interval
MAX_DROP = 30.0  # the highest drop an interval allows (and an effective drop may be)
KEEP, LOWER, RAISE, STEP_BACK_UP = range(len(DIRECTIONS))


@dataclass(frozen=True)
class Member:
    """A rule of a stage: its row in the book, and where its stage program's values hold its
    condition, reasons, floor, ceiling and advice condition (-1: it has none)."""

    row: int
    rule: Rule
    fired_name: str  # under which fired() reads it
    when: int
    reasons: range
    floor: int
    ceiling: int
    advice_when: int


class Stage:
    """One stage's rules, in priority order, and one program for all their expressions."""

    def __init__(self, rules: list[tuple[int, Rule]]):
        trees: list[Node] = []

        def place(tree: Node | None) -> int:
            if tree is None:
                return -1
            trees.append(tree)
            return len(trees) - 1

        self.members = []
        for j, rule in rules:
            when = place(rule.when)
            reasons = [place(reason.when) for reason in rule.reasons]
            self.members.append(
                Member(
                    row=j,
                    rule=rule,
                    fired_name=fired_name(rule.id),
                    when=when,
                    reasons=range(when + 1, when + 1 + len(reasons)),
                    floor=place(rule.floor),
                    ceiling=place(rule.ceiling),
                    advice_when=place(rule.advice_when),
                )
            )
        self.program = Program(trees)
        self.rows = [member.row for member in self.members]


class RuleBook:
    """The rules in id order (as answers list them; the rows of every rules x rows matrix),
    by stage in the order they are given (priority order within a stage), and each rule's
    effect as arrays over the rules."""

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = tuple(sorted(rules, key=lambda rule: rule.id))
        self.index = {rule.id: j for j, rule in enumerate(self.rules)}
        self.stages = {
            name: Stage([(self.index[r.id], r) for r in rules if r.stage == name])
            for name in STAGES
        }
        self.referrals = self._each(lambda r: bool(r.referral))
        self.undo = [self.index[r.id] for r in rules if r.undo]
        self.has_advice = self._each(lambda r: r.advice is not None)
        self.clinician = self._each(lambda r: r.see_clinician is not None)
        self.firms_up = self._each(lambda r: r.firms_up is not None)
        self.has_why = self._each(lambda r: r.why is not None)
        self.sets_band = self._each(lambda r: bool(r.band) or r.stage == "range")
        self.keeps_band = self._each(lambda r: bool(r.band))
        # Which rule's reason the summary gives first: the person's own (symptom) bounds in
        # priority order, then the policy bounds, then the rest
        order = [member.row for stage in STAGES for member in self.stages[stage].members]
        order.sort(key=lambda j: bool(self.rules[j].policy))
        self.priority = np.array([[order.index(j)] for j in range(len(self.rules))])
        self.factor = np.array([[r.confidence or 1.0] for r in self.rules])
        self.urgency = np.array([[URGENCY.index(r.referral or "")] for r in self.rules])

    def _each(self, test: Callable[[Rule], bool]) -> np.ndarray:
        """A rule property as a column over the rules (rules x 1, broadcast over rows)."""
        return np.array([[test(rule)] for rule in self.rules])


@dataclass
class Decisions:
    """Everything decided for n rows, as arrays; `explain` turns a row into a response."""

    book: RuleBook
    ctx: dict[str, Any]
    probs: np.ndarray | None  # n x bands, or None without a model
    fired: np.ndarray  # rules x n: the condition held
    overruled: np.ndarray  # rules x n: it held but was set aside
    advice: np.ndarray  # rules x n: its advice is given
    shaped: np.ndarray  # rules x n: it shaped the answer (the summary says why by one of them)
    forced: np.ndarray  # rules x n: an active bound beyond the current drop made it change
    floors: dict[str, np.ndarray]  # rule id -> its floor on every row (bounds rules)
    ceilings: dict[str, np.ndarray]
    reasons: dict[str, list[np.ndarray]]  # rule id -> whether each reason held, per row
    referred: np.ndarray  # a referral rule fired: everything else stops
    allowed_min: np.ndarray  # the interval the bounds allow
    allowed_max: np.ndarray
    symptom_min: np.ndarray  # the same over the symptom bounds alone
    symptom_max: np.ndarray
    model_band: np.ndarray  # the model's most probable band; -1 without a model
    band: np.ndarray
    range_min: np.ndarray  # int64
    range_max: np.ndarray
    direction: np.ndarray  # index into DIRECTIONS
    pace_weeks: np.ndarray
    confidence: np.ndarray
    urgency: np.ndarray  # index into URGENCY
    inputs: np.ndarray | None = field(default=None)  # the classifier's inputs, n x features
    factors: np.ndarray | None = field(default=None)  # attributions, n x groups, when asked


class _Run:
    """One evaluation: the context, and what each stage's rules gave, filled in stage by stage.
    A rule that fired on no row changes nothing, so the combining steps skip it."""

    def __init__(self, book: RuleBook, ctx: dict[str, Any]):
        self.book, self.ctx = book, ctx
        self.n = n = len(ctx["current"])
        self.fired = np.zeros((len(book.rules), n), dtype=bool)
        self.advice_when = np.ones((len(book.rules), n), dtype=bool)
        self.reasons: dict[str, list[np.ndarray]] = {}
        self.floors: dict[str, np.ndarray] = {}
        self.ceilings: dict[str, np.ndarray] = {}
        self.hits: dict[str, list[Member]] = {}  # by stage, its rules that fired on some row

    def stage(self, name: str) -> list[Member]:
        """Evaluate a stage's rules; those that fired on some row, with what their decisions
        read (reasons, floor, ceiling, advice condition) kept."""
        stage = self.book.stages[name]
        values = stage.program.run(self.ctx, numbers=True)
        whens = [values[member.when] for member in stage.members]
        if self.n == 1:
            self.fired[stage.rows, 0] = whens
        else:
            self.fired[stage.rows] = [self._full(when) for when in whens]
        somewhere = cast(list[bool], self.fired[stage.rows].any(axis=1).tolist())
        hit = []
        for member, some in zip(stage.members, somewhere, strict=True):
            rule = member.rule
            self.ctx[member.fired_name] = self.fired[member.row]
            if not some:
                continue
            hit.append(member)
            if member.reasons:
                self.reasons[rule.id] = [self._full(values[k]) for k in member.reasons]
            if member.floor >= 0:
                self.floors[rule.id] = np.ceil(self._full(values[member.floor]))
            if member.ceiling >= 0:
                self.ceilings[rule.id] = np.floor(self._full(values[member.ceiling]))
            if member.advice_when >= 0:
                self.advice_when[member.row] = self._full(values[member.advice_when])
        self.hits[name] = hit
        return hit

    def _full(self, value: Any) -> np.ndarray:
        """An n-row array from an expression's value (a number when it reads no column, or
        for a single row)."""
        if isinstance(value, np.ndarray):
            return value
        return np.array([value]) if self.n == 1 else np.full(self.n, value)


def _narrow(
    lo: np.ndarray, hi: np.ndarray, floor: Any, ceiling: Any, fired: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """[lo, hi] narrowed by a bound where it fired: a bound that would empty the interval clips
    it to its single value nearest that bound. The new ends, and where it clipped."""
    new_lo = lo if floor is None else np.fmax(lo, floor)
    new_hi = hi if ceiling is None else np.fmin(hi, ceiling)
    clipped = fired & (new_lo > new_hi)
    if clipped.any():
        point = np.where(new_lo > hi, hi, lo)  # a floor above the interval, else a ceiling below
        new_lo, new_hi = np.where(clipped, point, new_lo), np.where(clipped, point, new_hi)
    return np.where(fired, new_lo, lo), np.where(fired, new_hi, hi), clipped


def _nearest_band(allowed: np.ndarray, target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """Among the allowed bands (rows x bands), the one nearest `target` in band order; ties go
    to the band nearer the current drop's, then to the higher."""
    k = np.arange(len(BAND_LO))
    distance = np.abs(k - target[:, None]) * 100 + np.abs(k - current[:, None]) * 10 + (4 - k)
    return np.where(allowed, distance, np.iinfo(np.int64).max).argmin(axis=1)


def decide(ctx: dict[str, Any], book: RuleBook, probs: np.ndarray | None) -> Decisions:
    """Run every combining step of the rule catalogue over all rows at once."""
    run = _Run(book, ctx)
    n, current = run.n, ctx["current"]
    fired, overruled = run.fired, np.zeros_like(run.fired)

    run.stage("referral")
    referred = (fired & book.referrals).any(axis=0)

    # The bounds in priority order: the allowed interval, and the symptom interval over the
    # symptom bounds alone (small changes may go as far as it, never past it).
    lo, hi = np.zeros(n), np.full(n, MAX_DROP)
    symptom_lo, symptom_hi = lo, hi
    for member in run.stage("bounds"):
        j, rule = member.row, member.rule
        floor, ceiling = run.floors.get(rule.id), run.ceilings.get(rule.id)
        lo, hi, overruled[j] = _narrow(lo, hi, floor, ceiling, fired[j])
        if not rule.policy:
            symptom_lo, symptom_hi, _ = _narrow(symptom_lo, symptom_hi, floor, ceiling, fired[j])
    ctx.update(allowed_min=lo, allowed_max=hi, symptom_min=symptom_lo, symptom_max=symptom_hi)

    run.stage("advice")

    # The band: the allowed band nearest the model's own; the current drop's without a model
    # or when a band rule (content-keep) says so. The range is the band within the interval.
    current_band = ctx["current_band"]
    model_band = probs.argmax(axis=1) if probs is not None else np.full(n, -1)
    target = current_band if probs is None else model_band
    for member in run.stage("band"):
        target = np.where(fired[member.row], current_band, target)
    allowed = (hi[:, None] >= BAND_LO) & (lo[:, None] <= BAND_HI)
    band = _nearest_band(allowed, target, current_band)
    rmin, rmax = np.fmax(BAND_LO[band], lo), np.fmin(BAND_HI[band], hi)
    ctx.update(range_min=rmin, range_max=rmax)

    for member in run.stage("range"):  # small changes: widened to include the current drop
        widen = fired[member.row]
        rmin = np.where(widen, np.fmin(rmin, np.floor(current)), rmin)
        rmax = np.where(widen, np.fmax(rmax, np.ceil(current)), rmax)
        for bound in run.hits["bounds"]:  # a policy bound it passes is set aside
            if bound.rule.policy:
                past = _outside(rmin, rmax, run, bound.rule.id)
                overruled[bound.row] |= widen & fired[bound.row] & past

    # A referral stops everything else: keep the current drop, or undo a recent change at once.
    if referred.any():
        previous = ctx["previous_drop_mm"]
        undo = referred & ~np.isnan(previous) & fired[book.undo].any(axis=0)
        back = np.where(undo, previous, current)
        rmin = np.where(referred, np.floor(back), rmin)
        rmax = np.where(referred, np.ceil(back), rmax)
        band = np.where(referred, band_of(back), band)
        overruled |= referred & fired & ~book.referrals
    ctx.update(range_min=rmin, range_max=rmax)

    pace = np.full(n, float(DEFAULT_PACE_WEEKS))
    for member in run.stage("pace"):
        pace = np.where(fired[member.row], np.fmax(pace, member.rule.pace_weeks or 0), pace)

    advice = fired & book.has_advice & run.advice_when & ~referred  # no advice with a referral
    active = fired & ~overruled
    factor = np.where(active, book.factor, 1.0).prod(axis=0)
    factor = np.where(referred, factor * REFERRAL_CONFIDENCE, factor)
    urgency = np.where(active, book.urgency, 0).max(axis=0, initial=0)
    base = probs[np.arange(n), band] if probs is not None else RULES_ONLY_CONFIDENCE
    up = np.where(current <= 2, STEP_BACK_UP, RAISE)
    direction = np.where(current > rmax, LOWER, np.where(current >= rmin, KEEP, up))
    top = np.where(model_band >= 0, model_band, band)
    shaped, forced = _shaped(book, run, lo, hi, top, band, direction != KEEP, current)
    return Decisions(
        book=book,
        ctx=ctx,
        probs=probs,
        fired=fired,
        overruled=overruled,
        advice=advice,
        shaped=shaped & active,
        forced=forced & active,
        floors=run.floors,
        ceilings=run.ceilings,
        reasons=run.reasons,
        referred=referred,
        allowed_min=lo,
        allowed_max=hi,
        symptom_min=symptom_lo,
        symptom_max=symptom_hi,
        model_band=model_band,
        band=band,
        range_min=rmin.astype(np.int64),
        range_max=rmax.astype(np.int64),
        direction=direction,
        pace_weeks=pace,
        confidence=np.minimum(base * factor, 1.0),
        urgency=urgency,
    )


def _outside(rmin: np.ndarray, rmax: np.ndarray, run: "_Run", rule_id: str) -> np.ndarray:
    """Where the range goes past a rule's floor or ceiling."""
    past = np.zeros(len(rmin), dtype=bool)
    if rule_id in run.floors:
        past |= rmin < run.floors[rule_id]
    if rule_id in run.ceilings:
        past |= rmax > run.ceilings[rule_id]
    return past


def _shaped(
    book: RuleBook,
    run: _Run,
    lo: np.ndarray,
    hi: np.ndarray,
    top: np.ndarray,
    band: np.ndarray,
    changes: np.ndarray,
    current: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Which fired rules shaped each answer, and which of them forced a change: a rule that set
    the band or widened the range; a binding end of the allowed interval that, on its side,
    excluded the model's top band or trimmed the chosen band; a bound beyond the current drop
    when the answer changes shoes (forced)."""
    low_side = (BAND_HI[top] < lo) | (BAND_LO[band] < lo)
    high_side = (BAND_LO[top] > hi) | (BAND_HI[band] > hi)
    shaped = run.fired & book.sets_band
    forced = np.zeros_like(shaped)
    if run.floors:
        floors = np.array(list(run.floors.values()))
        rows = [book.index[rule_id] for rule_id in run.floors]
        forced[rows] |= changes & (floors > current)
        shaped[rows] |= (floors == lo) & low_side
    if run.ceilings:
        ceilings = np.array(list(run.ceilings.values()))
        rows = [book.index[rule_id] for rule_id in run.ceilings]
        forced[rows] |= changes & (ceilings < current)
        shaped[rows] |= (ceilings == hi) & high_side
    return (shaped | forced) & run.fired, forced & run.fired
