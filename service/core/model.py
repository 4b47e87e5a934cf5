"""The classifier: a scikit-learn model saved with skops, served through a compiled evaluator.

A scikit-learn pipeline costs 3-14 ms a call on one row, most of it overhead; the fitted
parameters evaluated in the kernel (service/_kernel.c) cost microseconds and give the same
probabilities (a test proves it on many rows). The same evaluator scores one request or a
million rows.

Each version folder holds both: `model.skops`, the estimator, and `serving.json`, the evaluator's
parameters (JSON floats round-trip exactly). Serving reads only the JSON, so it never imports
scikit-learn or skops (about 2.5 s of start-up); the estimator loads on demand.
"""

import functools
import hashlib
import json
from dataclasses import dataclass
from importlib import metadata as dist
from pathlib import Path
from typing import Any

import numpy as np

from service.core import _kernel as kernel
from service.core.errors import ModelRefused
from service.core.features import FEATURE_GROUP, FEATURES, GROUPS
from service.core.fields import BANDS

MODEL_FILE = "model.skops"
SERVING_FILE = "serving.json"
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
    """Impute, standardise, a multinomial linear model, temperature: in the kernel, bands in
    order."""

    fill: np.ndarray
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: np.ndarray
    beta: float

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The n x bands probabilities of an n x len(FEATURES) matrix (NaN where absent)."""
        return self.run(X, factors=False)[0]

    def run(self, X: np.ndarray, factors: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """Probabilities and, with `factors`, per row and input group (features.GROUPS): log
        p(top band) minus its value with that group's features set to typical (the imputer's
        fill). The model is linear before its softmax, so setting a group to typical moves every
        band's logit by that group's share of (x - typical) / scale . coef: all groups at once,
        without re-running the model once per group. In the kernel, one row after another."""
        n = len(X)
        xt = np.ascontiguousarray(X.T, dtype=np.float64)  # no copy for features()'s matrix
        probs = np.empty((n, len(BANDS)))
        out = np.empty((n, len(GROUPS)) if factors else 0)
        kernel.linear(
            xt, n, self.fill, self.mean, self.scale, self.coef, self.intercept, self.beta,
            FEATURE_GROUP, probs, out,
        )  # fmt: skip
        return probs, out if factors else None

    def to_json(self) -> dict[str, Any]:
        """The parameters as JSON values; `classes` names the rows of coef and intercept."""
        return {
            "classes": list(BANDS),
            "fill": self.fill.tolist(),
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "beta": self.beta,
        }

    @classmethod
    def from_json(cls, data: Any) -> "LinearSoftmax":
        """The evaluator from `to_json`'s values; ValueError unless every shape fits."""
        classes = list(data["classes"])
        if sorted(classes) != sorted(BANDS):
            raise ValueError(f"its classes {classes} are not the five bands")
        order = [classes.index(b) for b in BANDS]
        shapes = {"fill": (len(FEATURES),), "coef": (len(BANDS), len(FEATURES))}
        shapes |= {"mean": shapes["fill"], "scale": shapes["fill"], "intercept": (len(BANDS),)}
        arrays = {name: np.array(data[name], dtype=np.float64) for name in shapes}
        for name, shape in shapes.items():
            if arrays[name].shape != shape:
                raise ValueError(f"{name} has shape {arrays[name].shape}, not {shape}")
        arrays["coef"], arrays["intercept"] = arrays["coef"][order], arrays["intercept"][order]
        return cls(**arrays, beta=float(data["beta"]))


def compile_estimator(estimator: Any) -> LinearSoftmax:
    """The served evaluator of a fitted model; ModelRefused for an unsupported structure."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

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
    """A loaded, checked model: its version, metadata, fast evaluator and version folder."""

    version: str
    metadata: dict[str, Any]
    fast: LinearSoftmax
    folder: Path

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.fast.predict_proba(X)

    @property
    def baseline(self) -> np.ndarray:
        """A typical training row (the imputer's medians): the reference for attributions."""
        return self.fast.fill

    @functools.cached_property
    def estimator(self) -> Any:
        """The scikit-learn estimator, loaded (with scikit-learn) on first use."""
        return load_estimator(self.folder)


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(estimator: Any, folder: Path) -> dict[str, str]:
    """Write `model.skops` and `serving.json` into `folder`; their sha256s for the metadata."""
    import skops.io as sio

    sio.dump(estimator, folder / MODEL_FILE)
    text = json.dumps(compile_estimator(estimator).to_json(), indent=1) + "\n"
    (folder / SERVING_FILE).write_text(text, encoding="utf-8")
    return {"sha256": sha256(folder / MODEL_FILE), "serving_sha256": sha256(folder / SERVING_FILE)}


def _checked_metadata(folder: Path) -> dict[str, Any]:
    """metadata.json, once model.skops matches its sha256 and the code matches the model."""
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelRefused(f"{folder.name}: no readable metadata.json ({exc})") from None
    _check_file(folder, MODEL_FILE, metadata.get("sha256"))
    trained_with = metadata.get("versions", {}).get("scikit-learn")
    try:
        installed = dist.version("scikit-learn")
    except dist.PackageNotFoundError:
        installed = "not installed"
    if trained_with != installed:
        raise ModelRefused(
            f"{folder.name}: trained with scikit-learn {trained_with}, "
            f"this is {installed}; retrain it"
        )
    if tuple(metadata.get("features", ())) != FEATURES:
        raise ModelRefused(f"{folder.name}: trained on other features than this code builds")
    return metadata


def _check_file(folder: Path, name: str, recorded: str | None) -> None:
    path = folder / name
    if not path.is_file() or sha256(path) != recorded:
        raise ModelRefused(f"{folder.name}: {name} is missing or its sha256 does not match")


def load_model(folder: str | Path) -> ServingModel:
    """Load a registered version for serving, refusing it unless every check passes.

    Reads `serving.json`, not the estimator. A version registered before that file existed
    has no `serving_sha256`; it is compiled from its checked estimator instead.
    """
    folder = Path(folder)
    metadata = _checked_metadata(folder)
    if "serving_sha256" not in metadata:
        fast = compile_estimator(_estimator(folder))
    else:
        _check_file(folder, SERVING_FILE, metadata["serving_sha256"])
        try:
            data = json.loads((folder / SERVING_FILE).read_text(encoding="utf-8"))
            fast = LinearSoftmax.from_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelRefused(f"{folder.name}: {SERVING_FILE} could not be read ({exc})") from None
    return ServingModel(str(metadata["version"]), metadata, fast, folder)


def load_estimator(folder: str | Path) -> Any:
    """The scikit-learn estimator of a registered version, checked; imports scikit-learn."""
    folder = Path(folder)
    _checked_metadata(folder)
    return _estimator(folder)


def _estimator(folder: Path) -> Any:
    """model.skops, built only if it holds nothing but TRUSTED_TYPES."""
    import skops.io as sio

    path = folder / MODEL_FILE
    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelRefused(f"{folder.name}: the model file holds untrusted types {untrusted}")
    try:
        return sio.load(path, trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops raises many types for a corrupt file
        raise ModelRefused(f"{folder.name}: model.skops could not be read ({exc})") from None
