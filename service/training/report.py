"""The human report of a registered model version: a self-contained HTML page with PNG plots."""

import html
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from service.core.fields import BANDS
from service.files import atomic_path, atomic_write_text

SCALARS = ("macro_f1", "log_loss", "brier", "ece")
RANGES = ("model_and_rules", "rules_only", "model_only")
SIMULATED = (
    "This model learned from a simulated cohort (docs/cohort.md), not from real outcomes; "
    "its probabilities describe the simulator's assumptions, not people."
)
MIXED = (
    "This model learned from real outcomes mixed with the simulated cohort (each real outcome "
    "weighted as {weight} simulated people); where real outcomes are few, its probabilities "
    "still mostly describe the simulator's assumptions."
)
CSS = (
    "body{font-family:system-ui,sans-serif;max-width:980px;margin:2em auto;color:#222}"
    "table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:4px 10px;"
    "text-align:right}th{background:#f3f3f3}td:first-child{text-align:left}"
    ".card{background:#fff8e1;border-left:5px solid #f0a500;padding:.5em 1em}"
    ".warn{font-weight:bold;color:#a33}img{max-width:100%;border:1px solid #eee}"
)


def _e(value: Any) -> str:
    """HTML-escape any value as text."""
    return html.escape(str(value), quote=True)


def _num(value: Any) -> str:
    """Format a metric as a number, or an em dash when missing."""
    v = _val(value)
    return "—" if v is None else f"{v:.4f}"


def _val(value: Any) -> float | None:
    """A metric as a float, or None when it is missing or not a number."""
    try:
        return None if value is None or isinstance(value, bool) else float(value)
    except (TypeError, ValueError):
        return None


def _flat(meta: dict | None) -> dict[str, Any]:
    """Collect the headline metrics of a metadata dict under flat names."""
    m = (meta or {}).get("metrics") or {}
    out = {k: _val(m.get(k)) for k in SCALARS}
    rc = m.get("range_contains_outcome") or {}
    out.update({f"range: {k}": _val(rc.get(k)) for k in RANGES})
    return out


def _save(fig: Figure, path: Path) -> None:
    """Save a figure as PNG atomically."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def _confusion(folder: Path, truth: np.ndarray, pred: np.ndarray) -> None:
    """Plot the confusion matrix as counts and row-normalised shares."""
    k = len(BANDS)
    cm = np.zeros((k, k), dtype=int)
    ok = truth >= 0
    np.add.at(cm, (truth[ok], pred[ok]), 1)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    fig = Figure(figsize=(11, 4.5), layout="constrained")
    for ax, data, title, fmt in zip(
        fig.subplots(1, 2),
        (cm, norm),
        ("Counts", "Row-normalised"),
        ("{:d}", "{:.2f}"),
        strict=True,
    ):
        im = ax.imshow(data, cmap="Blues", vmin=0)
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set(
            title=title,
            xlabel="predicted",
            ylabel="outcome",
            xticks=range(k),
            yticks=range(k),
            xticklabels=BANDS,
            yticklabels=BANDS,
        )
        hi = data.max() if data.size else 0
        for (i, j), v in np.ndenumerate(data):
            ax.text(
                j,
                i,
                fmt.format(v),
                ha="center",
                va="center",
                color="white" if hi and v > hi / 2 else "black",
            )
    _save(fig, folder / "confusion.png")


def _curve(conf: np.ndarray, hit: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Mean confidence and observed frequency per non-empty bin."""
    idx = np.clip((conf * bins).astype(int), 0, bins - 1)
    used = [b for b in range(bins) if np.any(idx == b)]
    pairs = np.array([(conf[idx == b].mean(), np.mean(hit[idx == b])) for b in used]).reshape(-1, 2)
    return pairs[:, 0], pairs[:, 1]


def _reliability(folder: Path, truth: np.ndarray, proba: np.ndarray, pred: np.ndarray) -> None:
    """Plot top-label and per-band one-vs-rest reliability with a confidence histogram."""
    fig = Figure(figsize=(7, 8), layout="constrained")
    top, hist = fig.subplots(2, 1, height_ratios=(3, 1), sharex=True)
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfect calibration")
    conf = proba.max(axis=1) if len(proba) else np.zeros(0)
    top.plot(*_curve(conf, pred == truth), "o-", lw=2.5, color="black", label="top label")
    for k, band in enumerate(BANDS):
        top.plot(*_curve(proba[:, k], truth == k), ".-", lw=1, alpha=0.8, label=f"{band} vs rest")
    top.set(xlim=(0, 1), ylim=(0, 1), ylabel="observed frequency", title="Reliability")
    top.legend(loc="upper left", fontsize=8)
    hist.hist(conf, bins=np.linspace(0, 1, 11), color="grey", edgecolor="white")
    hist.set(xlabel="top-label confidence", ylabel="count")
    _save(fig, folder / "reliability.png")


def _importance(folder: Path, importances: dict[str, float]) -> None:
    """Plot feature importances as sorted horizontal bars."""
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig = Figure(figsize=(8, max(2.5, 0.28 * len(items) + 1)), layout="constrained")
    ax = fig.subplots()
    ax.barh([str(k) for k, _ in items], [float(v) for _, v in items], color="#4477aa")
    ax.set(title="Feature importance", xlabel="importance")
    _save(fig, folder / "importance.png")


def _comparison(folder: Path, new: dict, old: dict, names: tuple[str, str]) -> None:
    """Plot the new and champion metrics as grouped bars."""
    keys = [k for k in new if new[k] is not None or old[k] is not None]
    pos = np.arange(len(keys))
    fig = Figure(figsize=(10, 4.5), layout="constrained")
    ax = fig.subplots()
    for off, vals, name in ((-0.2, old, f"champion {names[1]}"), (0.2, new, f"new {names[0]}")):
        ax.bar(pos + off, [vals[k] or 0.0 for k in keys], 0.4, label=name)
    ax.set_xticks(pos, keys, rotation=20, ha="right")
    ax.set_title("New model vs champion")
    ax.legend()
    _save(fig, folder / "comparison.png")


def _table(header: list[str], rows: list[list[str]]) -> str:
    """Render an HTML table; cells are already escaped."""
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _card(meta: dict) -> str:
    """The model card: what the model learned from, intended use and limits."""
    data = meta.get("training_data") or {}
    learned = str(meta.get("trained_on") or data.get("origin", "unknown"))
    lines = [f"<p class='warn'>{SIMULATED}</p>"] if learned == "simulated" else []
    if learned == "mixed":
        lines.append(f"<p class='warn'>{MIXED.format(weight=meta.get('real_row_weight', 1))}</p>")
    sources = ", ".join(f"{_e(k)}: {_e(v)}" for k, v in (data.get("sources") or {}).items())
    unused = ", ".join(
        f"{_e(k)}: {_e(v)}" for k, v in (data.get("outcomes_not_labelling") or {}).items()
    )
    lines += [
        f"<p>Trained on <b>{_e(learned)}</b> data: {_e(data.get('rows', '?'))} rows"
        f"{f' ({sources})' if sources else ''}, "
        f"digest <code>{_e(data.get('digest', '?'))}</code>.</p>",
        *(
            [
                f"<p>Outcomes in the log that labelled nothing (the labelling rule, "
                f"docs/outcomes.md): {unused}.</p>"
            ]
            if unused
            else []
        ),
        "<p><b>Intended use:</b> an aid for shops and fitting apps choosing a heel-drop band. "
        "It is not a diagnosis. Red flags are handled by the rules, not by this model.</p>",
        "<p><b>Limits:</b> probabilities are only as good as the training data and may be "
        "miscalibrated for people unlike it; check the reliability plot before trusting them.</p>",
    ]
    paths = ", ".join(f"<code>{_e(p)}</code>" for p in data.get("paths") or [])
    lines += [f"<p>Data files: {paths}</p>"] if paths else []
    return "<section class='card'><h2>Model card</h2>" + "".join(lines) + "</section>"


def _verdict(meta: dict) -> str:
    """What the gates compared, each metric's change and meaning, and why it was held back."""
    gate = meta.get("gate") or {}
    reasons = meta.get("gate_reasons") or []
    said = "<b>held back</b>: " + "; ".join(map(_e, reasons)) if reasons else "<b>passed</b>"
    lines = "".join(f"<li>{_e(line)}</li>" for line in gate.get("comparison") or [])
    return (
        f"<h2>Gates</h2><p>Both models on the same {_e(gate.get('rows', 'held-out rows'))}, "
        f"and the clinical cases: {said}.</p><ul>{lines}</ul>"
    )


def write_report(
    folder: Path,
    metadata: dict,
    y_true: np.ndarray,
    proba: np.ndarray,
    importances: dict[str, float] | None = None,
    champion: dict | None = None,
) -> Path:
    """Write report.html and its PNG plots into `folder`; return the report path."""
    folder = Path(folder)
    index = {b: i for i, b in enumerate(BANDS)}
    truth = np.array([index.get(str(v), -1) for v in np.asarray(y_true).ravel()], dtype=int)
    proba = np.asarray(proba, dtype=float).reshape(-1, len(BANDS))
    pred = proba.argmax(axis=1) if len(proba) else np.zeros(0, dtype=int)
    _confusion(folder, truth, pred)
    _reliability(folder, truth, proba, pred)
    version = str(metadata.get("version", "?"))
    plots = ["confusion.png", "reliability.png"]
    if importances:
        _importance(folder, importances)
        plots.append("importance.png")
    gate = metadata.get("gate") or {}
    new = _flat({"metrics": gate.get("new") or metadata.get("metrics")})
    old = _flat(champion)
    if champion is not None:
        names = (version, str(champion.get("version", "champion")))
        _comparison(folder, new, old, names)
        plots.append("comparison.png")
        diff = [_num(new[k] - old[k]) if None not in (new[k], old[k]) else "—" for k in new]
        header = ["metric", f"new {_e(names[0])}", f"champion {_e(names[1])}", "difference"]
        rows = [[_e(k), _num(new[k]), _num(old[k]), d] for k, d in zip(new, diff, strict=True)]
    else:
        header, rows = ["metric", _e(version)], [[_e(k), _num(v)] for k, v in new.items()]
    cv_rows = [
        [_e(f), _num(s.get("log_loss") if isinstance(s, dict) else s)]
        for f, s in (metadata.get("cv") or {}).items()
    ]
    vers = metadata.get("versions") or {}
    feats = metadata.get("features") or []
    parts = [
        f"<h1>heeldrop model {_e(version)}</h1>",
        f"<p>Trained {_e(metadata.get('trained_at', '?'))}; family "
        f"<b>{_e(metadata.get('family', '?'))}</b>.</p>",
        _card(metadata),
        _verdict(metadata),
        f"<h2>Metrics ({_e(gate.get('rows', 'held-out split'))})</h2>",
        _table(header, rows),
        "<p>“range” rows: share of held-out outcomes inside the recommended range.</p>",
        "<h2>Cross-validated families</h2>",
        _table(["family", "log loss"], cv_rows),
        "<h2>Plots</h2>",
        *(f"<p><img src='{p}' alt='{p}'></p>" for p in plots),
        "<h2>Library versions</h2>",
        _table(["library", "version"], [[_e(k), _e(v)] for k, v in vers.items()]),
        f"<h2>Features ({len(feats)})</h2><ul>",
        *(f"<li>{_e(f)}</li>" for f in feats),
        "</ul>",
    ]
    page = (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>heeldrop {_e(version)}</title><style>{CSS}</style></head><body>"
        + "\n".join(parts)
        + "</body></html>\n"
    )
    atomic_write_text(target := folder / "report.html", page)
    return target
