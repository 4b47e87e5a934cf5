"""The classifier as served: a fitted scikit-learn pipeline's parameters, evaluated in numpy.

A scikit-learn pipeline costs 3-14 ms a call on one row, most of it overhead; its parameters
evaluated here cost microseconds and give the same probabilities (a test proves it on many rows),
for one request or a million rows alike. Serving never imports scikit-learn: the registry keeps
these parameters beside the estimator (`serving.json`).
"""

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from service.core.features import FEATURES, GROUP_OF
from service.core.fields import BANDS


@dataclass(frozen=True)
class LinearSoftmax:
    """Impute, standardise, a multinomial linear model, a temperature: the bands' probabilities."""

    fill: np.ndarray  # the imputer's value per feature: a typical training row
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # bands x features, bands in BANDS order
    intercept: np.ndarray
    beta: float  # the calibrating temperature's inverse

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        """The n x bands probabilities of an n x len(FEATURES) matrix (NaN where absent)."""
        z = (np.where(np.isnan(X), self.fill, X) - self.mean) / self.scale
        logits = (z @ self.coef.T + self.intercept) * self.beta
        p = np.exp(logits - logits.max(axis=1, keepdims=True))
        return p / p.sum(axis=1, keepdims=True)

    def attributions(self, X: np.ndarray, probs: np.ndarray) -> np.ndarray:
        """Per row and input group (features.GROUPS): log p(top band) minus its value with that
        group's features set to typical (the imputer's fill). The model is linear before its
        softmax, so setting a group to typical moves every band's logit by that group's share
        of (x - typical) / scale . coef: all groups at once, without re-running the model."""
        away = (np.where(np.isnan(X), self.fill, X) - self.fill) / self.scale
        shift = (away @ self._group_weights).reshape(len(X), *GROUP_OF.shape[1:], -1)
        logp = np.log(probs)
        occluded = logp[:, None, :] - shift  # rows x groups x bands
        peak = occluded.max(axis=2, keepdims=True)
        total = np.log(np.exp(occluded - peak).sum(axis=2)) + peak[:, :, 0]
        rows, top = np.arange(len(probs)), probs.argmax(axis=1)
        return logp[rows, top][:, None] - occluded[rows, :, top] + total

    @cached_property
    def _group_weights(self) -> np.ndarray:
        """features x (groups x bands): each feature's weight on each band, in its group."""
        per_group = GROUP_OF[:, :, None] * (self.coef.T * self.beta)[:, None, :]
        return per_group.reshape(len(GROUP_OF), -1)

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
        beta = float(data["beta"])
        if not all(np.isfinite(a).all() for a in arrays.values()) or not np.isfinite(beta):
            raise ValueError("its parameters are not all finite numbers")
        if not (arrays["scale"] > 0).all() or beta <= 0:
            raise ValueError("its scales and temperature must be positive")
        arrays["coef"], arrays["intercept"] = arrays["coef"][order], arrays["intercept"][order]
        return cls(**arrays, beta=beta)


@dataclass(frozen=True)
class ServingModel:
    """A loaded, checked model: its version, metadata, evaluator and version folder."""

    version: str
    metadata: dict[str, Any]
    fast: LinearSoftmax
    folder: Path

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return self.fast.predict_proba(X)
