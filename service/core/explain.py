"""Turn decisions into responses, a row each: plan, rule firings, factors, summary, advice."""

import math
from collections.abc import Mapping
from itertools import compress
from math import isnan
from typing import Any

import numpy as np

from service.core.columns import Frame
from service.core.combine import DIRECTIONS, URGENCY, Decisions
from service.core.features import FEATURE_INPUTS, FEATURES, GROUPS, context_name
from service.core.fields import BANDS, FIELDS
from service.core.model import ServingModel
from service.core.rules import Rule

STEP_BACK_IF = "pain rises by 2 or more out of 10, or a new pain appears"
TOP_FACTORS = 4
_GROUP_KEY = {g: "ktw_min" if g == "mobility.knee_to_wall_cm" else context_name(g) for g in GROUPS}
_GROUP_FIRST = {
    g: FEATURES.index(next(f for f in FEATURES if FEATURE_INPUTS[f] == g)) for g in GROUPS
}
IMPORTANT_INPUTS = (
    "person.age_years",
    "person.body_mass_kg",
    "activity.primary",
    "footwear.years_in_heeled_shoes",
    "footwear.weeks_in_current_drop",
    "mobility.restriction_felt",
)
_ENUMS = {context_name(f.path): f for f in FIELDS if f.kind == "enum"}


# The important inputs as the context names them, with the paths the answer names them by.
_MISSING = (
    *((context_name(p), p) for p in IMPORTANT_INPUTS),
    ("ktw_min", "mobility.knee_to_wall_cm"),
)


def _number(value: Any) -> Any:
    return None if isinstance(value, float) and math.isnan(value) else value


class TemplateValues(dict[str, Any]):
    """Template values for one row, read lazily from the decisions."""

    def __init__(self, b: "Reader", i: int, rule: Rule):
        super().__init__()
        self.b, self.i, self.rule = b, i, rule

    def __missing__(self, key: str) -> Any:
        d = self.b.d
        if key == "floor_value":
            return float(d.floors[self.rule.id][self.i])
        if key == "ceiling_value":
            return float(d.ceilings[self.rule.id][self.i])
        if key == "reasons":
            return "; ".join(self.reasons())
        value = self.b.plain(key, self.i)
        return math.nan if value is None else value

    def reasons(self) -> list[str]:
        masks = self.b.d.reasons[self.rule.id]
        held = [r for r, m in zip(self.rule.reasons, masks, strict=True) if m[self.i]]
        return [r.text.format_map(self) for r in held]


def _effect(rule: Rule, b: "_Batch", i: int) -> str:
    if rule.floor is None and rule.ceiling is None and not rule.band:
        return rule.effect
    values: dict[str, Any] = {}  # as Python values: numpy scalars format slowly
    if rule.floor is not None:
        values["floor"] = b.d.floors[rule.id][i].item()
    if rule.ceiling is not None:
        values["ceiling"] = b.d.ceilings[rule.id][i].item()
    if rule.band:
        values["band"] = BANDS[int(b.value("current_band", i))]
    return rule.effect.format_map(values)


def plan(row: "_Row") -> list[dict[str, Any]]:
    """Lowering: steps of at most 4 mm ending at the range's max; raising: one step."""
    current, direction, weeks = row.now, row.direction, row.weeks
    if direction == "keep":
        return []
    if direction in ("raise", "step_back_up"):
        target = row.range_min
        note = (
            f"Change to {target} mm shoes, or add a heel insert; going higher can be done at once."
        )
        return [{"step": 1, "drop_mm": target, "weeks": weeks, "note": note}]
    target = row.range_max
    count = math.ceil((current - target) / 4)
    size = (current - target) / count
    drops = [math.ceil(current - k * size) for k in range(1, count)] + [target]
    return [
        {
            "step": k,
            "drop_mm": drop,
            "weeks": weeks,
            "note": f"Wear {drop} mm for {weeks} weeks; go on only if nothing hurts more.",
        }
        for k, drop in enumerate(drops, start=1)
    ]


class Reader:
    """Row values of the decisions' context, read from its arrays one at a time."""

    def __init__(self, d: Decisions):
        self.d = d

    def value(self, key: str, i: int) -> float:
        """Row i of a context value, as a float (NaN for absent)."""
        return float(self.d.ctx[key][i])

    def plain(self, key: str, i: int) -> Any:
        """Row i of a context value as JSON: an enum's option, a number; None if absent."""
        value = self.value(key, i)
        if key in _ENUMS:
            return _ENUMS[key].option(value)
        return _number(value)


class _Batch(Reader):
    """What the answers read of every row, converted to Python values once for the batch: the
    per-row work is then list lookups, not array indexing."""

    def __init__(
        self,
        d: Decisions,
        model: ServingModel | None,
        factors: np.ndarray | None,
        X: np.ndarray | None,
    ):
        super().__init__(d)
        self.model, self.X = model, X
        self.fired, self.set_aside = d.fired.tolist(), d.overruled.tolist()
        self.advised, self.shaped = d.advice.tolist(), d.shaped.tolist()
        self.table = d.table.tolist()
        self.probs = None if d.probs is None else d.probs.tolist()
        self.contributions = None if factors is None else factors.tolist()
        ctx = d.ctx  # a Frame's matrix as lists; whatever else it holds is read from its arrays
        self._rows: Mapping[str, int] = {}
        self._arrays: Mapping[str, np.ndarray] = ctx
        self._context: list[list[float]] = []
        if isinstance(ctx, Frame):
            self._rows, self._arrays, self._context = ctx.layout.row, ctx.extra, ctx.matrix.tolist()

    def value(self, key: str, i: int) -> float:
        if key not in self._arrays:
            return self._context[self._rows[key]][i]
        return float(self._arrays[key][i])

    def group_value(self, group: str, i: int) -> Any:
        """The person's value for an input group: the field, or its first derived feature."""
        key = _GROUP_KEY[group]
        if key in self._arrays or key in self._rows:
            return self.plain(key, i)
        X = self.X
        return None if X is None else _number(X[i, _GROUP_FIRST[group]].item())


class _Row:
    """One row's decisions as Python values."""

    def __init__(self, b: _Batch, i: int):
        self.i = i
        _, _, model_band, band, rmin, rmax, direction, pace, confidence, urgency = b.table[i]
        self.band, self.model_band = int(band), int(model_band)
        self.range_min, self.range_max = int(rmin), int(rmax)
        self.direction = DIRECTIONS[int(direction)]
        self.weeks, self.confidence = int(pace), confidence
        self.urgency = URGENCY[int(urgency)]
        self.now = b.value("current", i)


# The summary's sentences, shared with the batch scorer's vectorised summaries.
LEADS = {
    "keep": "Keep an effective heel drop of {span} ({band}): your {now:g} mm fits.",
    "lower_gradually": "Lower gradually from {now:g} mm to {span} ({band}), in steps.",
    "raise": "Raise your effective heel drop from {now:g} mm to {span} ({band}).",
    "step_back_up": "Step back up from {now:g} mm to {span} ({band}).",
}
UNTIL_THEN = "Until then, keep your current {now:g} mm."
SET_ASIDE = "Set aside for a higher-priority rule: {names}."
NO_MODEL = "No model is loaded, so this answer comes from the rules alone."
AGREES = "The classifier agrees: {top} is its most likely band ({p:.0%})."  # a rule set the band
CHOSEN = "The band is the classifier's most likely one ({p:.0%})."  # the classifier chose it
MOVED = (
    "The classifier's own top band was {top} ({p:.0%}); the rules above moved the answer to {band}."
)


def span(lo: int, hi: int) -> str:
    return f"{lo} mm" if lo == hi else f"{lo}-{hi} mm"


def classifier_says(top: str, band: str, p: float, ruled: bool) -> str:
    """The classifier's part in the answer; `ruled`: a rule set the band (HD050)."""
    said = MOVED if top != band else AGREES if ruled else CHOSEN
    return said.format(top=top, band=band, p=p)


def _summary(
    b: _Batch,
    row: _Row,
    firings: list[dict[str, Any]],
    by_id: dict[str, Rule],
    advice: list[dict[str, str]],
) -> str:
    now, band = row.now, BANDS[row.band]
    active = [(by_id[f["id"]], f["message"]) for f in firings if not f["overruled"]]
    referrals = [message for rule, message in active if rule.referral]
    if any(rule.referral and not rule.provisional for rule, _ in active):  # no change of shoes
        return f"{' '.join(referrals)} {UNTIL_THEN.format(now=now)}"
    lead = LEADS[row.direction].format(span=span(row.range_min, row.range_max), band=band, now=now)
    shaped, index = b.shaped[row.i], b.d.book.index
    why = [message for rule, message in active if shaped[index[rule.id]]][:3]
    set_aside = [f["message"].split(":")[0] for f in firings if f["overruled"]]
    parts = [lead, *why]
    if set_aside:
        parts.append(SET_ASIDE.format(names="; ".join(set_aside)))
    if b.probs is None:
        parts.append(NO_MODEL)
    else:
        top = row.model_band
        ruled = any(rule.band for rule, _ in active)
        parts.append(classifier_says(BANDS[top], band, b.probs[row.i][top], ruled))
    if row.urgency:
        parts.append(referrals[0])
    parts += [a["text"] for a in advice if by_id[a["id"]].clinician]  # see a clinician about...
    return " ".join(parts)


def render(
    d: Decisions,
    model: ServingModel | None,
    factors: np.ndarray | None,
    X: np.ndarray | None,
) -> list[dict[str, Any]]:
    """The SPEC responses for every row, without their request ids and client refs."""
    b = _Batch(d, model, factors, X)
    return [_answer(b, i) for i in range(len(b.table))]


def _answer(b: _Batch, i: int) -> dict[str, Any]:
    d, model = b.d, b.model
    firings: list[dict[str, Any]] = []
    advice: list[dict[str, str]] = []
    reasons: list[str] = []
    by_id = {}
    set_aside, advised, rules = b.set_aside[i], b.advised[i], d.book.rules
    for j in compress(range(len(rules)), b.fired[i]):
        rule = rules[j]
        by_id[rule.id] = rule
        values = TemplateValues(b, i, rule) if rule.templated else None
        overruled = set_aside[j]
        firings.append(
            {
                "id": rule.id,
                "name": rule.name,
                "effect": _effect(rule, b, i),
                "message": rule.message if values is None else rule.message.format_map(values),
                "rationale": rule.rationale,
                "overruled": overruled,
            }
        )
        if rule.referral and not overruled:
            reasons.extend((TemplateValues(b, i, rule) if values is None else values).reasons())
        if advised[j]:
            advice.append({"id": rule.id, "text": rule.advice or ""})
    firings.sort(key=lambda f: str(f["id"]))
    advice.sort(key=lambda a: a["id"])
    row = _Row(b, i)
    referral = {"urgency": row.urgency, "reasons": reasons} if row.urgency else None
    top = row.model_band
    model_view: dict[str, Any] = {
        "version": model.version if model else None,
        "band_probabilities": {},
        "top_band": None,
        "top_factors": [],
        "overridden_by_rules": False,
    }
    if b.probs is not None:
        model_view["band_probabilities"] = {
            band: round(p, 4) for band, p in zip(BANDS, b.probs[i], strict=True)
        }
        model_view["top_band"] = BANDS[top]
        model_view["overridden_by_rules"] = top != row.band
    if b.contributions is not None:
        contributions = b.contributions[i]
        size = list(map(abs, contributions))
        top_groups = sorted(range(len(size)), key=size.__getitem__, reverse=True)[:TOP_FACTORS]
        model_view["top_factors"] = [
            {
                "feature": GROUPS[g],
                "value": b.group_value(GROUPS[g], i),
                "contribution": round(contributions[g], 4),
            }
            for g in top_groups  # the largest in size first; ties in group order
        ]
    recommendation = {
        "drop_mm": {"min": row.range_min, "max": row.range_max},
        "band": BANDS[row.band],
        "direction": row.direction,
        "transition_plan": plan(row),
        "confidence": round(row.confidence, 4),
        "refer_to_clinician": referral is not None,
        "referral": referral,
        "follow_up": {"retest_weeks": row.weeks, "step_back_if": STEP_BACK_IF},
    }
    return {
        "recommendation": recommendation,
        "explanation": {
            "summary": _summary(b, row, firings, by_id, advice),
            "rules": firings,
            "model": model_view,
            "missing_inputs": [p for k, p in _MISSING if isnan(b.value(k, i))],
        },
        "advice": advice,
        "degraded": model is None,
    }
