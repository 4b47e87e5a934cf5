"""The model report: plots exist and are PNGs, the model card is honest, metadata is escaped."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.core.fields import BANDS
from service.training.report import write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SIMULATED_PHRASE = (
    "This model learned from a simulated cohort (docs/cohort.md), not from real outcomes; "
    "its probabilities describe the simulator's assumptions, not people"
)


def _metadata(version: str = "20250101-000000", origin: str = "simulated") -> dict:
    return {
        "version": version,
        "trained_at": "2025-01-01T00:00:00Z",
        "family": "hist_gradient_boosting",
        "training_data": {"origin": origin, "rows": 40, "digest": "abc123", "paths": ["c.csv"]},
        "metrics": {
            "macro_f1": 0.61,
            "log_loss": 1.02,
            "brier": 0.55,
            "ece": 0.04,
            "range_contains_outcome": {
                "model_and_rules": 0.9,
                "rules_only": 0.8,
                "model_only": 0.7,
            },
            "confusion_matrix": [[1] * 5] * 5,
        },
        "cv": {"logistic": {"log_loss": 1.1}, "hist_gradient_boosting": {"log_loss": 1.02}},
        "versions": {"scikit-learn": "1.6.1", "numpy": "2.1.0"},
        "features": ["person.age_years", "mobility.knee_to_wall_cm.left"],
    }


@pytest.fixture
def held_out() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y_true = np.array([BANDS[i % len(BANDS)] for i in range(40)])
    proba = rng.dirichlet(np.ones(len(BANDS)), size=40)
    return y_true, proba


def _html(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def test_report_and_every_plot_are_written_as_real_png_files(tmp_path, held_out):
    report = write_report(tmp_path, _metadata(), *held_out, importances={"a": 0.3, "b": 0.7})
    assert report == tmp_path / "report.html"
    assert report.is_file()
    for name in ("confusion.png", "reliability.png", "importance.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC, name
        assert f"src='{name}'" in _html(report)
    assert not list(tmp_path.glob(".*.tmp")), "temporary files must not be left behind"


def test_importance_and_comparison_plots_are_absent_when_not_asked_for(tmp_path, held_out):
    write_report(tmp_path, _metadata(), *held_out)
    assert not (tmp_path / "importance.png").exists()
    assert not (tmp_path / "comparison.png").exists()


def test_model_card_says_the_model_learned_from_simulation_when_origin_is_simulated(
    tmp_path, held_out
):
    page = _html(write_report(tmp_path, _metadata(origin="simulated"), *held_out))
    assert SIMULATED_PHRASE in page
    assert "docs/cohort.md" in page
    assert "not a diagnosis" in page


def test_model_card_does_not_claim_simulation_when_origin_is_real(tmp_path, held_out):
    page = _html(write_report(tmp_path, _metadata(origin="real"), *held_out))
    assert SIMULATED_PHRASE not in page
    assert "<b>real</b>" in page


def test_metadata_strings_containing_script_tags_are_escaped(tmp_path, held_out):
    meta = _metadata(version="<script>alert(1)</script>")
    meta["features"].append("<script>bad()</script>")
    meta["versions"]["<script>lib"] = "1"
    page = _html(write_report(tmp_path, meta, *held_out))
    assert "<script" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_report_survives_metadata_without_optional_keys(tmp_path, held_out):
    page = _html(write_report(tmp_path, {"version": "bare"}, *held_out))
    assert "bare" in page
    assert (tmp_path / "confusion.png").read_bytes()[:8] == PNG_MAGIC


def test_with_a_champion_the_comparison_plot_exists_and_both_versions_are_shown(tmp_path, held_out):
    champion = _metadata(version="20240101-champ")
    new = _metadata(version="20250101-new")
    new["metrics"]["macro_f1"] = 0.71
    page = _html(write_report(tmp_path, new, *held_out, champion=champion))
    assert (tmp_path / "comparison.png").read_bytes()[:8] == PNG_MAGIC
    assert "20240101-champ" in page and "20250101-new" in page
    assert "0.1000" in page, "the macro_f1 difference (0.71 - 0.61) must be shown"
