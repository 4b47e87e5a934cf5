"""The scikit-learn estimator: the model families, its served parameters, and its file.

Training and the tests import this (and scikit-learn with it); serving never does.
"""

from pathlib import Path
from typing import Any

from sklearn.calibration import CalibratedClassifierCV
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from service.core.errors import ModelRefused
from service.core.fields import BANDS
from service.core.model import LinearSoftmax

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
# Families with a numpy evaluator proven equal to scikit-learn (core/model.py); another family
# that wins cross-validation is reported as `cv_best` but not served.
SERVABLE = ("logistic_regression",)


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


def calibrated(family: str, seed: int) -> CalibratedClassifierCV:
    """A family's estimator, with temperature calibration."""
    return CalibratedClassifierCV(
        candidates(seed)[family], method="temperature", cv=3, ensemble=False
    )


def served(estimator: Any) -> LinearSoftmax:
    """The served evaluator of a fitted model; ModelRefused for an unsupported structure."""
    beta = 1.0
    classes = list(getattr(estimator, "classes_", []))
    if isinstance(estimator, CalibratedClassifierCV):
        if len(estimator.calibrated_classifiers_) != 1 or estimator.method != "temperature":
            raise ModelRefused("only a single temperature-calibrated model can be served")
        calibrated_ = estimator.calibrated_classifiers_[0]
        beta = float(calibrated_.calibrators[0].beta_)
        estimator = calibrated_.estimator
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


def save(estimator: Any, path: Path) -> None:
    """Write the estimator as a skops file (never a pickle)."""
    import skops.io as sio

    sio.dump(estimator, path)


def load(path: Path, name: str) -> Any:
    """An estimator from a skops file, built only if it holds nothing but TRUSTED_TYPES."""
    import skops.io as sio

    untrusted = [t for t in sio.get_untrusted_types(file=path) if t not in TRUSTED_TYPES]
    if untrusted:
        raise ModelRefused(f"{name}: the model file holds untrusted types {untrusted}")
    try:
        return sio.load(path, trusted=TRUSTED_TYPES)
    except Exception as exc:  # skops raises many types for a corrupt file
        raise ModelRefused(f"{name}: {path.name} could not be read ({exc})") from None
