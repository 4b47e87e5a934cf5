"""Drift: the recommendation log's inputs and answers against the champion's training data.

- Population stability (PSI) per request field: the logged requests' shares in the bins of the
  training data's profile (deciles, and "absent"), which retraining stores in the model's
  metadata. Below 0.1 stable, 0.1 to 0.25 a moderate shift, STABILITY_LIMIT (0.25) or more a
  shift worth retraining for (the usual reading of PSI).
- The recommended bands' shares per ISO week, and outcome rates (better, same, worse) per band.
The report is one self-contained HTML page (plots inlined); the command's exit status says
whether any field passed the limit, for a cron job to act on.
"""

import base64
import html
import io
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
from matplotlib.figure import Figure
from sqlalchemy import Engine, func, select

from service.core.columns import from_requests
from service.core.features import context_name, derive
from service.core.fields import BANDS, FIELDS
from service.db import Outcome, Recommendation

STABILITY_LIMIT = 0.25
MODERATE = 0.1
MIN_ROWS = 50  # fewer logged requests than this say nothing about a population
_PROFILED = tuple(f.path for f in FIELDS if f.kind != "text")
_FLOOR = 1e-4  # an empty bin's share, so PSI stays finite


def profile(ctx: Mapping[str, np.ndarray]) -> dict[str, dict[str, list[float]]]:
    """Each request field's bins (decile edges of its present values) and shares (absent
    first) in a rule context (`features.derive`: severities absent count as 0), as stored in a
    model's metadata."""
    out = {}
    for path in _PROFILED:
        values = np.asarray(ctx[context_name(path)], dtype=np.float64)
        present = values[~np.isnan(values)]
        edges = np.unique(np.quantile(present, np.linspace(0.1, 0.9, 9))) if len(present) else ()
        out[path] = {"edges": [float(e) for e in edges], "shares": _shares(values, edges)}
    return out


def _shares(values: np.ndarray, edges: Any) -> list[float]:
    absent = np.isnan(values)
    counts = np.bincount(np.searchsorted(edges, values[~absent], side="left"),
                         minlength=len(edges) + 1)  # fmt: skip
    total = max(len(values), 1)
    return [float(absent.sum() / total), *(float(c / total) for c in counts)]


def stability(expected: list[float], actual: list[float]) -> float:
    """The population stability index of two share vectors over the same bins."""
    e = np.maximum(np.asarray(expected), _FLOOR)
    a = np.maximum(np.asarray(actual), _FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


@dataclass
class Drift:
    """What `heeldrop drift` found."""

    rows: int
    fields: dict[str, float] = field(default_factory=dict)  # PSI by field path, highest first
    weeks: dict[str, dict[str, int]] = field(default_factory=dict)  # ISO week -> band -> count
    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)  # band -> outcome -> count

    @property
    def shifted(self) -> list[str]:
        return [path for path, psi in self.fields.items() if psi >= STABILITY_LIMIT]


def measure(
    engine: Engine,
    training: Mapping[str, Any],
    since: datetime | None = None,
    tenant: str | None = None,
) -> Drift:
    """Compare the log (since `since`, of `tenant` or all) with a training profile."""
    where = []
    if since is not None:
        where.append(Recommendation.created_at >= since)
    if tenant is not None:
        where.append(Recommendation.tenant == tenant)
    with engine.connect() as connection:
        logged = connection.execute(
            select(Recommendation.request, Recommendation.band, Recommendation.created_at)
            .where(*where)
        ).all()  # fmt: skip
        rates = connection.execute(
            select(Recommendation.band, Outcome.outcome, func.count())
            .join(Outcome, Outcome.request_id == Recommendation.request_id)
            .where(*where).group_by(Recommendation.band, Outcome.outcome)
        ).all()  # fmt: skip
    drift = Drift(len(logged))
    if len(logged) >= MIN_ROWS:
        ctx = derive(from_requests([row.request for row in logged]))
        psi = {}
        for path, bins in training.items():
            if path in _PROFILED:
                values = np.asarray(ctx[context_name(path)], dtype=np.float64)
                psi[path] = stability(bins["shares"], _shares(values, bins["edges"]))
        drift.fields = dict(sorted(psi.items(), key=lambda kv: -kv[1]))
    for row in logged:
        year, week, _ = row.created_at.isocalendar()
        counts = drift.weeks.setdefault(f"{year}-W{week:02d}", dict.fromkeys(BANDS, 0))
        counts[row.band] += 1
    drift.weeks = dict(sorted(drift.weeks.items()))
    for band, outcome, count in rates:
        drift.outcomes.setdefault(band, {"better": 0, "same": 0, "worse": 0})[outcome] = count
    return drift


def _png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _plots(drift: Drift) -> list[tuple[str, str]]:
    plots = []
    top = list(drift.fields.items())[:20]
    if top:
        fig = Figure(figsize=(9, max(2.5, 0.3 * len(top) + 1)), layout="constrained")
        ax = fig.subplots()
        colours = ["#c0392b" if v >= STABILITY_LIMIT else "#f0a500" if v >= MODERATE
                   else "#4477aa" for _, v in top]  # fmt: skip
        ax.barh([k for k, _ in top][::-1], [v for _, v in top][::-1], color=colours[::-1])
        ax.axvline(STABILITY_LIMIT, color="#c0392b", ls="--", lw=1)
        ax.set(xlabel="population stability index", title="Inputs against the training data")
        plots.append(("Population stability per input (the 20 highest)", _png(fig)))
    if drift.weeks:
        weeks = list(drift.weeks)
        fig = Figure(figsize=(9, 4), layout="constrained")
        ax = fig.subplots()
        bottom = np.zeros(len(weeks))
        for band in BANDS:
            totals = np.array([sum(drift.weeks[w].values()) for w in weeks], dtype=float)
            share = np.array([drift.weeks[w][band] for w in weeks]) / np.maximum(totals, 1)
            ax.bar(weeks, share, bottom=bottom, label=band)
            bottom += share
        ax.set(ylabel="share of answers", title="Recommended bands per week")
        ax.tick_params(axis="x", rotation=45)
        ax.legend(fontsize=8)
        plots.append(("Recommended bands per week", _png(fig)))
    if drift.outcomes:
        bands = [b for b in BANDS if b in drift.outcomes]
        fig = Figure(figsize=(7, 3.5), layout="constrained")
        ax = fig.subplots()
        left = np.zeros(len(bands))
        for outcome, colour in (("better", "#2e8b57"), ("same", "#aaaaaa"), ("worse", "#c0392b")):
            totals = np.array([sum(drift.outcomes[b].values()) for b in bands], dtype=float)
            share = np.array([drift.outcomes[b][outcome] for b in bands]) / totals
            ax.barh(bands, share, left=left, color=colour, label=outcome)
            left += share
        ax.set(xlabel="share of reported outcomes", title="Outcomes per recommended band")
        ax.legend(fontsize=8)
        plots.append(("Outcomes per recommended band", _png(fig)))
    return plots


def report(drift: Drift, version: str, since: datetime | None) -> str:
    """The drift report as one self-contained HTML page."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(path)}</td><td>{psi:.3f}</td><td>"
        f"{'shifted' if psi >= STABILITY_LIMIT else 'moderate' if psi >= MODERATE else 'stable'}"
        "</td></tr>"
        for path, psi in drift.fields.items()
    )
    outcomes = "".join(
        f"<tr><td>{e(band)}</td>" + "".join(f"<td>{n}</td>" for n in counts.values()) + "</tr>"
        for band, counts in drift.outcomes.items()
    )
    shifted = ", ".join(drift.shifted)
    verdict = (
        f"inputs shifted (PSI {STABILITY_LIMIT} or more): {e(shifted)}"
        if shifted
        else ("no input shifted")
    )
    parts = [
        f"<h1>heeldrop drift against model {e(version)}</h1>",
        f"<p>{drift.rows} logged recommendations"
        f"{f' since {since:%Y-%m-%d}' if since else ''}; {verdict}.</p>",
        "<p>Population stability index: below 0.1 stable, 0.1 to 0.25 a moderate shift, 0.25 "
        "or more a shift worth retraining for. Outcome rates count every follow-up reported.</p>",
        *(
            f"<h2>{e(title)}</h2><p><img alt='{e(title)}' src='{src}'></p>"
            for title, src in _plots(drift)
        ),
        "<h2>Every input</h2><table><tr><th>field</th><th>PSI</th><th>reading</th></tr>"
        f"{rows}</table>",
        "<h2>Outcomes per recommended band</h2><table><tr><th>band</th><th>better</th>"
        f"<th>same</th><th>worse</th></tr>{outcomes}</table>",
    ]
    style = ("body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto}"
             "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:3px 8px}"
             "img{max-width:100%}")  # fmt: skip
    head = f"<meta charset='utf-8'><title>heeldrop drift</title><style>{style}</style>"
    return (
        f"<!doctype html><html lang='en'><head>{head}</head><body>{''.join(parts)}</body></html>\n"
    )
