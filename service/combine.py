"""Rules and classifier combined as RULES.md says, over whole columns (one request is n = 1)."""

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from service.features import BAND_HI, BAND_LO
from service.rules import Rule

DIRECTIONS = ("keep", "lower_gradually", "raise", "step_back_up")
URGENCY = ("", "soon", "today")
RULES_ONLY_CONFIDENCE = 0.5  # no model: a coin's confidence in the rules' least-change band
REFERRAL_CONFIDENCE = 0.5  # RULES.md step 1
DEFAULT_PACE_WEEKS = 4  # one step's weeks when keeping or raising; also the retest interval


@dataclass
class Decisions:
    """Everything decided for n rows, as arrays; `explain` turns a row into a response."""

    ctx: dict[str, Any]
    probs: np.ndarray | None
    fired: dict[str, np.ndarray] = field(default_factory=dict)
    overruled: dict[str, np.ndarray] = field(default_factory=dict)
    floors: dict[str, np.ndarray] = field(default_factory=dict)
    ceilings: dict[str, np.ndarray] = field(default_factory=dict)
    reasons: dict[str, list[np.ndarray]] = field(default_factory=dict)
    advice: dict[str, np.ndarray] = field(default_factory=dict)
    urgency: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    model_band: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    band: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    allowed_min: np.ndarray = field(default_factory=lambda: np.zeros(0))
    allowed_max: np.ndarray = field(default_factory=lambda: np.zeros(0))
    range_min: np.ndarray = field(default_factory=lambda: np.zeros(0))
    range_max: np.ndarray = field(default_factory=lambda: np.zeros(0))
    direction: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int8))
    pace_weeks: np.ndarray = field(default_factory=lambda: np.zeros(0))
    confidence: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def n(self) -> int:
        return len(self.ctx["current"])


def _broadcast(value: Any, n: int) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=np.float64), (n,))


def _fire(d: Decisions, rule: Rule) -> np.ndarray:
    mask = np.broadcast_to(rule.when(d.ctx), (d.n,))
    d.fired[rule.id] = mask
    d.overruled[rule.id] = np.zeros(d.n, dtype=bool)
    if rule.reasons:
        d.reasons[rule.id] = [np.broadcast_to(r.when(d.ctx), (d.n,)) for r in rule.reasons]
    return mask


def _bounds(d: Decisions, rules: list[Rule]) -> tuple[np.ndarray, np.ndarray]:
    """Apply floors and ceilings in priority order; a bound that would empty the interval drops."""
    n = d.n
    lo, hi = np.zeros(n), np.full(n, 30.0)
    for rule in rules:
        mask = _fire(d, rule)
        new_lo, new_hi = lo, hi
        if rule.floor is not None:
            floor = np.ceil(_broadcast(rule.floor(d.ctx), n))
            d.floors[rule.id] = floor
            new_lo = np.fmax(lo, floor)
        if rule.ceiling is not None:
            ceiling = np.floor(_broadcast(rule.ceiling(d.ctx), n))
            d.ceilings[rule.id] = ceiling
            new_hi = np.fmin(hi, ceiling)
        ok = mask & (new_lo <= new_hi)
        d.overruled[rule.id] = mask & ~ok
        lo, hi = np.where(ok, new_lo, lo), np.where(ok, new_hi, hi)
    return lo, hi


def _choose_band(d: Decisions, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    overlap = (BAND_LO <= hi[:, None]) & (BAND_HI >= lo[:, None])
    current = d.ctx["current"]
    if d.probs is not None:
        d.model_band = d.probs.argmax(axis=1)
        return np.where(overlap, d.probs, -1.0).argmax(axis=1)
    # Rules only: the allowed band that changes the current drop least.
    gap = np.fmax(np.fmax(BAND_LO - current[:, None], current[:, None] - BAND_HI), 0.0)
    d.model_band = np.full(d.n, -1)
    return np.where(overlap, gap, np.inf).argmin(axis=1)


def decide(ctx: dict[str, Any], rules: tuple[Rule, ...], probs: np.ndarray | None) -> Decisions:
    """Run every stage of RULES.md's combining steps over all rows at once."""
    d = Decisions(ctx=ctx, probs=probs)
    n, current = d.n, ctx["current"]
    by_stage: dict[str, list[Rule]] = {}
    for rule in rules:
        by_stage.setdefault(rule.stage, []).append(rule)
    stop = np.zeros(n, dtype=bool)
    for rule in by_stage.get("referral", []):
        mask = _fire(d, rule)
        if not rule.provisional:
            stop |= mask
    lo, hi = _bounds(d, by_stage.get("bounds", []))
    for rule in by_stage.get("advice", []):
        _fire(d, rule)
    ctx["fired"] = d.fired
    band = _choose_band(d, lo, hi)
    for rule in by_stage.get("band", []):
        mask = _fire(d, rule)
        target = ctx["current_band"]
        fits = (BAND_LO[target] <= hi) & (BAND_HI[target] >= lo)
        d.overruled[rule.id] = mask & ~fits
        band = np.where(mask & fits, target, band)
    rmin, rmax = np.fmax(BAND_LO[band], lo), np.fmin(BAND_HI[band], hi)
    ctx.update(allowed_min=lo, allowed_max=hi, range_min=rmin, range_max=rmax)
    for rule in by_stage.get("range", []):
        mask = _fire(d, rule)
        rmin = np.where(mask, np.fmin(rmin, np.floor(current)), rmin)
        rmax = np.where(mask, np.fmax(rmax, np.ceil(current)), rmax)
    # A hard referral: no change, and every other firing is listed as overruled.
    rmin = np.where(stop, np.floor(current), rmin)
    rmax = np.where(stop, np.ceil(current), rmax)
    band = np.where(stop, ctx["current_band"], band)
    ctx.update(range_min=rmin, range_max=rmax)
    d.pace_weeks = np.full(n, float(DEFAULT_PACE_WEEKS))
    for rule in by_stage.get("pace", []):
        mask = _fire(d, rule)
        d.pace_weeks = np.where(mask, np.fmax(d.pace_weeks, rule.pace_weeks or 0), d.pace_weeks)
    for rule in rules:
        if rule.stage != "referral" or rule.provisional:
            d.overruled[rule.id] = d.overruled[rule.id] | (stop & d.fired[rule.id])
    d.band, d.range_min, d.range_max = band, rmin.astype(np.int64), rmax.astype(np.int64)
    d.allowed_min, d.allowed_max = lo, hi
    d.direction = np.select(
        [(rmin <= current) & (current <= rmax), current > rmax, current <= 2],
        [0, 1, 3], default=2,
    ).astype(np.int8)  # fmt: skip
    _referral_and_confidence(d, rules, stop)
    for rule in rules:
        if rule.advice:
            gives = d.fired[rule.id] & ~d.overruled[rule.id] & ~stop
            d.advice[rule.id] = gives & rule.advice_when(ctx) if rule.advice_when else gives
    return d


def _referral_and_confidence(d: Decisions, rules: tuple[Rule, ...], stop: np.ndarray) -> None:
    n = d.n
    rows = np.arange(n)
    base = d.probs[rows, d.band] if d.probs is not None else np.full(n, RULES_ONLY_CONFIDENCE)
    factor = np.where(stop, REFERRAL_CONFIDENCE, 1.0)
    urgency = np.zeros(n, dtype=np.int8)
    for rule in rules:
        active = d.fired[rule.id] & ~d.overruled[rule.id]
        if rule.confidence is not None:
            factor = np.where(active, factor * rule.confidence, factor)
        if rule.referral:
            level = URGENCY.index(rule.referral)
            urgency = np.where(active, np.maximum(urgency, level), urgency).astype(np.int8)
    d.urgency = urgency
    d.confidence = np.clip(base * factor, 0.0, 1.0)
