"""Retraining an admin can run from cron: validation, gates, registry safety, rollback."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from service.cli import main
from service.core.errors import InvalidInput
from service.registry import Registry, RegistryError
from service.training.data import read_labelled
from service.training.retrain import Gates, held_back, retrain


@pytest.fixture
def fresh(tmp_path, registry):
    """A copy of the trained registry that a test may change."""
    import shutil

    shutil.copytree(registry.root, tmp_path / "registry")
    return Registry(tmp_path)


def _csv(path, header, rows):
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return path


def _with_cell(line, header, column, value):
    cells = line.split(",")
    cells[header.split(",").index(column)] = value
    return ",".join(cells)


def test_invalid_rows_are_reported_by_file_line_and_column(tmp_path, cohort_csv):
    lines = cohort_csv.read_text().splitlines()
    rows = [_with_cell(lines[1], lines[0], "outcome_band", "sideways"), *lines[2:6]]
    with pytest.raises(InvalidInput) as exc:
        read_labelled([_csv(tmp_path / "some.csv", lines[0], rows)])
    assert exc.value.errors == {"some.csv:2": ["outcome_band: must be one of zero, low, "
                                               "moderate, high, lift, or give outcome_drop_mm "
                                               "(0 to 30)"]}  # fmt: skip


def test_a_few_invalid_rows_are_left_out_and_counted(tmp_path, cohort_csv):
    lines = cohort_csv.read_text().splitlines()
    rows = [_with_cell(lines[1], lines[0], "footwear.current_drop_mm", "41"), *lines[2:200]]
    data = read_labelled([_csv(tmp_path / "d.csv", lines[0], rows)])
    assert data.rows == 198
    assert data.invalid == {"d.csv:2": ["footwear.current_drop_mm: must be a number from 0 to 30"]}


def test_more_than_five_percent_invalid_rows_is_refused(tmp_path, cohort_csv):
    lines = cohort_csv.read_text().splitlines()
    rows = [_with_cell(line, lines[0], "outcome_band", "??") for line in lines[1:40]]
    with pytest.raises(InvalidInput, match="over 5%"):
        read_labelled([_csv(tmp_path / "d.csv", lines[0], rows)])


def test_no_label_column_or_no_rows_is_refused(tmp_path):
    with pytest.raises(InvalidInput, match="outcome_band"):
        read_labelled([_csv(tmp_path / "a.csv", "footwear.current_drop_mm", ["4"])])
    with pytest.raises(InvalidInput, match="no rows"):
        read_labelled([_csv(tmp_path / "b.csv", "footwear.current_drop_mm,outcome_band", [])])
    (tmp_path / "c.csv").write_bytes(b"")
    with pytest.raises(InvalidInput, match="not a readable CSV"):
        read_labelled([tmp_path / "c.csv"])


def test_several_files_are_combined_and_deduplicated(tmp_path, cohort_csv):
    lines = cohort_csv.read_text().splitlines()
    a = _csv(tmp_path / "a.csv", lines[0], lines[1:101])
    b = _csv(tmp_path / "b.csv", lines[0], lines[51:151])
    assert read_labelled([a, b]).rows == 150


def test_gates_hold_back_a_worse_model_and_name_the_reason():
    old = {"macro_f1": 0.60, "log_loss": 0.80}
    gates = Gates()
    assert held_back({"macro_f1": 0.595, "log_loss": 0.81}, old, [], gates) == []
    worse_f1 = held_back({"macro_f1": 0.58, "log_loss": 0.80}, old, [], gates)
    assert len(worse_f1) == 1 and "macro-F1" in worse_f1[0]
    worse_loss = held_back({"macro_f1": 0.60, "log_loss": 0.83}, old, [], gates)
    assert len(worse_loss) == 1 and "log loss" in worse_loss[0]
    assert held_back({"macro_f1": 0.9, "log_loss": 0.1}, old, ["case-x: failed"], gates) == [
        "case-x: failed"
    ]
    assert held_back({"macro_f1": 0.58, "log_loss": 0.9}, old, [], Gates(0.1, 0.5)) == []


def test_retrain_never_registers_without_promoting_and_exits_3(
    fresh, cohort_csv, monkeypatch, capsys
):
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(fresh.root.parent))
    before = fresh.champion()
    code = main(["retrain", "--data", str(cohort_csv), "--promote", "never", "--seed", "5"])
    assert code == 3
    out = capsys.readouterr()
    steps = [line.split(": ", 1)[1].split()[0] for line in out.err.splitlines()
             if line.startswith("retrain: ")]  # fmt: skip
    assert steps == ["reading", "4000", "cross-validating", "logistic_regression:",
                     "cross-validating", "hist_gradient_boosting:", "fitting", "evaluating",
                     "evaluating", "checking", "writing"]  # fmt: skip
    assert out.out.strip() == fresh.versions()[-1]  # stdout: the version alone, for scripts
    assert fresh.champion() == before
    assert len(fresh.versions()) == 2
    new = fresh.versions()[-1]
    meta = fresh.metadata(new)
    assert meta["champion_on_same_split"]["macro_f1"] > 0
    assert (fresh.root / new / "report.html").is_file()
    assert (fresh.root / new / "comparison.png").is_file()
    assert (fresh.root / new / "importance.png").is_file()


def test_auto_promotion_passes_the_gates_and_rollback_restores_the_champion(fresh, cohort_csv):
    before = fresh.champion()
    outcome = retrain([cohort_csv], "auto", fresh, seed=3)
    assert outcome.promoted, outcome.reasons
    assert fresh.champion() == outcome.version
    assert fresh.pointer()["previous"] == before
    assert fresh.rollback() == before
    assert fresh.champion() == before


def test_bad_input_exits_2_and_changes_nothing(fresh, tmp_path, monkeypatch):
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(fresh.root.parent))
    before = (fresh.versions(), fresh.pointer())
    empty = _csv(tmp_path / "e.csv", "footwear.current_drop_mm,outcome_band", [])
    assert main(["retrain", "--data", str(empty)]) == 2
    assert main(["retrain", "--data", str(tmp_path / "missing.csv")]) == 2
    assert (fresh.versions(), fresh.pointer()) == before


def test_versions_are_never_overwritten(fresh):
    version = fresh.champion()
    with pytest.raises(RegistryError, match="never overwritten"), fresh.staging(version):
        pass


def test_promoting_an_unknown_or_tampered_version_is_refused(fresh):
    from service.core.errors import ModelRefused

    with pytest.raises(ModelRefused):
        fresh.promote("19990101T000000000000Z")
    version = fresh.champion()
    with open(fresh.root / version / "model.skops", "ab") as fh:
        fh.write(b"x")
    with pytest.raises(ModelRefused, match="sha256"):
        fresh.promote(version)


def test_rollback_without_a_previous_champion_is_an_error(tmp_path):
    with pytest.raises(RegistryError, match="no previous"):
        Registry(tmp_path).rollback()


def _consistent(registry):
    """Every listed version is complete and loads; the champion names one of them."""
    pointer = registry.pointer()
    versions = registry.versions()
    assert pointer["version"] in versions
    for version in versions:
        assert json.loads((registry.root / version / "metadata.json").read_text())["sha256"]
    assert registry.load_champion() is not None


def _staged(registry, name=None):
    """Whether a retrain has begun staging (and, with `name`, written that file there)."""
    for path in registry.root.glob(".*.*"):
        if path.is_dir() and (name is None or (path / name).exists()):
            return True
    return False


KILL_POINTS = {
    "while reading and training": lambda registry: True,
    "as staging begins": lambda registry: _staged(registry),
    "after the model file is written": lambda registry: _staged(registry, "model.skops"),
    "while writing the report": lambda registry: _staged(registry, "confusion.png"),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_sigkill_at_any_point_leaves_the_registry_consistent(fresh, cohort_csv, point):
    env = {**os.environ, "HEELDROP_MODELS_DIR": str(fresh.root.parent)}
    args = ["retrain", "--data", str(cohort_csv), "--promote", "force", "--seed", "9"]
    proc = subprocess.Popen([sys.executable, "-m", "service.cli", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 300
    time.sleep(0.5)
    while proc.poll() is None and not KILL_POINTS[point](fresh) and time.monotonic() < deadline:
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    _consistent(fresh)
    with fresh.lock():  # the next holder of the lock sweeps what the killed run staged
        pass
    assert not [p for p in fresh.root.iterdir() if p.name.startswith(".") and p.is_dir()]
