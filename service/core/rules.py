"""The rule catalogue: loaded from `rules.toml`, checked against the typed context, compiled."""

import hashlib
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
from service.core.features import DERIVED_OPTIONS, context_name
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
    "ktw_max": "number",
    "ktw_asym": "number",
    "stiffer_side": "text",
    "ktw_min_side": "text",
    "pain_max": "number",
    "pain3": "flag",
    "runs": "flag",
    "regular_runner": "flag",
    "lifting": "flag",
    "current_band": "number",
}
# Values each stage adds to the context for the stages after it: the allowed interval and the
# symptom interval (bounds), the range (band, then range).
_DECIDED: dict[str, Kind] = {
    name: "number"
    for name in ("allowed_min", "allowed_max", "symptom_min", "symptom_max", "range_min",
                 "range_max")
}  # fmt: skip
STAGE_VALUES: dict[str, dict[str, Kind]] = {"range": _DECIDED, "pace": _DECIDED}
TEMPLATE_EXTRAS = {"reasons", "floor_value", "ceiling_value"}
GRADE = re.compile(r"[ABC](/[ABC])?")
_REQUIRED = {"id", "name", "stage", "message", "grade", "sources", "rationale"}
_KEYS = _REQUIRED | {
    "when", "reasons", "referral", "floor", "ceiling", "policy", "undo", "confidence", "pace_weeks",
    "plan_note", "band", "why", "advice", "advice_when", "see_clinician", "firms_up",
}  # fmt: skip


class RuleError(HeeldropError):
    """The rule table is invalid; the service refuses to start with it."""


@dataclass(frozen=True)
class Reason:
    when: Node
    text: str


@dataclass(frozen=True)
class Rule:
    """One rule: stable id, readable name, condition, effect, message and its evidence."""

    id: str
    name: str
    stage: str
    when: Node
    message: str
    grade: str  # A randomised trial, B lab or cohort study, C expert or industry opinion
    sources: tuple[str, ...]
    rationale: str
    reasons: tuple[Reason, ...] = ()
    referral: str | None = None  # today | soon
    floor: Node | None = None
    ceiling: Node | None = None
    policy: bool = False  # a population-level default, not a symptom's bound
    undo: bool = False  # it marks a recent change that a referral undoes at once
    confidence: float | None = None
    pace_weeks: int | None = None
    plan_note: str | None = None
    band: str | None = None
    why: str | None = None  # the summary's reason when the rule shaped the answer
    advice: str | None = None
    advice_when: Node | None = None
    see_clinician: str | None = None  # the summary's sentence for advice that refers
    firms_up: str | None = None  # the summary's sentence on what would firm the answer up
    expressions: tuple[tuple[str, str], ...] = ()  # (floor or ceiling, as written)

    @property
    def bound(self) -> bool:
        return self.floor is not None or self.ceiling is not None

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
            return f"referral {self.referral}; no change of shoes but undoing a recent drop"
        parts = []
        if self.floor is not None:
            parts.append("floor {floor:.0f} mm")
        if self.ceiling is not None:
            parts.append("ceiling {ceiling:.0f} mm")
        if self.bound:
            parts[-1] += " (policy)" if self.policy else " (symptom)"
        if self.band:
            parts.append("band of the current drop, or the allowed band nearest it ({band})")
        if self.stage == "range":
            parts.append("range widened to include the current drop; keep")
        if self.pace_weeks:
            parts.append(f"{self.pace_weeks} weeks a step")
        if self.plan_note:
            parts.append("a note on each step")
        if self.confidence:
            parts.append(f"confidence x{self.confidence}")
        if self.advice:
            parts.append("advice")
        return ", ".join(parts)

    @cached_property
    def catalogue_effect(self) -> str:
        """What the rule does, its bounds as written in the table (for a clinic to read)."""
        written = dict(self.expressions)
        return (
            self.effect.replace("{floor:.0f}", written.get("floor", ""))
            .replace("{ceiling:.0f}", written.get("ceiling", ""))
            .replace("({band})", "")
        )


OPTIONS = {context_name(f.path): f.choices for f in FIELDS if f.kind == "enum"} | DERIVED_OPTIONS


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
    missing = _REQUIRED - raw.keys()
    unknown = raw.keys() - _KEYS
    if missing or unknown:
        raise RuleError(f"{rid}: missing {sorted(missing)}, unknown {sorted(unknown)}")
    if not re.fullmatch(r"HD\d{3}", rid) or raw["stage"] not in STAGES:
        raise RuleError(f"{rid}: bad id or stage {raw['stage']!r}")
    bound = "floor" in raw or "ceiling" in raw
    if bound and raw["stage"] != "bounds":
        raise RuleError(f"{rid}: a floor or ceiling belongs to the bounds stage")
    for flag in ("policy", "undo"):
        if flag in raw and not (bound and raw[flag] is True):
            raise RuleError(f"{rid}: {flag} = true marks a floor or ceiling, and nothing else")
    if "see_clinician" in raw and "advice" not in raw:
        raise RuleError(f"{rid}: see_clinician sums up the rule's advice, which it lacks")
    if ("pace_weeks" in raw or "plan_note" in raw) and raw["stage"] != "pace":
        raise RuleError(f"{rid}: a plan's pace belongs to the pace stage")
    grade, rationale = str(raw["grade"]), raw["rationale"]
    stated = f"Grade {grade}" in rationale or all(
        f"Grade {g}" in rationale for g in grade.split("/")
    )
    if not GRADE.fullmatch(grade) or not stated:
        raise RuleError(f"{rid}: a grade A, B or C (or two, as A/B), stated in the rationale")
    if not raw["sources"] or not all(isinstance(s, str) and s for s in raw["sources"]):
        raise RuleError(f"{rid}: sources lists where the evidence comes from")
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
        texts = [raw["message"], raw.get("advice", ""), *(r.text for r in reasons)]
        bad = set().union(*(template_names(t) for t in texts)) - allowed
        if bad:
            raise RuleError(f"{rid}: the message names unknown values {sorted(bad)}")
        return Rule(
            id=rid,
            name=raw["name"],
            stage=raw["stage"],
            when=when,
            message=raw["message"],
            grade=raw["grade"],
            sources=tuple(raw["sources"]),
            rationale=raw["rationale"],
            reasons=reasons,
            referral=raw.get("referral"),
            floor=compiler.value_tree(raw["floor"]) if "floor" in raw else None,
            ceiling=compiler.value_tree(raw["ceiling"]) if "ceiling" in raw else None,
            policy=raw.get("policy", False),
            undo=raw.get("undo", False),
            confidence=raw.get("confidence"),
            pace_weeks=raw.get("pace_weeks"),
            plan_note=raw.get("plan_note"),
            band=raw.get("band"),
            why=raw.get("why"),
            advice=raw.get("advice"),
            see_clinician=raw.get("see_clinician"),
            firms_up=raw.get("firms_up"),
            expressions=tuple((part, raw[part]) for part in ("floor", "ceiling") if part in raw),
            advice_when=(
                compiler.condition_tree(raw["advice_when"]) if "advice_when" in raw else None
            ),
        )
    except (ConditionError, KeyError) as exc:
        raise RuleError(f"{rid}: {exc}") from None


def rules_text(path: str | Path | None = None) -> str:
    """The rule table's text: the shipped one, or the file at `path`."""
    if path is None:
        return resources.files("service.core").joinpath("rules.toml").read_text(encoding="utf-8")
    return Path(path).read_text(encoding="utf-8")


def rules_version(path: str | Path | None = None) -> str:
    """A short digest of the rule table: which rules an answer was given under."""
    return hashlib.sha256(rules_text(path).encode("utf-8")).hexdigest()[:12]


def load_rules(path: str | Path | None = None) -> tuple[Rule, ...]:
    """Load and check the rule table; any problem is a RuleError naming the rule."""
    text = rules_text(path)
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
