"""Fit and evaluate the band classifier: family by cross-validation, calibrated, held out."""

from collections.abc import Callable
from typing import Any

import numpy as np
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.model_selection import cross_val_score, train_test_split

from service.core.combine import RuleBook, decide
from service.core.features import BAND_HI, BAND_LO
from service.core.fields import BANDS
from service.core.rules import Rule
from service.training.data import Labelled
from service.training.estimator import SERVABLE, calibrated, candidates, served

CV_ROWS = 20_000  # family selection on a sample keeps retraining minutes, not hours
TEST_SHARE = 0.2
# Mixed with the simulated cohort, each real outcome counts as this many simulated people (so
# real rows together weigh as much as the simulated ones), up to MAX_REPEAT each: a few dozen
# outcomes steer the model without a handful of people deciding it.
MAX_REPEAT = 50


def _ece(y: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Top-label expected calibration error."""
    conf, hit = proba.max(axis=1), (np.array(BANDS)[proba.argmax(axis=1)] == y)
    idx = np.minimum((conf * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        sel = idx == b
        if sel.any():
            total += sel.mean() * abs(conf[sel].mean() - hit[sel].mean())
    return float(total)


def _contains(lo: np.ndarray, hi: np.ndarray, drop: np.ndarray) -> float:
    known = ~np.isnan(drop)
    return float(np.mean((lo <= drop) & (drop <= hi), where=known)) if known.any() else float("nan")


def evaluate(fast: Any, data: Labelled, idx: np.ndarray, rules: tuple[Rule, ...]) -> dict[str, Any]:
    """Held-out metrics, and how often each way of answering contains the outcome drop."""
    proba = fast.predict_proba(data.X[idx])
    y = data.y[idx]
    onehot = (np.array(BANDS) == y[:, None]).astype(float)
    predicted = np.array(BANDS)[proba.argmax(axis=1)]
    ctx = {k: v[idx] for k, v in data.ctx.items()}
    book = RuleBook(rules)
    both = decide(dict(ctx), book, proba)
    alone = decide(dict(ctx), book, None)
    top = proba.argmax(axis=1)
    drop = data.outcome_drop[idx]
    return {
        "rows": len(idx),
        "macro_f1": float(
            f1_score(y, predicted, labels=list(BANDS), average="macro", zero_division=0)
        ),
        "log_loss": float(-np.mean(np.log(np.clip(proba[onehot == 1], 1e-15, 1)))),
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
        "ece": _ece(y, proba),
        "accuracy": float(np.mean(predicted == y)),
        "confusion_matrix": confusion_matrix(y, predicted, labels=list(BANDS)).tolist(),
        "range_contains_outcome": {
            "model_and_rules": _contains(both.range_min, both.range_max, drop),
            "rules_only": _contains(alone.range_min, alone.range_max, drop),
            "model_only": _contains(BAND_LO[top], BAND_HI[top], drop),
        },
    }


def real_repeat(real: np.ndarray) -> int:
    """How many times each real row is fitted, given which training rows are real."""
    n_real = int(real.sum())
    n_simulated = len(real) - n_real
    if n_real == 0 or n_simulated == 0:
        return 1
    return int(np.clip(round(n_simulated / n_real), 1, MAX_REPEAT))


def _strata(data: Labelled) -> np.ndarray:
    """Split by band and by source (real or simulated) alike, where each has two rows or more."""
    strata = np.char.add(data.y.astype(str), np.where(data.real, "/real", ""))
    _, counts = np.unique(strata, return_counts=True)
    return strata if counts.min() >= 2 else data.y


def quiet(message: str) -> None:
    """No progress to report."""


def fit(
    data: Labelled, seed: int, rules: tuple[Rule, ...], say: Callable[[str], None] = quiet
) -> tuple[Any, dict[str, Any]]:
    """Select a family by CV log loss, fit it calibrated, and evaluate on a held-out split;
    `say` hears each step as it starts."""
    rows = np.arange(data.rows)
    train, test = train_test_split(
        rows, test_size=TEST_SHARE, random_state=seed, stratify=_strata(data)
    )
    repeat = real_repeat(data.real[train])
    weighted = np.concatenate([train, np.repeat(train[data.real[train]], repeat - 1)])
    rng = np.random.default_rng(seed)
    sample = rng.choice(train, size=min(CV_ROWS, len(train)), replace=False)
    cv = {}
    for name, est in candidates(seed).items():
        say(f"cross-validating {name} (3 folds of {len(sample)} training rows)")
        scores = cross_val_score(est, data.X[sample], data.y[sample], cv=3, scoring="neg_log_loss")
        cv[name] = {"log_loss": float(-scores.mean())}
        say(f"  {name}: log loss {cv[name]['log_loss']:.4f}")
    best = min(cv, key=lambda name: cv[name]["log_loss"])
    serving = min(SERVABLE, key=lambda name: cv[name]["log_loss"])
    if repeat > 1:
        say(f"each real outcome counts as {repeat} simulated people")
    say(f"fitting {serving} with temperature calibration on {len(train)} rows")
    model = calibrated(serving, seed).fit(data.X[weighted], data.y[weighted])
    say(f"evaluating on {len(test)} held-out rows, rules included")
    metrics = evaluate(served(model), data, test, rules)
    return model, {
        "cv": cv,
        "cv_best": best,
        "family": serving,
        "metrics": metrics,
        "split": {"train": len(train), "test": len(test), "seed": seed},
        "real_row_weight": repeat,
        "test_rows": test,
    }
