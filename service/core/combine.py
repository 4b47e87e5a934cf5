"""Rules and classifier combined as RULES.md says, over whole columns (one request is n = 1).

Each stage's rules are evaluated when the stage comes (a condition may read what an earlier
stage decided: fired(), the allowed interval, the range), then its combining step runs over
every row at once: referral and the hard stop, the bounds in priority order, advice, the band
(the model's most probable band within the bounds), band and range rules, pace; then overruling,
advice, confidence, urgency and direction. Firings are rules x rows boolean matrices, so the
steps that look at every rule are a few array operations, not a loop over rows.
"""

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.core.conditions import Node, Program, fired_name
from service.core.features import BAND_HI, BAND_LO
from service.core.rules import STAGES, Rule

DIRECTIONS = ("keep", "lower_gradually", "raise", "step_back_up")
URGENCY = ("", "soon", "today")
RULES_ONLY_CONFIDENCE = 0.5  # no model: a coin's confidence in the rules' least-change band
REFERRAL_CONFIDENCE = 0.5  # RULES.md step 1
DEFAULT_PACE_WEEKS = 4  # one step's weeks when keeping or raising; also the retest interval
MAX_DROP = 30.0  # the highest drop a range reaches, whatever the current shoe and insert
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
        self.stops = self._each(lambda r: bool(r.referral) and not r.provisional)
        self.referrals = self._each(lambda r: bool(r.referral))
        self.has_advice = self._each(lambda r: r.advice is not None)
        self.clinician = self._each(lambda r: r.clinician)
        self.sets_band = self._each(lambda r: bool(r.band) or r.stage == "range")
        self.keeps_band = self._each(lambda r: bool(r.band))
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
    shaped: np.ndarray  # rules x n: it shaped the answer (the summary says why by it)
    floors: dict[str, np.ndarray]  # rule id -> its floor on every row (bounds rules)
    ceilings: dict[str, np.ndarray]
    reasons: dict[str, list[np.ndarray]]  # rule id -> whether each reason held, per row
    allowed_min: np.ndarray
    allowed_max: np.ndarray
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

    def stage(self, name: str) -> list[Member]:
        """Evaluate a stage's rules; those that fired on some row, with what their decisions
        read (reasons, floor, ceiling, advice condition) kept."""
        stage = self.book.stages[name]
        values = stage.program.run(self.ctx)
        hit = []
        for member in stage.members:
            rule, mask = member.rule, values[member.when]
            self.fired[member.row] = self.ctx[member.fired_name] = mask
            if not mask.any():
                continue
            hit.append(member)
            if member.reasons:
                self.reasons[rule.id] = [values[k] for k in member.reasons]
            if member.floor >= 0:
                self.floors[rule.id] = np.ceil(self._full(values[member.floor]))
            if member.ceiling >= 0:
                self.ceilings[rule.id] = np.floor(self._full(values[member.ceiling]))
            if member.advice_when >= 0:
                self.advice_when[member.row] = values[member.advice_when]
        return hit

    def _full(self, value: Any) -> np.ndarray:
        """An n-row array from an expression's value (a number when it reads no column)."""
        return value if isinstance(value, np.ndarray) else np.full(self.n, value)


def _choose_band(
    current: np.ndarray, probs: np.ndarray | None, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The model's top band, and its most probable band that overlaps [lo, hi]; without a
    model (top -1), the overlapping band nearest the current drop."""
    overlap = (hi[:, None] >= BAND_LO) & (lo[:, None] <= BAND_HI)
    if probs is not None:
        return probs.argmax(axis=1), np.where(overlap, probs, -1.0).argmax(axis=1)
    gap = np.fmax(np.fmax(BAND_LO - current[:, None], current[:, None] - BAND_HI), 0.0)
    return np.full(len(current), -1), np.where(overlap, gap, np.inf).argmin(axis=1)


def decide(ctx: dict[str, Any], book: RuleBook, probs: np.ndarray | None) -> Decisions:
    """Run every combining step of RULES.md over all rows at once."""
    run = _Run(book, ctx)
    n, current = run.n, ctx["current"]
    fired, overruled = run.fired, np.zeros_like(run.fired)

    run.stage("referral")
    stop = (fired & book.stops).any(axis=0)  # a hard referral: no change of shoes

    # Bounds in priority order; a bound that would empty the interval is set aside.
    lo, hi = np.zeros(n), np.full(n, MAX_DROP)
    for member in run.stage("bounds"):
        j, rule = member.row, member.rule
        new_lo = np.fmax(lo, run.floors[rule.id]) if rule.floor is not None else lo
        new_hi = np.fmin(hi, run.ceilings[rule.id]) if rule.ceiling is not None else hi
        ok = fired[j] & (new_lo <= new_hi)
        overruled[j] = fired[j] & ~ok
        lo, hi = np.where(ok, new_lo, lo), np.where(ok, new_hi, hi)

    run.stage("advice")

    model_band, band = _choose_band(current, probs, lo, hi)
    current_band = ctx["current_band"]
    fits = (BAND_LO[current_band] <= hi) & (BAND_HI[current_band] >= lo)
    for member in run.stage("band"):  # the band of the current drop, when the bounds allow it
        j = member.row
        overruled[j] = fired[j] & ~fits
        band = np.where(fired[j] & fits, current_band, band)
    rmin, rmax = np.fmax(BAND_LO[band], lo), np.fmin(BAND_HI[band], hi)
    ctx.update(allowed_min=lo, allowed_max=hi, range_min=rmin, range_max=rmax)

    for member in run.stage("range"):  # widened to include the current drop
        j = member.row
        rmin = np.where(fired[j], np.fmin(rmin, np.floor(current)), rmin)
        rmax = np.where(fired[j], np.fmax(rmax, np.ceil(current)), rmax)
    stopped = stop.any()
    if stopped:  # a hard referral keeps the current drop
        rmin = np.where(stop, np.floor(current), rmin)
        rmax = np.where(stop, np.ceil(current), rmax)
        band = np.where(stop, current_band, band)
    # An effective drop over 30 mm (a 30 mm shoe plus an insert) still gets a range within 0-30.
    rmin, rmax = np.fmin(rmin, MAX_DROP), np.fmin(rmax, MAX_DROP)
    ctx.update(range_min=rmin, range_max=rmax)

    pace = np.full(n, float(DEFAULT_PACE_WEEKS))
    for member in run.stage("pace"):
        pace = np.where(fired[member.row], np.fmax(pace, member.rule.pace_weeks or 0), pace)

    # A hard referral overrules every other firing and silences all advice; a bound set aside
    # for a higher-priority bound keeps its advice (e.g. HD015's bone-stress warning).
    advice = fired & book.has_advice & run.advice_when
    if stopped:
        overruled |= stop & fired & ~book.stops
        advice &= ~stop
    active = fired & ~overruled
    factor = np.where(active, book.factor, 1.0).prod(axis=0)
    urgency = np.where(active, book.urgency, 0).max(axis=0, initial=0)
    base = probs[np.arange(n), band] if probs is not None else RULES_ONLY_CONFIDENCE
    up = np.where(current <= 2, STEP_BACK_UP, RAISE)
    direction = np.where(current > rmax, LOWER, np.where(current >= rmin, KEEP, up))
    if stopped:  # a referral changes nothing, whatever the drop
        factor = np.where(stop, factor * REFERRAL_CONFIDENCE, factor)
        direction = np.where(stop, KEEP, direction)
    shaped = _shaped(book, run, lo, hi, np.where(model_band >= 0, model_band, band), band,
                     direction != KEEP, current)  # fmt: skip
    return Decisions(
        book=book,
        ctx=ctx,
        probs=probs,
        fired=fired,
        overruled=overruled,
        advice=advice,
        shaped=shaped,
        floors=run.floors,
        ceilings=run.ceilings,
        reasons=run.reasons,
        allowed_min=lo,
        allowed_max=hi,
        model_band=model_band,
        band=band,
        range_min=rmin.astype(np.int64),
        range_max=rmax.astype(np.int64),
        direction=direction,
        pace_weeks=pace,
        confidence=np.minimum(base * factor, 1.0),
        urgency=urgency,
    )


def _shaped(
    book: RuleBook,
    run: _Run,
    lo: np.ndarray,
    hi: np.ndarray,
    top: np.ndarray,
    band: np.ndarray,
    changes: np.ndarray,
    current: np.ndarray,
) -> np.ndarray:
    """Which fired rules shaped each answer (the summary names them): a rule that set the band
    or widened the range; a binding end of the allowed interval that, on its side, excluded the
    model's top band or trimmed the chosen band; a bound beyond the current drop when the
    answer changes shoes."""
    low_side = (BAND_HI[top] < lo) | (BAND_LO[band] < lo)
    high_side = (BAND_LO[top] > hi) | (BAND_HI[band] > hi)
    shaped = run.fired & book.sets_band
    if run.floors:
        floors = np.array(list(run.floors.values()))
        rows = [book.index[rule_id] for rule_id in run.floors]
        shaped[rows] |= (floors == lo) & low_side | changes & (floors > current)
    if run.ceilings:
        ceilings = np.array(list(run.ceilings.values()))
        rows = [book.index[rule_id] for rule_id in run.ceilings]
        shaped[rows] |= (ceilings == hi) & high_side | changes & (ceilings < current)
    return shaped & run.fired
