"""Decisions as responses, a row each: the range and plan, rule firings, factors, summary."""

import math
from itertools import compress
from typing import Any

import numpy as np

from service.core.combine import DIRECTIONS, URGENCY, Decisions
from service.core.features import FACTOR_LABELS, FEATURE_INPUTS, FEATURES, GROUPS, context_name
from service.core.fields import BANDS, FIELDS
from service.core.model import ServingModel
from service.core.rules import Rule
from service.core.summary import INSERT_MAX_MM, slots
from service.core.texts import TemplateValues, Texts, messages, plain, value

STEP_BACK_IF = "pain rises by 2 or more out of 10, or a new pain appears"
AFTER_REFERRAL = {
    "soon": "come back once a clinician has assessed you; see them sooner if the pain rises by 2 "
    "or more out of 10",
    "today": "come back once a clinician has assessed you",  # nothing is sooner than today
}
# A raise's note, by (whether the person wears a heel insert, whether an insert can make it).
RAISE_NOTES = {
    (False, True): "Change to {drop} mm shoes, or add a heel insert; going higher can be done at "
    "once.",
    (False, False): "Change to {drop} mm shoes; going higher can be done at once.",
    (True, True): "Go to {drop} mm, shoe and insert together: higher shoes or a thicker insert; "
    "going higher can be done at once.",
    (True, False): "Go to {drop} mm, shoe and insert together, with higher shoes; going higher "
    "can be done at once.",
}
LOWER_NOTE = "Wear {drop} mm{together} for {weeks} weeks; go on only if nothing hurts more."
LAST_NOTE = "Wear {drop} mm{together} for {weeks} weeks; it is the new drop if nothing hurts more."
TOGETHER = {False: "", True: ", shoe and insert together,"}
TOP_FACTORS = 4
IMPORTANT_INPUTS = (
    "person.age_years",
    "person.body_mass_kg",
    "activity.primary",
    "footwear.years_in_heeled_shoes",
    "footwear.weeks_in_current_drop",
    "mobility.restriction_felt",
)
# The important inputs as the context names them, with the paths the answer names them by.
_MISSING = (
    *((context_name(p), p) for p in IMPORTANT_INPUTS),
    ("ktw_min", "mobility.knee_to_wall_cm"),
)
BOOLEANS = {context_name(f.path) for f in FIELDS if f.kind == "bool"}
# The value each group's factor shows: the effective drop (shoe and insert), the stiffer side's
# knee-to-wall, else the field itself.
_GROUP_KEY = {g: context_name(g) for g in GROUPS} | {
    "footwear.current_drop_mm": "current", "mobility.knee_to_wall_cm": "ktw_min",
}  # fmt: skip
_GROUP_FIRST = {
    g: next(k for k, f in enumerate(FEATURES) if FEATURE_INPUTS[f] == g) for g in GROUPS
}


def plan(
    current: float,
    direction: str,
    range_min: int,
    range_max: int,
    weeks: int,
    notes: list[str],
    insert: bool = False,
) -> list[dict[str, Any]]:
    """Lowering: steps of at most 4 mm ending at the range's max; raising: one step to the
    range's min; every step between the current drop and the range. `notes` (pace rules')
    are added to each lowering step's own; with an `insert`, each drop is said to count shoe
    and insert together."""
    if direction == "keep":
        return []
    if direction in ("raise", "step_back_up"):
        note = RAISE_NOTES[insert, range_min - current <= INSERT_MAX_MM].format(drop=range_min)
        return [{"step": 1, "drop_mm": range_min, "weeks": weeks, "note": note}]
    count = math.ceil((current - range_max) / 4)
    size = (current - range_max) / count
    drops = [math.ceil(current - k * size) for k in range(1, count)] + [range_max]
    return [
        {
            "step": k,
            "drop_mm": drop,
            "weeks": weeks,
            "note": " ".join(
                [
                    (LAST_NOTE if drop == range_max else LOWER_NOTE).format(
                        drop=drop, together=TOGETHER[insert], weeks=weeks
                    ),
                    *notes,
                ]
            ),
        }
        for k, drop in enumerate(drops, start=1)
    ]


def effect(rule: Rule, d: Decisions, i: int) -> str:
    """What the rule does on row i, its floor, ceiling or band filled in."""
    values: dict[str, Any] = {}
    if rule.floor is not None:
        values["floor"] = float(d.floors[rule.id][i])
    if rule.ceiling is not None:
        values["ceiling"] = float(d.ceilings[rule.id][i])
    if rule.band:
        values["band"] = BANDS[int(d.band[i])]
    return rule.effect.format_map(values) if values else rule.effect


def render(d: Decisions, model: ServingModel | None) -> list[dict[str, Any]]:
    """The API's responses for every row, without their request ids and client refs."""
    texts = Texts()
    said = messages(d, texts)
    learned_from = trained_on(model)
    summaries = texts.join(slots(d, texts, simulated=learned_from == "simulated"))
    rows = _Rows(d, said, learned_from)
    return [_answer(d, model, rows, i, summaries[i], texts.texts) for i in range(len(summaries))]


class _Rows:
    """The decisions' arrays as Python values, converted once for every row."""

    def __init__(self, d: Decisions, said: np.ndarray, trained_on: str | None):
        self.trained_on = trained_on
        self.fired, self.overruled = d.fired.T.tolist(), d.overruled.T.tolist()
        self.advice, self.said = d.advice.T.tolist(), said.T.tolist()
        self.band, self.direction = d.band.tolist(), d.direction.tolist()
        self.range_min, self.range_max = d.range_min.tolist(), d.range_max.tolist()
        self.pace, self.confidence = d.pace_weeks.tolist(), d.confidence.tolist()
        self.urgency, self.current = d.urgency.tolist(), d.ctx["current"].tolist()
        self.insert = (d.ctx["heel_insert_mm"] > 0).tolist()
        self.model_band = d.model_band.tolist()
        self.probs = None if d.probs is None else d.probs.tolist()
        self.factors = self.top = None
        if d.factors is not None:  # each row's largest contributions first (stable for ties)
            self.factors = d.factors.tolist()
            order = np.argsort(-np.abs(d.factors), axis=1, kind="stable")
            self.top = order[:, :TOP_FACTORS].tolist()


def _answer(
    d: Decisions, model: ServingModel | None, rows: _Rows, i: int, summary: str, texts: list[str]
) -> dict[str, Any]:
    rules = d.book.rules
    firings, advice, reasons, notes = [], [], [], []
    overruled, advised, said = rows.overruled[i], rows.advice[i], rows.said[i]
    for j in compress(range(len(rules)), rows.fired[i]):  # in id order
        rule = rules[j]
        firings.append(
            {
                "id": rule.id,
                "name": rule.name,
                "effect": effect(rule, d, i),
                "message": texts[said[j]],
                "rationale": rule.rationale,
                "overruled": overruled[j],
            }
        )
        if advised[j]:
            text = (rule.advice or "").format_map(TemplateValues(d, i, rule))
            advice.append({"id": rule.id, "text": text})
        if rule.referral and not overruled[j]:
            reasons += TemplateValues(d, i, rule).reasons()
        if rule.plan_note and not overruled[j]:
            notes.append(rule.plan_note)
    urgency = URGENCY[rows.urgency[i]]
    referral = {"urgency": urgency, "reasons": reasons} if urgency else None
    band, lo, hi = rows.band[i], rows.range_min[i], rows.range_max[i]
    direction, weeks = DIRECTIONS[rows.direction[i]], int(rows.pace[i])
    recommendation = {
        "drop_mm": {"min": lo, "max": hi},
        "band": BANDS[band],
        "direction": direction,
        "transition_plan": plan(rows.current[i], direction, lo, hi, weeks, notes, rows.insert[i]),
        "confidence": round(rows.confidence[i], 4),
        "refer_to_clinician": referral is not None,
        "referral": referral,
        "follow_up": {
            "retest_weeks": weeks,
            "step_back_if": AFTER_REFERRAL[urgency] if referral else STEP_BACK_IF,
        },
    }
    return {
        "recommendation": recommendation,
        "explanation": {
            "summary": summary,
            "rules": firings,
            "model": _model_view(d, model, rows, i),
            "missing_inputs": [p for k, p in _MISSING if math.isnan(value(d, k, i))],
        },
        "advice": advice,
        "degraded": model is None,
    }


def _model_view(d: Decisions, model: ServingModel | None, rows: _Rows, i: int) -> dict[str, Any]:
    view: dict[str, Any] = {
        "version": model.version if model else None,
        "trained_on": rows.trained_on,
        "band_probabilities": {},
        "top_band": None,
        "factors_explain": None,
        "top_factors": [],
        "overridden_by_rules": False,
    }
    if rows.probs is not None:
        top = rows.model_band[i]
        view["band_probabilities"] = {
            b: round(p, 4) for b, p in zip(BANDS, rows.probs[i], strict=True)
        }
        view["top_band"] = view["factors_explain"] = BANDS[top]
        view["overridden_by_rules"] = top != rows.band[i]
    if rows.factors is not None and rows.top is not None:
        contributions = rows.factors[i]
        view["top_factors"] = [
            {
                "feature": GROUPS[g],
                "label": FACTOR_LABELS[GROUPS[g]][0],
                "value": _group_value(d, GROUPS[g], i),
                "unit": FACTOR_LABELS[GROUPS[g]][1],
                "contribution": round(contributions[g], 4),
            }
            for g in rows.top[i]
        ]
    return view


def _group_value(d: Decisions, group: str, i: int) -> Any:
    """The person's value for an input group: the field (a yes or no as true or false), or
    whether its derived feature holds."""
    key = _GROUP_KEY[group]
    if key in d.ctx:
        value = plain(d, key, i)
        return bool(value) if key in BOOLEANS and value is not None else value
    if d.inputs is None:
        return None
    number = float(d.inputs[i, _GROUP_FIRST[group]])
    return None if math.isnan(number) else bool(number)


def trained_on(model: ServingModel | None) -> str | None:
    """What the model learned from: simulated, outcomes or mixed (None without a model, or
    when its metadata does not say)."""
    if model is None:
        return None
    said = model.metadata.get("trained_on")
    if said in ("simulated", "outcomes", "mixed"):
        return str(said)
    origin = model.metadata.get("training_data", {}).get("origin")
    return None if origin is None else "simulated" if origin == "simulated" else "outcomes"
