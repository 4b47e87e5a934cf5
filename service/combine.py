"""Rules and classifier combined as RULES.md says, over whole columns (one request is n = 1).

Firings are an n x rules boolean matrix, so the steps that look at every rule (overruling on
referral, confidence factors, urgency, advice) are a few array operations, not a loop per rule.
"""

from dataclasses import dataclass
from typing import Any

import numpy as np

from service.features import BAND_HI, BAND_LO
from service.rules import Rule

DIRECTIONS = ("keep", "lower_gradually", "raise", "step_back_up")
URGENCY = ("", "soon", "today")
RULES_ONLY_CONFIDENCE = 0.5  # no model: a coin's confidence in the rules' least-change band
REFERRAL_CONFIDENCE = 0.5  # RULES.md step 1
DEFAULT_PACE_WEEKS = 4  # one step's weeks when keeping or raising; also the retest interval


class RuleBook:
    """The rules grouped by stage, with their per-rule effects as arrays."""

    def __init__(self, rules: tuple[Rule, ...]):
        self.rules = rules
        self.index = {rule.id: j for j, rule in enumerate(rules)}
        self.stages: dict[str, list[tuple[int, Rule]]] = {}
        for j, rule in enumerate(rules):
            self.stages.setdefault(rule.stage, []).append((j, rule))
        self.factor = np.array([r.confidence or 1.0 for r in rules])
        self.urgency = np.array([URGENCY.index(r.referral or "") for r in rules], dtype=np.int8)
        self.stops = np.array([bool(r.referral) and not r.provisional for r in rules])
        self.has_advice = np.array([r.advice is not None for r in rules])


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
    """One evaluation: the context, and the firing matrices filled stage by stage."""

    def __init__(self, book: RuleBook, ctx: dict[str, Any]):
        self.book, self.ctx = book, ctx
        self.n = len(ctx["current"])
        self.fired = np.zeros((self.n, len(book.rules)), dtype=bool)
        self.overruled = np.zeros_like(self.fired)
        self.reasons: dict[str, list[np.ndarray]] = {}
        self.floors: dict[str, np.ndarray] = {}
        self.ceilings: dict[str, np.ndarray] = {}

    def fire(self, j: int, rule: Rule) -> np.ndarray:
        if rule.reasons:  # the rule fires when any of its reasons holds
            held = [_full(r.when(self.ctx), self.n) for r in rule.reasons]
            self.reasons[rule.id] = held
            mask = np.logical_or.reduce(held) if len(held) > 1 else held[0]
        else:
            mask = _full(rule.when(self.ctx), self.n)
        self.fired[:, j] = mask
        return mask

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Floors and ceilings in priority order; a bound that would empty the interval drops."""
        lo, hi = np.zeros(self.n), np.full(self.n, 30.0)
        for j, rule in self.book.stages.get("bounds", []):
            mask = self.fire(j, rule)
            new_lo, new_hi = lo, hi
            if rule.floor is not None:
                self.floors[rule.id] = floor = np.ceil(_full(rule.floor(self.ctx), self.n))
                new_lo = np.fmax(lo, floor)
            if rule.ceiling is not None:
                self.ceilings[rule.id] = ceiling = np.floor(_full(rule.ceiling(self.ctx), self.n))
                new_hi = np.fmin(hi, ceiling)
            ok = mask & (new_lo <= new_hi)
            self.overruled[:, j] = mask & ~ok
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
    current = ctx["current"]
    for j, rule in book.stages.get("referral", []):
        run.fire(j, rule)
    stop = (run.fired & book.stops).any(axis=1)
    lo, hi = run.bounds()
    for j, rule in book.stages.get("advice", []):
        run.fire(j, rule)
    ctx["fired"] = {rule.id: run.fired[:, j] for j, rule in enumerate(book.rules)}
    model_band, band = _choose_band(current, probs, lo, hi)
    for j, rule in book.stages.get("band", []):
        mask = run.fire(j, rule)
        target = ctx["current_band"]
        fits = (BAND_LO[target] <= hi) & (BAND_HI[target] >= lo)
        run.overruled[:, j] = mask & ~fits
        band = np.where(mask & fits, target, band)
    rmin, rmax = np.fmax(BAND_LO[band], lo), np.fmin(BAND_HI[band], hi)
    ctx.update(allowed_min=lo, allowed_max=hi, range_min=rmin, range_max=rmax)
    for j, rule in book.stages.get("range", []):
        mask = run.fire(j, rule)
        rmin = np.where(mask, np.fmin(rmin, np.floor(current)), rmin)
        rmax = np.where(mask, np.fmax(rmax, np.ceil(current)), rmax)
    # A hard referral: no change, and every other firing is listed as overruled.
    rmin = np.where(stop, np.floor(current), rmin)
    rmax = np.where(stop, np.ceil(current), rmax)
    # An effective drop over 30 mm (a 30 mm shoe plus an insert) still gets a range within 0-30.
    rmin, rmax = np.fmin(rmin, 30.0), np.fmin(rmax, 30.0)
    band = np.where(stop, ctx["current_band"], band)
    ctx.update(range_min=rmin, range_max=rmax)
    pace = np.full(run.n, float(DEFAULT_PACE_WEEKS))
    for j, rule in book.stages.get("pace", []):
        pace = np.where(run.fire(j, rule), np.fmax(pace, rule.pace_weeks or 0), pace)
    run.overruled |= stop[:, None] & run.fired & ~book.stops
    active = run.fired & ~run.overruled
    # A bound set aside for a higher-priority bound keeps its advice (e.g. HD015's bone-stress
    # warning); only a hard referral silences advice.
    advice = run.fired & book.has_advice & ~stop[:, None]
    for j, rule in book.stages.get("bounds", []) + book.stages.get("advice", []):
        if rule.advice_when is not None:
            advice[:, j] &= _full(rule.advice_when(ctx), run.n)
    base = probs[np.arange(run.n), band] if probs is not None else RULES_ONLY_CONFIDENCE
    factor = np.where(active, book.factor, 1.0).prod(axis=1)
    factor = np.where(stop, factor * REFERRAL_CONFIDENCE, factor)
    direction = np.where(
        current > rmax, 1, np.where(current >= rmin, 0, np.where(current <= 2, 3, 2))
    )
    direction = np.where(stop, 0, direction)  # a referral changes nothing, whatever the drop
    return Decisions(
        book=book,
        ctx=ctx,
        probs=probs,
        fired=run.fired,
        overruled=run.overruled,
        advice=advice,
        floors=run.floors,
        ceilings=run.ceilings,
        reasons=run.reasons,
        urgency=np.where(active, book.urgency, 0).max(axis=1, initial=0).astype(np.int8),
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
