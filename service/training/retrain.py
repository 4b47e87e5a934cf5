"""Retraining end to end: validate, train, evaluate, register, report, and promote through gates."""

import dataclasses
import json
import platform
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata as dist
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.inspection import permutation_importance
from sqlalchemy import Engine

from service.core.errors import InvalidInput, ModelRefused
from service.core.features import FEATURES
from service.core.fields import BANDS
from service.core.model import ServingModel
from service.core.recommend import Recommender
from service.core.rules import load_rules
from service.registry import METADATA_FILE, Registry, save_model
from service.training.cases import check_case, load_cases
from service.training.data import Labelled, check_enough, merge, read_labelled
from service.training.drift import profile
from service.training.estimator import served
from service.training.fit import evaluate, fit, quiet
from service.training.outcomes import from_log
from service.training.report import write_report

IMPORTANCE_ROWS = 2000  # held-out rows used for permutation importance in the report
BOOTSTRAP = 400  # resamples of the gate rows
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


# What each gated metric means, in a line, and which way is better.
METRICS = {
    "macro_f1": ("how well the top band matches the band that worked, averaged over bands", 1),
    "log_loss": ("how little probability the model gave the band that worked", -1),
    "brier": ("the squared error of the five band probabilities", -1),
    "ece": ("the gap between stated confidence and how often the top band is right", -1),
}


def comparison(new: dict[str, Any], old: dict[str, Any] | None) -> list[str]:
    """One line per metric: its value, the champion's on the same rows, the signed change and
    whether that is better or worse, and what the metric means."""
    lines = []
    for name, (meaning, sign) in METRICS.items():
        if old is None:
            lines.append(f"{name} {new[name]:.4f}: {meaning}")
            continue
        change = new[name] - old[name]
        verdict = "same" if abs(change) < 5e-5 else "better" if change * sign > 0 else "worse"
        lines.append(f"{name} {old[name]:.4f} -> {new[name]:.4f} ({change:+.4f}, {verdict}): "
                     f"{meaning}")  # fmt: skip
    return lines


def _macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    k = len(BANDS)
    counts = np.bincount(truth * k + predicted, minlength=k * k).reshape(k, k)
    hits, actual, said = np.diag(counts), counts.sum(axis=1), counts.sum(axis=0)
    f1 = np.divide(2 * hits, actual + said, out=np.zeros(k), where=(actual + said) > 0)
    return float(f1.mean())


def surely_worse(
    y: np.ndarray, new: np.ndarray, old: np.ndarray, rounds: int = BOOTSTRAP, seed: int = 0
) -> dict[str, float]:
    """How much worse the new model's probabilities are than the old's on the same rows, at
    least, with 95% confidence (a paired bootstrap over the rows): macro-F1 points lost, and the
    log loss's relative rise. Negative: not surely worse at all. On a few hundred real outcomes
    a point difference is mostly noise; this is what the gates compare."""
    truth = np.array([BANDS.index(band) for band in y], dtype=np.int64)
    rows = np.arange(len(y))
    loss_new = -np.log(np.clip(new[rows, truth], 1e-15, 1))
    loss_old = -np.log(np.clip(old[rows, truth], 1e-15, 1))
    pick_new, pick_old = new.argmax(axis=1), old.argmax(axis=1)
    rng = np.random.default_rng(seed)
    f1_lost, rise = np.empty(rounds), np.empty(rounds)
    for r in range(rounds):
        i = rng.integers(0, len(y), len(y))
        f1_lost[r] = _macro_f1(truth[i], pick_old[i]) - _macro_f1(truth[i], pick_new[i])
        rise[r] = loss_new[i].mean() / max(loss_old[i].mean(), 1e-12) - 1
    return {
        "macro_f1": float(np.quantile(f1_lost, 0.05)),
        "log_loss": float(np.quantile(rise, 0.05)),
    }


def held_back(
    new: dict[str, Any],
    old: dict[str, Any] | None,
    cases: list[str],
    gates: Gates,
    sure: dict[str, float] | None = None,
) -> list[str]:
    """Reasons to hold a new model back (empty = promote); `new` and `old` were measured on the
    same rows. With `sure` (surely_worse's bounds) a metric holds the model back only when it is
    worse beyond the gate's margin with 95% confidence; without, by the point values."""
    reasons = list(cases) if gates.cases else []
    if old is None:
        return reasons
    f1_lost = sure["macro_f1"] if sure else old["macro_f1"] - new["macro_f1"]
    rise = sure["log_loss"] if sure else new["log_loss"] / old["log_loss"] - 1
    confident = " with 95% confidence" if sure else ""
    if f1_lost > gates.max_f1_drop:
        reasons.append(
            f"macro-F1 {new['macro_f1']:.4f} is worse than the champion's "
            f"{old['macro_f1']:.4f} by more than {gates.max_f1_drop}{confident}"
        )
    if rise > gates.max_log_loss_rise:
        reasons.append(
            f"log loss {new['log_loss']:.4f} is worse than the champion's "
            f"{old['log_loss']:.4f} by more than {gates.max_log_loss_rise:.0%}{confident}"
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


def _champion(registry: Registry) -> ServingModel | None:
    """The champion, if one loads: a champion that no longer loads cannot block its
    replacement."""
    try:
        return registry.load_champion()
    except ModelRefused:
        return None


def _gate_rows(data: Labelled, test: np.ndarray) -> tuple[np.ndarray, str]:
    """The held-out rows the gates compare both models on, and what they are: real people's
    outcomes when there are any (a simulated row says how well a model fits the simulator),
    otherwise every held-out row."""
    real = test[data.real[test]]
    if len(real):
        return real, f"{len(real)} held-out real outcomes"
    return test, f"{len(test)} held-out simulated rows"


def _training_data(
    paths: Sequence[str | Path], origin: str, log: Engine | None, since: datetime | None,
    say: Callable[[str], None],
) -> tuple[Labelled, dict[str, int]]:  # fmt: skip
    """Files and the log's outcomes as one training set, and the log's unused outcomes."""
    parts, unused = [], {}
    if paths:
        say(f"reading {', '.join(map(str, paths))}")
        parts.append(read_labelled(paths, origin))
    if log is not None:
        when = f" since {since:%Y-%m-%d}" if since else ""
        say(f"reading outcomes from the recommendation log{when}")
        from_db, skipped = from_log(log, since)
        unused = dict(skipped)
        labelled = from_db.rows if from_db else 0
        say(f"{labelled} outcomes label a band; {sum(unused.values())} do not "
            f"({', '.join(f'{k}: {v}' for k, v in unused.items()) or 'none'})")  # fmt: skip
        if from_db is not None:
            parts.append(from_db)
        elif not parts:
            raise InvalidInput(
                "the recommendation log has no outcome that labels a band yet (docs/outcomes.md "
                "says which do); mix in the simulated cohort with --data until it has"
            )
    if not parts:
        raise InvalidInput("no training data: give --data files, --from-db, or both")
    data = merge(parts)
    check_enough(data)
    return data, unused


def retrain(
    paths: Sequence[str | Path],
    promote: str,
    registry: Registry,
    cases_path: Path | None = None,
    seed: int = 0,
    origin: str = "simulated",
    gates: Gates = Gates(),
    say: Callable[[str], None] = quiet,
    log: Engine | None = None,
    since: datetime | None = None,
) -> Outcome:
    """Train on the labelled files at `paths` (their labels from `origin`) and, with `log`, on
    the recommendation log's outcomes (since `since`); register a new version, and promote it
    by `promote` (auto|never|force). `say` hears each step as it starts (the CLI prints them).
    InvalidInput when the data cannot train a model."""
    started = time.perf_counter()
    rules = load_rules()
    data, unused = _training_data(paths, origin, log, since, say)
    say(f"{data.rows} labelled rows ({', '.join(f'{k}: {v}' for k, v in data.sources.items())})")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        estimator, info = fit(data, seed, rules, say)
    for text in sorted({f"{w.category.__name__}: {str(w.message).splitlines()[0][:160]}"
                        for w in caught}):  # fmt: skip
        say(f"note: scikit-learn warned: {text}")
    fast = served(estimator)
    test = info.pop("test_rows")
    gate_rows, gate_label = _gate_rows(data, test)
    with registry.lock():
        real = len(gate_rows) != len(test)
        new = evaluate(fast, data, gate_rows, rules) if real else info["metrics"]
        champion = _champion(registry)
        old, sure = None, None
        if champion is not None:
            say(f"evaluating the champion on the same {gate_label}")
            old = evaluate(champion.fast, data, gate_rows, rules)
            X, y = data.X[gate_rows], data.y[gate_rows]
            sure = surely_worse(y, fast.predict_proba(X), champion.fast.predict_proba(X), seed=seed)
        version = registry.new_version()
        meta: dict[str, Any] = {
            "version": version,
            "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "trained_on": data.trained_on,
            "features": list(FEATURES),
            "bands": list(BANDS),
            "versions": library_versions(),
            "training_data": {
                "paths": [str(p) for p in paths],
                "from_db": log is not None,
                "since": since.isoformat() if since else None,
                "rows": data.rows,
                "sources": data.sources,
                "real_rows": int(data.real.sum()),
                "outcomes_not_labelling": unused,
                "invalid_rows": len(data.invalid),
                "invalid_report": dict(list(data.invalid.items())[:100]),
                "digest": data.digest,
                "origin": origin if paths else "outcomes",  # of the files' labels
            },
            **info,
            "champion_on_same_split": old,
            "gate": {"rows": gate_label, "new": new, "champion": old, "surely_worse": sure},
            "gates": dataclasses.asdict(gates),
            "training_profile": profile(data.ctx),  # what `heeldrop drift` compares the log with
        }
        candidate = ServingModel(version, meta, fast, registry.root / version)
        say(f"checking the clinical cases{f' of {cases_path}' if cases_path else ''}")
        cases = case_failures(Recommender(rules, candidate), cases_path)
        reasons = held_back(new, old, cases, gates, sure)
        meta["clinical_cases"] = {"path": str(cases_path or "shipped"), "failures": cases}
        meta["gate_reasons"] = reasons
        meta["gate"]["comparison"] = comparison(new, old)
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
