"""The classifier: a scikit-learn model saved with skops, served through a numpy evaluator.

A scikit-learn pipeline costs 3-14 ms a call on one row, most of it overhead; the fitted
parameters evaluated in numpy cost microseconds and give the same probabilities (a test proves
it on many rows). The same evaluator scores one request or a million rows.
"""

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import sklearn
import skops.io as sio
from sklearn.calibration import CalibratedClassifierCV
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from service.errors import ModelRefused
from service.features import FEATURES
from service.fields import BANDS

MODEL_FILE = "model.skops"
METADATA_FILE = "metadata.json"
# The only types a model file may contain; skops refuses to build anything else.
TRUSTED_TYPES = [
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.impute._base.SimpleImputer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.utils._bunch.Bunch",
    "numpy.dtype",
    "numpy.ndarray",
    "builtins.slice",
]


@dataclass(frozen=True)
class LinearSoftmax:
    """Impute, standardise, a multinomial linear model, temperature: in numpy, bands in order."""

    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    beta: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        X = np.where(np.isnan(X), self.fill, X)
        logits = ((X - self.mean) / self.scale) @ self.coef.T + self.intercept
        logits *= self.beta
        logits -= logits.max(axis=1, keepdims=True)
        np.exp(logits, out=logits)
        logits /= logits.sum(axis=1, keepdims=True)
        return logits


def compile_estimator(estimator: Any) -> LinearSoftmax:
    """The numpy evaluator for a fitted model; ModelRefused for an unsupported structure."""
    beta = 1.0
    classes = list(getattr(estimator, "classes_", []))
    if isinstance(estimator, CalibratedClassifierCV):
        if len(estimator.calibrated_classifiers_) != 1 or estimator.method != "temperature":
            raise ModelRefused("only a single temperature-calibrated model can be served")
        calibrated = estimator.calibrated_classifiers_[0]
        beta = float(calibrated.calibrators[0].beta_)
        estimator = calibrated.estimator
    steps = getattr(estimator, "named_steps", {})
    imputer, scaler, clf = steps.get("impute"), steps.get("scale"), steps.get("clf")
    if not (
        isinstance(imputer, SimpleImputer)
        and isinstance(scaler, StandardScaler)
        and isinstance(clf, LogisticRegression)
    ):
        raise ModelRefused("the model is not an impute/scale/logistic pipeline")
    if sorted(classes) != sorted(BANDS):
        raise ModelRefused(f"the model's classes {classes} are not the five bands")
    order = [classes.index(b) for b in BANDS]  # the inner model was fitted on encoded labels
    return LinearSoftmax(
        fill=imputer.statistics_,
        mean=scaler.mean_,
        scale=scaler.scale_,
        coef=clf.coef_[order],
        intercept=clf.intercept_[order],
        beta=beta,
    )


@dataclass(frozen=True)
class ServingModel:
    """A loaded, checked model: its version, metadata and fast evaluator."""

    version: str
    metadata: dict[str, Any]
    estimator: Any
    fast: LinearSoftmax

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.fast.predict_proba(X)

    @property
    def baseline(self) -> np.ndarray:
        """A typical training row (the imputer's medians): the reference for attributions."""
        return self.fast.fill


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(estimator: Any, folder: Path) -> str:
    """Write `model.skops` into `folder`; return its sha256."""
    path = folder / MODEL_FILE
    sio.dump(estimator, path)
    return sha256(path)


def load_model(folder: str | Path) -> ServingModel:
    """Load a registered version, refusing it unless every check passes."""
    folder = Path(folder)
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelRefused(f"{folder.name}: no readable metadata.json ({exc})") from None
    path = folder / MODEL_FILE
    if not path.is_file() or sha256(path) != metadata.get("sha256"):
        raise ModelRefused(f"{folder.name}: model.skops is missing or its sha256 does not match")
    trained_with = metadata.get("versions", {}).get("scikit-learn")
    if trained_with != sklearn.__version__:
        raise ModelRefused(
            f"{folder.name}: trained with scikit-learn {trained_with}, "
            f"this is {sklearn.__version__}; retrain it"
        )
    if tuple(metadata.get("features", ())) != FEATURES:
        raise ModelRefused(f"{folder.name}: trained on other features than this code builds")
    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelRefused(f"{folder.name}: the model file holds untrusted types {untrusted}")
    try:
        estimator = sio.load(path, trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops raises many types for a corrupt file
        raise ModelRefused(f"{folder.name}: model.skops could not be read ({exc})") from None
    return ServingModel(str(metadata["version"]), metadata, estimator, compile_estimator(estimator))
