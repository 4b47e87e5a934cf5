"""`heeldrop drift`: population stability per input against the champion's training profile,
bands per week, outcome rates per band, the report, and an exit status a cron job can act on."""

import re

import numpy as np
import pytest

from service.cli import main
from service.core.columns import nest
from service.db import engine_for, upgrade
from service.db.log import RecommendationLog
from service.training import drift
from service.training.cohort import requests_table


def test_stability_is_zero_for_the_same_shares_and_large_for_a_shift():
    assert drift.stability([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == pytest.approx(0)
    assert drift.stability([0.2, 0.3, 0.5], [0.25, 0.3, 0.45]) < drift.MODERATE
    assert drift.stability([0.0, 0.5, 0.5], [0.0, 0.95, 0.05]) > drift.STABILITY_LIMIT


def test_a_profile_has_an_absent_share_and_one_share_per_bin_summing_to_one(registry):
    training = registry.metadata(registry.champion())["training_profile"]
    drop = training["footwear.current_drop_mm"]
    assert len(drop["shares"]) == len(drop["edges"]) + 2
    assert drop["edges"] == sorted(drop["edges"])
    for bins in training.values():
        assert sum(bins["shares"]) == pytest.approx(1)


def people(rows, seed, **footwear):
    found = [nest(r) for r in requests_table(rows, seed).to_pylist()]
    for person in found:
        person["footwear"].update(footwear)
    return found


@pytest.fixture
def logged(tmp_path, recommender, monkeypatch, registry):
    """Log requests of two tenants into a fresh database; run `heeldrop drift` against it."""
    url = f"sqlite:///{tmp_path}/log.db"
    upgrade(url)
    engine = engine_for(url)
    book = RecommendationLog(engine, "v")
    monkeypatch.setenv("HEELDROP_DATABASE_URL", url)
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(registry.root.parent))
    count = iter(range(10**6))

    def log(tenant, requests):
        ids = [f"r{next(count)}" for _ in requests]
        answers = recommender.explain(requests, ids)
        book.write(tenant, requests, answers)
        return answers

    yield log
    engine.dispose()


def test_requests_like_the_training_data_are_stable_and_exit_0(logged, capsys, tmp_path):
    logged("shop", people(600, seed=5))
    assert main(["drift", "-o", str(tmp_path / "drift.html")]) == 0
    out = capsys.readouterr().out
    assert "SHIFTED" not in out
    assert (
        re.search(r"footwear\.current_drop_mm\tPSI 0\.0\d\d", out) or "current_drop_mm" not in out
    )
    page = (tmp_path / "drift.html").read_text()
    assert "no input shifted" in page and page.count("data:image/png;base64,") == 2


def test_a_shifted_input_is_named_and_exit_3(logged, capsys, tmp_path):
    logged("shop", people(300, seed=6, current_drop_mm=0, current_type="minimalist"))
    assert main(["drift", "-o", str(tmp_path / "drift.html")]) == 3
    captured = capsys.readouterr()
    assert re.search(r"footwear\.current_drop_mm\tPSI \d+\.\d+  SHIFTED", captured.out)
    assert "footwear.current_drop_mm" in captured.err
    assert "footwear.current_drop_mm" in (tmp_path / "drift.html").read_text()


def test_one_tenants_drift_is_measured_alone(logged, capsys):
    logged("steady", people(300, seed=7))
    logged("zero-drop-shop", people(300, seed=8, current_drop_mm=0, current_type="minimalist"))
    assert main(["drift", "--tenant", "steady"]) == 0
    assert main(["drift", "--tenant", "zero-drop-shop"]) == 3


def test_bands_per_week_and_outcome_rates_per_band_are_counted(logged, tmp_path, registry):
    answers = logged("shop", people(120, seed=9))
    url = f"sqlite:///{tmp_path}/log.db"
    engine = engine_for(url)
    book = RecommendationLog(engine, "v")
    outcomes = ["better", "same", "worse"]
    for i, answer in enumerate(answers[:30]):
        book.record_outcome("shop", {"request_id": answer["request_id"], "weeks_worn": 6,
                                     "drop_mm_worn": 8, "outcome": outcomes[i % 3]})  # fmt: skip
    found = drift.measure(engine, registry.metadata(registry.champion())["training_profile"])
    engine.dispose()
    assert found.rows == 120
    (week,) = found.weeks.values()
    bands = [a["recommendation"]["band"] for a in answers]
    assert week == {band: bands.count(band) for band in week}
    reported = {band: sum(counts.values()) for band, counts in found.outcomes.items()}
    assert sum(reported.values()) == 30
    assert sum(c["worse"] for c in found.outcomes.values()) == 10
    assert all(np.isfinite(v) for v in found.fields.values())


def test_too_few_logged_requests_say_so_and_exit_0(logged, capsys):
    logged("shop", people(10, seed=10))
    assert main(["drift"]) == 0
    assert "too few" in capsys.readouterr().out


def test_no_champion_or_one_without_a_profile_is_exit_2(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(tmp_path / "none"))
    monkeypatch.setenv("HEELDROP_DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite")
    assert main(["drift"]) == 2
    assert "no champion" in capsys.readouterr().err


def test_a_champion_trained_without_a_profile_is_exit_2(tmp_path, registry, monkeypatch, capsys):
    import json
    import shutil

    shutil.copytree(registry.root, tmp_path / "models" / "registry")
    meta_path = tmp_path / "models" / "registry" / registry.champion() / "metadata.json"
    meta = json.loads(meta_path.read_text())
    del meta["training_profile"]
    meta_path.write_text(json.dumps(meta))
    pointer_path = meta_path.parents[1] / "champion.json"  # as an earlier release wrote it
    pointer_path.write_text(json.dumps({**json.loads(pointer_path.read_text()),
                                        "metadata_sha256": {}}))  # fmt: skip
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(tmp_path / "models"))
    monkeypatch.setenv("HEELDROP_DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite")
    assert main(["drift"]) == 2
    assert "no training profile" in capsys.readouterr().err
