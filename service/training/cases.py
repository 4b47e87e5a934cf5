"""Clinical test cases as data: load them and check an API response against their expectations."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from service.core.schema import effective_drop

SHIPPED = resources.files("service.training").joinpath("cases.json")  # the article's people

RULE_KEYS = ("rules_fired", "rules_not_fired", "rules_overruled")
RANGE_KEYS = ("band_in", "direction_in", "drop_min_at_least", "drop_max_at_most")
OTHER_KEYS = ("refer", "advice_ids", "no_advice", "plan_steps_at_most_mm")
EXPECT_KEYS = frozenset((*RULE_KEYS, *RANGE_KEYS, *OTHER_KEYS))


def load_cases(path: str | Path | None = None) -> list[dict[str, Any]]:
    """Read the JSON list of cases at path (default: the shipped cases)."""
    source = SHIPPED if path is None else Path(path)
    cases = json.loads(source.read_text(encoding="utf-8"))
    if not isinstance(cases, list) or not all(isinstance(c, dict) for c in cases):
        raise ValueError(f"{path}: expected a JSON list of case objects")
    return cases


def _rule_failures(exp: dict[str, Any], rules: dict[str, bool]) -> list[str]:
    """Failures of rules_fired, rules_not_fired and rules_overruled."""
    out = []
    for rid in exp.get("rules_fired", []):
        if rid not in rules or rules[rid]:
            out.append(f"rules_fired: {rid} is {'overruled' if rid in rules else 'absent'}")
    out += [f"rules_not_fired: {r} appears" for r in exp.get("rules_not_fired", []) if r in rules]
    for rid in exp.get("rules_overruled", []):
        if not rules.get(rid, False):
            out.append(f"rules_overruled: {rid} is {'not overruled' if rid in rules else 'absent'}")
    return out


def _plan_failures(limit: float, current: float, plan: list[dict[str, Any]]) -> list[str]:
    """Failures of plan_steps_at_most_mm: a lowering step larger than limit."""
    out, prev = [], current
    for step in plan:
        drop = float(step.get("drop_mm", prev))
        if prev - drop > limit:
            out.append(f"plan_steps_at_most_mm: step {step.get('step')}: {prev:g} -> {drop:g} mm")
        prev = drop
    return out


def check_case(case: dict[str, Any], response: dict[str, Any]) -> list[str]:
    """Human-readable failures of case["expect"] against an API response (empty list: it holds)."""
    exp: dict[str, Any] = case.get("expect") or {}
    rec: dict[str, Any] = response.get("recommendation") or {}
    explanation = response.get("explanation") or {}
    rules = {r.get("id"): bool(r.get("overruled")) for r in explanation.get("rules") or []}
    advice = [a.get("id") for a in response.get("advice") or []]
    drop = rec.get("drop_mm") or {}
    out = [f"unknown expectation key {key!r}" for key in exp if key not in EXPECT_KEYS]
    if "refer" in exp:
        referral = rec.get("referral")
        got = referral.get("urgency") if isinstance(referral, dict) else None
        if (got != exp["refer"]) if exp["refer"] else (referral is not None):
            out.append(f"refer: expected {exp['refer'] or 'no referral'}, got {referral}")
        if bool(rec.get("refer_to_clinician")) != (referral is not None):
            out.append("refer: refer_to_clinician disagrees with referral")
    out += _rule_failures(exp, rules)
    for key, field in (("band_in", "band"), ("direction_in", "direction")):
        if key in exp and rec.get(field) not in exp[key]:
            out.append(f"{key}: {field} {rec.get(field)!r} not in {exp[key]}")
    low, high = drop.get("min"), drop.get("max")
    if "drop_min_at_least" in exp and (low is None or low < exp["drop_min_at_least"]):
        out.append(f"drop_min_at_least: min {low} < {exp['drop_min_at_least']}")
    if "drop_max_at_most" in exp and (high is None or high > exp["drop_max_at_most"]):
        out.append(f"drop_max_at_most: max {high} > {exp['drop_max_at_most']}")
    out += [f"advice_ids: {aid} missing" for aid in exp.get("advice_ids", []) if aid not in advice]
    if exp.get("no_advice") and advice:
        out.append(f"no_advice: advice given {advice}")
    if "plan_steps_at_most_mm" in exp:
        plan = rec.get("transition_plan") or []
        out += _plan_failures(
            exp["plan_steps_at_most_mm"],
            effective_drop(case.get("request", {}).get("footwear") or {}),
            plan,
        )
    return [f"[{case.get('id', '?')}] {msg}" for msg in out]
