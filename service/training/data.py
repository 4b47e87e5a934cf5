"""Labelled training data: request columns plus the outcome, validated like any batch file."""

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from service.core.errors import InvalidInput
from service.core.features import band_of, features
from service.core.fields import BANDS, MAX_EFFECTIVE_DROP
from service.core.validate import check_frame

LABEL, OUTCOME_DROP = "outcome_band", "outcome_drop_mm"
SOURCE = "_source"  # file:line of each training row, for the invalid-row report
MAX_INVALID_SHARE = 0.05  # more invalid rows than this and the data set is refused
SIMULATED = "simulated"  # the origin of the simulated cohort's rows; any other is real people
# What a model needs to be trained and checked: every band learned from (the model answers with
# all five) and each still present in the held-out fifth and in each of 3 calibration folds.
MIN_PER_BAND = 10
MIN_ROWS = 100


@dataclass
class Labelled:
    """Validated training rows: model inputs, labels, outcome drops and provenance (`real`:
    the row is a real person's outcome, not the simulator's; `sources`: rows per source)."""

    X: np.ndarray
    ctx: Mapping[str, Any]
    y: np.ndarray
    outcome_drop: np.ndarray
    digest: str
    rows: int
    invalid: dict[str, list[str]]
    real: np.ndarray
    sources: dict[str, int]

    @property
    def trained_on(self) -> str:
        """simulated, outcomes (real people only) or mixed."""
        real = int(self.real.sum())
        return SIMULATED if real == 0 else "outcomes" if real == self.rows else "mixed"


def merge(parts: Sequence[Labelled]) -> Labelled:
    """One training set of several (files, the log's outcomes), rows in order."""
    if len(parts) == 1:
        return parts[0]
    digest = hashlib.sha256("".join(part.digest for part in parts).encode()).hexdigest()
    sources: dict[str, int] = {}
    invalid: dict[str, list[str]] = {}
    for part in parts:
        invalid |= part.invalid
        for name, rows in part.sources.items():
            sources[name] = sources.get(name, 0) + rows
    return Labelled(
        np.concatenate([p.X for p in parts]),
        {k: np.concatenate([p.ctx[k] for p in parts]) for k in parts[0].ctx},
        np.concatenate([p.y for p in parts]),
        np.concatenate([p.outcome_drop for p in parts]),
        digest, sum(p.rows for p in parts), invalid,
        np.concatenate([p.real for p in parts]), sources,
    )  # fmt: skip


def check_enough(data: Labelled) -> None:
    """InvalidInput (saying how many rows are needed, and why) for data too small to train
    and check a model on."""
    counts = {band: int(np.sum(data.y == band)) for band in BANDS}
    short = {band: n for band, n in counts.items() if n < MIN_PER_BAND}
    if data.rows >= MIN_ROWS and not short:
        return
    have = ", ".join(f"{band} {n}" for band, n in counts.items())
    raise InvalidInput(
        f"{data.rows} labelled rows ({have}) are too few: training needs at least {MIN_ROWS}, "
        f"with at least {MIN_PER_BAND} in each band, because the model answers with all five "
        f"bands and is checked on a held-out fifth of the rows. Collect more outcomes, or mix "
        f"them with the simulated cohort (add --data with a `heeldrop cohort` file)."
    )


def read_labelled(paths: Sequence[str | Path], origin: str = SIMULATED) -> Labelled:
    """Read, combine, de-duplicate and validate labelled CSVs; InvalidInput if unusable.
    `origin` says where their labels came from (the simulator, or real people).

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
        if LABEL not in frame.columns and OUTCOME_DROP not in frame.columns:
            raise InvalidInput(f"{path}: no {LABEL} (or {OUTCOME_DROP}) column")
        frame.insert(0, SOURCE, [f"{Path(path).name}:{line}" for line in range(2, len(frame) + 2)])
        frames.append(frame)
    frame = pd.concat(frames, ignore_index=True)
    frame = frame[~frame.drop(columns=SOURCE).duplicated()].reset_index(drop=True)
    if frame.empty:
        raise InvalidInput("the training data has no rows")
    checked = check_frame(frame)
    blank = pd.Series([""] * len(frame), dtype=object)
    labels = frame.get(LABEL, blank).fillna("").str.strip().to_numpy(dtype=object, copy=True)
    outcome = pd.to_numeric(frame.get(OUTCOME_DROP, blank), errors="coerce").to_numpy(np.float64)
    worn = (
        (labels == "") & (outcome >= 0) & (outcome <= MAX_EFFECTIVE_DROP)
    )  # the band follows the drop
    labels[worn] = np.array(BANDS)[band_of(outcome[worn])]
    labels = labels.astype(str)
    errors = checked.errors
    for row in np.flatnonzero(~np.isin(labels, BANDS)):
        errors.setdefault(int(row), {})[LABEL] = [
            f"must be one of {', '.join(BANDS)}, or give {OUTCOME_DROP} "
            f"(0 to {MAX_EFFECTIVE_DROP:g})"
        ]
    sources = frame[SOURCE].to_numpy()
    report = {
        str(sources[row]): [f"{col}: {'; '.join(msgs)}" for col, msgs in cols.items()]
        for row, cols in sorted(errors.items())
    }
    if len(errors) > MAX_INVALID_SHARE * len(frame):
        raise InvalidInput(f"{len(errors)} of {len(frame)} rows are invalid (over 5%)", report)
    keep = np.ones(len(frame), dtype=bool)
    keep[list(errors)] = False
    ctx, X = features({k: v[keep] for k, v in checked.columns.items()})
    rows = int(keep.sum())
    return Labelled(
        X, ctx, labels[keep], outcome[keep], digest.hexdigest(), rows, report,
        np.full(rows, origin != SIMULATED), {f"files ({origin})": rows},
    )  # fmt: skip
