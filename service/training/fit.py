"""Train and evaluate the band classifier from labelled records (request columns + outcome_band)."""

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import confusion_matrix, f1_score
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from service.core.combine import RuleBook, decide
from service.core.errors import InvalidInput
from service.core.features import BAND_HI, BAND_LO, features
from service.core.fields import BANDS
from service.core.model import compile_estimator
from service.core.rules import Rule
from service.core.validate import check_frame

LABEL, OUTCOME_DROP = "outcome_band", "outcome_drop_mm"
SOURCE = "_source"  # file:line of each training row, for the invalid-row report
MAX_INVALID_SHARE = 0.05  # more invalid rows than this and the data set is refused
CV_ROWS = 20_000  # family selection on a sample keeps retraining minutes, not hours
TEST_SHARE = 0.2
# Families with a numpy evaluator proven equal to scikit-learn (service/model.py); another
# family that wins cross-validation is reported as `cv_best` but not served.
SERVABLE = ("logistic_regression",)


@dataclass
class Labelled:
    """Validated training rows: model inputs, labels, outcome drops and provenance."""

    X: np.ndarray
    ctx: Mapping[str, Any]
    y: np.ndarray
    outcome_drop: np.ndarray
    digest: str
    rows: int
    invalid: dict[str, list[str]]


def read_labelled(paths: Sequence[str | Path]) -> Labelled:
    """Read, combine, de-duplicate and validate labelled CSVs; InvalidInput if unusable.

    Invalid rows are reported by file, line and column; up to 5% of them are left out.
    """
    digest = hashlib.sha256()
    frames = []
    for path in paths:
        try:
            digest.update(Path(path).read_bytes())
            frame = pd.read_csv(Path(path), dtype=str, keep_default_na=False)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            raise InvalidInput(f"{path}: not a readable CSV ({exc})") from None
        if LABEL not in frame.columns:
            raise InvalidInput(f"{path}: no {LABEL} column")
        frame.insert(0, SOURCE, [f"{Path(path).name}:{line}" for line in range(2, len(frame) + 2)])
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[~frame.drop(columns=SOURCE).duplicated()].reset_index(drop=True)
    if frame.empty:
        raise InvalidInput("the training data has no rows")
    checked = check_frame(frame)
    labels = frame[LABEL].fillna("").str.strip().to_numpy(dtype=str)
    errors = checked.errors
    for row in np.flatnonzero(~np.isin(labels, BANDS)):
        errors.setdefault(int(row), {})[LABEL] = [f"must be one of {', '.join(BANDS)}"]
    sources = frame[SOURCE].to_numpy()
    report = {
        str(sources[row]): [f"{col}: {'; '.join(msgs)}" for col, msgs in cols.items()]
        for row, cols in sorted(errors.items())
    }
    if len(errors) > MAX_INVALID_SHARE * len(frame):
        raise InvalidInput(f"{len(errors)} of {len(frame)} rows are invalid (over 5%)", report)
    keep = np.ones(len(frame), dtype=bool)
    keep[list(errors)] = False
    outcome = np.full(len(frame), np.nan)
    if OUTCOME_DROP in frame.columns:
        outcome = pd.to_numeric(frame[OUTCOME_DROP], errors="coerce").to_numpy(np.float64)
    ctx, X = features({k: v[keep] for k, v in checked.columns.items()})
    return Labelled(
        X, ctx, labels[keep], outcome[keep], digest.hexdigest(),
        int(keep.sum()), report,
    )  # fmt: skip


def candidates(seed: int) -> dict[str, Any]:
    """The model families compared by cross-validated log loss."""
    logistic = Pipeline(
        [
            ("impute", SimpleImputer(strategy="median", keep_empty_features=True)),
            ("scale", StandardScaler()),
            ("clf", LogisticRegression(C=1.0, max_iter=2000)),
        ]
    )
    boosting = HistGradientBoostingClassifier(
        max_iter=300, learning_rate=0.1, early_stopping=True, random_state=seed
    )
    return {"logistic_regression": logistic, "hist_gradient_boosting": boosting}


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
        "macro_f1": float(f1_score(y, predicted, labels=list(BANDS), average="macro")),
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


def quiet(message: str) -> None:
    """No progress to report."""


def fit(
    data: Labelled, seed: int, rules: tuple[Rule, ...], say: Callable[[str], None] = quiet
) -> tuple[Any, dict[str, Any]]:
    """Select a family by CV log loss, fit it calibrated, and evaluate on a held-out split;
    `say` hears each step as it starts."""
    rows = np.arange(data.rows)
    train, test = train_test_split(rows, test_size=TEST_SHARE, random_state=seed, stratify=data.y)
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
    say(f"fitting {serving} with temperature calibration on {len(train)} rows")
    model = CalibratedClassifierCV(
        candidates(seed)[serving], method="temperature", cv=3, ensemble=False
    )
    model.fit(data.X[train], data.y[train])
    say(f"evaluating on {len(test)} held-out rows, rules included")
    metrics = evaluate(compile_estimator(model), data, test, rules)
    return model, {
        "cv": cv,
        "cv_best": best,
        "family": serving,
        "metrics": metrics,
        "split": {"train": len(train), "test": len(test), "seed": seed},
        "test_rows": test,
    }
