"""Labelled training data: request columns plus the outcome, validated like any batch file."""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from service.core.errors import InvalidInput
from service.core.features import features
from service.core.fields import BANDS
from service.core.validate import check_frame

LABEL, OUTCOME_DROP = "outcome_band", "outcome_drop_mm"
SOURCE = "_source"  # file:line of each training row, for the invalid-row report
MAX_INVALID_SHARE = 0.05  # more invalid rows than this and the data set is refused


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
