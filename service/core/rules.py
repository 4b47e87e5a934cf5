"""The rule catalogue: loaded from `rules.toml`, checked against the typed context, compiled."""

import re
import string
import tomllib
from dataclasses import dataclass
from functools import cached_property
from importlib import resources
from pathlib import Path
from typing import Any

from service.core.conditions import Compiler, ConditionError, Kind, Node, reads
from service.core.errors import HeeldropError
from service.core.features import context_name
from service.core.fields import FIELDS

STAGES = ("referral", "bounds", "advice", "band", "range", "pace")
_KIND_OF_FIELD: dict[str, Kind] = {
    "number": "number",
    "count": "number",
    "severity": "number",
    "bool": "bool",
    "enum": "text",
}
DERIVED: dict[str, Kind] = {
    "current": "number",
    "ktw_left": "number",
    "ktw_right": "number",
    "ktw_min": "number",
    "ktw_asym": "number",
    "pain3": "flag",
    "regular_runner": "flag",
    "lifting": "flag",
    "current_band": "number",
}
# Values each stage adds to the context for the stages after it.
STAGE_VALUES: dict[str, dict[str, Kind]] = {
    "range": {
        "allowed_min": "number",
        "allowed_max": "number",
        "range_min": "number",
        "range_max": "number",
    },
    "pace": {
        "allowed_min": "number",
        "allowed_max": "number",
        "range_min": "number",
        "range_max": "number",
    },
}
TEMPLATE_EXTRAS = {"reasons", "floor_value", "ceiling_value"}
_KEYS = {
    "id",
    "name",
    "stage",
    "when",
    "reasons",
    "referral",
    "floor",
    "ceiling",
    "confidence",
    "pace_weeks",
    "band",
    "provisional",
    "message",
    "advice",
    "advice_when",
    "clinician",
    "rationale",
}


class RuleError(HeeldropError):
    """The rule table is invalid; the service refuses to start with it."""


@dataclass(frozen=True)
class Reason:
    when: Node
    text: str


@dataclass(frozen=True)
class Rule:
    """One rule: stable id, readable name, condition, effect, message and rationale."""

    id: str
    name: str
    stage: str
    when: Node
    message: str
    rationale: str
    reasons: tuple[Reason, ...] = ()
    referral: str | None = None
    provisional: bool = False
    floor: Node | None = None
    ceiling: Node | None = None
    confidence: float | None = None
    pace_weeks: int | None = None
    band: str | None = None
    advice: str | None = None
    advice_when: Node | None = None
    clinician: bool = False  # the advice sends the person to a clinician: the summary says it

    @cached_property
    def reads(self) -> tuple[str, ...]:
        """The values its message reads, its reasons' included, "reasons" excepted."""
        names = template_names(self.message)
        if "reasons" in names:
            names |= set().union(*(template_names(r.text) for r in self.reasons))
        return tuple(sorted(names - {"reasons"}))

    @cached_property
    def effect(self) -> str:
        """What the rule does, said once: a template of its {floor}, {ceiling} and {band}."""
        if self.referral:
            if self.provisional:
                return (
                    f"referral {self.referral}; provisional answer, confidence x{self.confidence}"
                )
            return f"referral {self.referral}; no change of shoes"
        parts = []
        if self.floor is not None:
            parts.append("floor {floor:.0f} mm")
        if self.ceiling is not None:
            parts.append("ceiling {ceiling:.0f} mm")
        if self.band:
            parts.append("band of the current drop ({band})")
        if self.stage == "range":
            parts.append("range widened to include the current drop; keep")
        if self.pace_weeks:
            parts.append(f"{self.pace_weeks} weeks a step")
        if self.confidence:
            parts.append(f"confidence x{self.confidence}")
        if self.advice:
            parts.append("advice")
        return ", ".join(parts)


OPTIONS = {context_name(f.path): f.choices for f in FIELDS if f.kind == "enum"}


def context_kinds() -> dict[str, Kind]:
    """Every name a rule may use, with its kind."""
    kinds = {context_name(f.path): _KIND_OF_FIELD[f.kind] for f in FIELDS if f.kind != "text"}
    return kinds | DERIVED


def template_names(template: str) -> set[str]:
    """The values a message template reads; the loader allows only plain context names."""
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


def _compile(raw: dict[str, Any], earlier: frozenset[str]) -> Rule:
    """One rule, checked; `earlier` are the ids of earlier stages' rules, which fired() may name."""
    rid = raw.get("id", "?")
    missing = {"id", "name", "stage", "message", "rationale"} - raw.keys()
    unknown = raw.keys() - _KEYS
    if missing or unknown:
        raise RuleError(f"{rid}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    if not re.fullmatch(r"HD\d{3}", rid) or raw["stage"] not in STAGES:
        raise RuleError(f"{rid}: bad id or stage {raw['stage']!r}")
    if ("floor" in raw or "ceiling" in raw) and raw["stage"] != "bounds":
        raise RuleError(f"{rid}: a floor or ceiling belongs to the bounds stage")
    if raw.get("clinician") is not None and (raw["clinician"] is not True or "advice" not in raw):
        raise RuleError(f"{rid}: clinician = true marks a rule's advice, and nothing else")
    if not re.search(r"Grade [ABC]|[Ss]ervice policy", raw["rationale"]):
        raise RuleError(f"{rid}: the rationale must state its evidence grade")
    kinds = context_kinds() | STAGE_VALUES.get(raw["stage"], {})
    compiler = Compiler(kinds, earlier, OPTIONS)
    allowed = set(kinds) | TEMPLATE_EXTRAS
    try:
        reasons = tuple(
            Reason(compiler.condition_tree(r["when"]), r["text"]) for r in raw.get("reasons", ())
        )
        if "when" in raw:
            when = compiler.condition_tree(raw["when"])
        elif reasons:
            when = compiler.condition_tree(" or ".join(f"({r['when']})" for r in raw["reasons"]))
        else:
            raise RuleError(f"{rid}: needs 'when' or 'reasons'")
        if not all(reads(tree) for tree in (when, *(r.when for r in reasons))):
            raise RuleError(f"{rid}: a condition must read something from the request")
        texts = [raw["message"], *(r.text for r in reasons)]
        bad = set().union(*(template_names(t) for t in texts)) - allowed
        if bad:
            raise RuleError(f"{rid}: the message names unknown values {sorted(bad)}")
        return Rule(
            id=rid,
            name=raw["name"],
            stage=raw["stage"],
            when=when,
            message=raw["message"],
            rationale=raw["rationale"],
            reasons=reasons,
            referral=raw.get("referral"),
            provisional=raw.get("provisional", False),
            floor=compiler.value_tree(raw["floor"]) if "floor" in raw else None,
            ceiling=compiler.value_tree(raw["ceiling"]) if "ceiling" in raw else None,
            confidence=raw.get("confidence"),
            pace_weeks=raw.get("pace_weeks"),
            band=raw.get("band"),
            advice=raw.get("advice"),
            clinician=raw.get("clinician", False),
            advice_when=(
                compiler.condition_tree(raw["advice_when"]) if "advice_when" in raw else None
            ),
        )
    except (ConditionError, KeyError) as exc:
        raise RuleError(f"{rid}: {exc}") from None


def load_rules(path: str | Path | None = None) -> tuple[Rule, ...]:
    """Load and check the rule table; any problem is a RuleError naming the rule."""
    if path is None:
        text = resources.files("service.core").joinpath("rules.toml").read_text(encoding="utf-8")
    else:
        text = Path(path).read_text(encoding="utf-8")
    raw_rules = tomllib.loads(text).get("rule", [])
    ids = [r.get("id") for r in raw_rules]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise RuleError(f"rule ids must be unique; repeated: {', '.join(map(str, repeated))}")
    order = {stage: k for k, stage in enumerate(STAGES)}
    rank = {r.get("id"): order.get(r.get("stage"), len(STAGES)) for r in raw_rules}
    # fired() reads a finished stage: a rule of its own or a later stage has not fired yet
    return tuple(
        _compile(raw, frozenset(i for i in ids if rank[i] < rank[raw.get("id")]))
        for raw in raw_rules
    )
