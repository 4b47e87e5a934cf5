"""Retraining end to end: validate, train, evaluate, register, report, and promote through gates."""

import dataclasses
import json
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as dist
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.inspection import permutation_importance

from service.core.errors import ModelRefused
from service.core.features import FEATURES
from service.core.fields import BANDS
from service.core.model import ServingModel
from service.core.recommend import Recommender
from service.core.rules import Rule, load_rules
from service.registry import METADATA_FILE, Registry, save_model
from service.training.cases import check_case, load_cases
from service.training.data import Labelled, read_labelled
from service.training.estimator import served
from service.training.fit import evaluate, fit, quiet
from service.training.report import write_report

IMPORTANCE_ROWS = 2000  # held-out rows used for permutation importance in the report
LIBRARIES = ("scikit-learn", "skops", "numpy", "pandas", "scipy", "heeldrop")


@dataclass(frozen=True)
class Gates:
    """Promotion gates against the champion, evaluated on the same held-out split."""

    max_f1_drop: float = 0.01  # macro-F1 may be worse by at most this
    max_log_loss_rise: float = 0.02  # log loss may be worse by at most 2%
    cases: bool = True  # every article-derived clinical case must hold


@dataclass
class Outcome:
    version: str
    promoted: bool
    reasons: list[str]
    metadata: dict[str, Any]


def library_versions() -> dict[str, str]:
    return {"python": platform.python_version(), **{n: dist.version(n) for n in LIBRARIES}}


def case_failures(recommender: Recommender, cases_path: Path | None = None) -> list[str]:
    """Every clinical case (the shipped ones, or those at `cases_path`) that no longer holds."""
    if cases_path is not None and not cases_path.is_file():
        return [f"clinical cases not found at {cases_path}"]
    failures = []
    for case in load_cases(cases_path):
        for problem in check_case(case, recommender.recommend(case["request"])):
            failures.append(f"{case['id']}: {problem}")
    return failures


def held_back(
    new: dict[str, Any], old: dict[str, Any] | None, cases: list[str], gates: Gates
) -> list[str]:
    """Reasons to hold a new model back (empty = promote)."""
    reasons = list(cases) if gates.cases else []
    if old is not None:
        if new["macro_f1"] < old["macro_f1"] - gates.max_f1_drop:
            reasons.append(
                f"macro-F1 {new['macro_f1']:.4f} is worse than the champion's "
                f"{old['macro_f1']:.4f} by more than {gates.max_f1_drop}"
            )
        if new["log_loss"] > old["log_loss"] * (1 + gates.max_log_loss_rise):
            reasons.append(
                f"log loss {new['log_loss']:.4f} is worse than the champion's "
                f"{old['log_loss']:.4f} by more than {gates.max_log_loss_rise:.0%}"
            )
    return reasons


def _importances(estimator: Any, data: Labelled, test: np.ndarray, seed: int) -> dict[str, float]:
    """Permutation importance (drop in log loss) of each feature on held-out rows."""
    rows = test[:IMPORTANCE_ROWS]
    result = permutation_importance(
        estimator,
        data.X[rows],
        data.y[rows],
        scoring="neg_log_loss",
        n_repeats=3,
        random_state=seed,
    )
    return {name: float(v) for name, v in zip(FEATURES, result.importances_mean, strict=True)}


def _champion_metrics(
    registry: Registry,
    data: Labelled,
    test: np.ndarray,
    rules: tuple[Rule, ...],
    say: Callable[[str], None],
) -> dict[str, Any] | None:
    """The champion re-evaluated on the new held-out split, so both face the same rows."""
    try:
        champion = registry.load_champion()
    except ModelRefused:
        return None  # a champion that no longer loads cannot block its replacement
    if champion is None:
        return None
    say("evaluating the champion on the same held-out rows")
    return evaluate(champion.fast, data, test, rules)


def retrain(
    paths: Sequence[str | Path],
    promote: str,
    registry: Registry,
    cases_path: Path | None = None,
    seed: int = 0,
    origin: str = "simulated",
    gates: Gates = Gates(),
    say: Callable[[str], None] = quiet,
) -> Outcome:
    """Train on `paths`, register a new version, and promote it by `promote` (auto|never|force);
    `say` hears each step as it starts (the CLI prints them)."""
    started = time.perf_counter()
    rules = load_rules()
    say(f"reading {', '.join(map(str, paths))}")
    data = read_labelled(paths)
    say(f"{data.rows} labelled rows")
    estimator, info = fit(data, seed, rules, say)
    fast = served(estimator)
    test = info.pop("test_rows")
    with registry.lock():
        old = _champion_metrics(registry, data, test, rules, say)
        version = registry.new_version()
        meta: dict[str, Any] = {
            "version": version,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "features": list(FEATURES),
            "bands": list(BANDS),
            "versions": library_versions(),
            "training_data": {
                "paths": [str(p) for p in paths],
                "rows": data.rows,
                "invalid_rows": len(data.invalid),
                "invalid_report": dict(list(data.invalid.items())[:100]),
                "digest": data.digest,
                "origin": origin,
            },
            **info,
            "champion_on_same_split": old,
            "gates": dataclasses.asdict(gates),
        }
        candidate = ServingModel(version, meta, fast, registry.root / version)
        say(f"checking the clinical cases{f' of {cases_path}' if cases_path else ''}")
        cases = case_failures(Recommender(rules, candidate), cases_path)
        reasons = held_back(meta["metrics"], old, cases, gates)
        meta["clinical_cases"] = {"path": str(cases_path or "shipped"), "failures": cases}
        meta["gate_reasons"] = reasons
        meta["training_seconds"] = round(time.perf_counter() - started, 1)
        say(f"writing {version}: the model, its metadata and its report")
        with registry.staging(version) as folder:
            meta |= save_model(estimator, folder)
            (folder / METADATA_FILE).write_text(json.dumps(meta, indent=2) + "\n", "utf-8")
            y_test, proba = data.y[test], fast.predict_proba(data.X[test])
            champion_meta = registry.metadata(registry.champion() or "") if old else None
            if champion_meta is not None:
                champion_meta = {**champion_meta, "metrics": old}
            importances = _importances(estimator, data, test, seed)
            write_report(folder, meta, y_test, proba, importances, champion_meta)
        if promote == "force" or (promote == "auto" and not reasons):
            registry.promote(version)
            return Outcome(version, True, reasons, meta)
        if promote == "never":
            reasons = ["--promote never", *reasons]
        return Outcome(version, False, reasons, meta)
