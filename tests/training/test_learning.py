"""Learning from outcomes: the labelling rule, the log as training data, too little data, the
gates on real rows, and the demonstration that a model learns a world's truth from outcomes."""

import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import sqlalchemy as sa

from service.cli import main
from service.core.recommend import Recommender
from service.db import Recommendation, engine_for, now, upgrade
from service.db.log import RecommendationLog
from service.training import world
from service.training.data import MIN_PER_BAND, MIN_ROWS, read_labelled
from service.training.fit import MAX_REPEAT, real_repeat
from service.training.outcomes import from_log, label
from service.training.retrain import comparison, retrain

ROOT = Path(__file__).resolve().parents[2]


def reported(outcome="better", weeks=6, **after):
    return SimpleNamespace(outcome=outcome, weeks_worn=weeks, symptoms_after=after)


@pytest.mark.parametrize(
    ("request_", "referral", "outcome", "reason"),
    [
        ({}, None, reported(), ""),
        ({}, None, reported("same"), ""),
        ({"symptoms": {"achilles_pain": 4}}, None, reported(achilles_pain=5), ""),
        ({}, "soon", reported(), "referred to a clinician"),
        ({}, None, reported(weeks=3), "worn under 4 weeks"),
        ({}, None, reported("worse"), "worse"),
        (
            {"symptoms": {"knee_pain": 1}},
            None,
            reported("same", knee_pain=3),
            "a pain rose by 2 or more",
        ),
        ({}, None, reported("better", forefoot_pain=2), "a pain rose by 2 or more"),  # absent = 0
    ],
)
def test_the_labelling_rule(request_, referral, outcome, reason):
    assert label(request_, referral, outcome) == reason


def test_real_rows_weigh_as_much_as_the_simulated_ones_up_to_a_cap():
    assert real_repeat(np.array([False] * 100)) == 1
    assert real_repeat(np.array([True] * 100)) == 1
    assert real_repeat(np.array([True] * 10 + [False] * 40)) == 4
    assert real_repeat(np.array([True] + [False] * 10_000)) == MAX_REPEAT


def test_comparison_lines_are_signed_and_say_better_or_worse():
    new = {"macro_f1": 0.6, "log_loss": 0.9, "brier": 0.5, "ece": 0.05}
    old = {"macro_f1": 0.5, "log_loss": 0.8, "brier": 0.5, "ece": 0.05}
    f1, loss, brier, _ = comparison(new, old)
    assert f1.startswith("macro_f1 0.5000 -> 0.6000 (+0.1000, better)")
    assert loss.startswith("log_loss 0.8000 -> 0.9000 (+0.1000, worse)")
    assert "(+0.0000, same)" in brier


@pytest.fixture
def log_db(tmp_path, recommender):
    """A log where four recommendations have outcomes: two label a band, two do not."""
    url = f"sqlite:///{tmp_path}/log.db"
    upgrade(url)
    engine = engine_for(url)
    book = RecommendationLog(engine, "v")
    people = {
        "a": {"footwear": {"current_drop_mm": 4}, "symptoms": {"achilles_pain": 4}},
        "b": {"footwear": {"current_drop_mm": 10}},
        "c": {"footwear": {"current_drop_mm": 8}, "symptoms": {"knee_pain": 1}},
        "d": {"footwear": {"current_drop_mm": 0}},
    }
    for rid, request in people.items():
        book.write("shop", [request], recommender.explain([request], [rid]))

    def report(rid, weeks, drop, outcome="better", **after):
        book.record_outcome("shop", {"request_id": rid, "weeks_worn": weeks, "drop_mm_worn": drop,
                                     "outcome": outcome, "symptoms_after": after})  # fmt: skip

    report("a", 2, 4, "worse")
    report("a", 8, 9)  # the longest-worn follow-up speaks: moderate
    report("b", 6, 12.5, "same")  # high
    report("c", 6, 8, "same", knee_pain=4)  # knee pain rose by 3: labels nothing
    report("d", 6, 4, "worse")
    yield engine
    engine.dispose()


def test_the_log_gives_one_labelled_row_per_recommendation_by_its_drop_worn(log_db):
    data, unused = from_log(log_db)
    assert data.rows == 2 and list(data.y) == ["moderate", "high"]
    assert list(data.outcome_drop) == [9, 12.5]
    assert data.real.all() and data.sources == {"recommendation log outcomes": 2}
    assert dict(unused) == {"a pain rose by 2 or more": 1, "worse": 1}
    assert data.ctx["current"].tolist() == [4, 10]


def test_since_leaves_out_older_recommendations(log_db):
    with log_db.begin() as connection:
        connection.execute(sa.update(Recommendation).where(Recommendation.request_id == "a")
                           .values(created_at=now() - timedelta(days=40)))  # fmt: skip
    data, _ = from_log(log_db, now() - timedelta(days=30))
    assert list(data.y) == ["high"]


def test_a_log_without_usable_outcomes_gives_nothing(tmp_path):
    url = f"sqlite:///{tmp_path}/empty.db"
    upgrade(url)
    engine = engine_for(url)
    assert from_log(engine) == (None, {})
    engine.dispose()


@pytest.mark.parametrize("rows", [18, 60])
def test_too_little_data_is_exit_2_with_how_much_is_needed_and_no_wall_of_text(
    tmp_path, cohort_csv, capsys, rows, monkeypatch
):
    lines = cohort_csv.read_text().splitlines()
    small = tmp_path / "small.csv"
    small.write_text("\n".join(lines[: rows + 1]) + "\n")
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(tmp_path / "models"))
    assert main(["retrain", "--data", str(small), "--origin", "shop-pilot"]) == 2
    err = capsys.readouterr().err
    assert f"{rows} labelled rows" in err
    assert f"at least {MIN_ROWS}" in err and f"at least {MIN_PER_BAND} in each band" in err
    assert "Traceback" not in err and "Warning" not in err
    assert len(err.splitlines()) <= 4
    assert not (tmp_path / "models" / "registry").exists() or not any(
        (tmp_path / "models" / "registry").iterdir()
    )


def test_an_outcomes_file_with_the_drop_worn_but_no_band_is_accepted(tmp_path, cohort_csv):
    lines = cohort_csv.read_text().splitlines()
    header = lines[0].split(",")
    band = header.index("outcome_band")
    rows = [",".join(c for i, c in enumerate(line.split(",")) if i != band) for line in lines[:50]]
    path = tmp_path / "drops.csv"
    path.write_text("\n".join(rows) + "\n")
    with_band = read_labelled([cohort_csv])
    without = read_labelled([path], origin="shop")
    assert list(without.y) == list(with_band.y[:49])
    assert without.real.all() and without.sources == {"files (shop)": 49}


def test_retrain_from_the_log_mixes_real_and_simulated_rows_and_gates_on_the_real_ones(
    tmp_path, cohort_csv, recommender, registry
):
    import shutil

    shutil.copytree(registry.root, tmp_path / "models" / "registry")
    from service.registry import Registry

    fresh = Registry(tmp_path / "models")
    url = f"sqlite:///{tmp_path}/log.db"
    upgrade(url)
    engine = engine_for(url)
    book = RecommendationLog(engine, "v")
    rng = np.random.default_rng(3)
    requests, truth = world.people(400, seed=21)
    ids = [f"w{i}" for i in range(len(requests))]
    book.write("shop", requests, recommender.explain(requests, ids))
    for request, rid, true_drop in zip(requests, ids, truth, strict=True):
        answer = recommender.explain([request], [rid])[0]
        report = world.follow_up(request, rid, world.worn(answer, rng), true_drop)
        book.record_outcome("shop", report)
    outcome = retrain([cohort_csv], "auto", fresh, seed=3, log=engine)
    engine.dispose()
    meta = outcome.metadata
    real = meta["training_data"]["sources"]["recommendation log outcomes"]
    assert meta["trained_on"] == "mixed" and 150 < real < 400
    assert meta["training_data"]["sources"]["files (simulated)"] == 4000
    assert meta["real_row_weight"] == real_repeat(np.array([True] * real + [False] * 4000)) or (
        meta["real_row_weight"] > 1
    )
    assert meta["gate"]["rows"].endswith("held-out real outcomes")
    assert meta["gate"]["champion"] is not None
    assert len(meta["gate"]["comparison"]) == 4
    report = (fresh.root / outcome.version / "report.html").read_text()
    assert "held-out real outcomes" in report and "recommendation log outcomes" in report
    model = fresh.load(outcome.version)
    answer = Recommender(None, model).recommend({"footwear": {"current_drop_mm": 8}})
    assert answer["explanation"]["model"]["trained_on"] == "mixed"


def test_retrain_needs_data_and_since_needs_the_log(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HEELDROP_DATABASE_URL", f"sqlite:///{tmp_path}/db.sqlite")
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(tmp_path / "models"))
    assert main(["retrain"]) == 2
    assert main(["retrain", "--data", "x.csv", "--since", "2026-01-01"]) == 2
    assert main(["retrain", "--from-db"]) == 2  # an empty log, said so
    assert "no outcome that labels a band" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["retrain", "--from-db", "--since", "last week"])


@pytest.mark.slow
def test_the_demonstration_learns_the_worlds_truth_from_outcomes():
    run = subprocess.run(
        [sys.executable, "scripts/outcomes_demo.py", "--cohort", "4000", "--people", "1500",
         "--held-out", "1500"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    assert "promoted" in run.stdout and "held back" not in run.stdout
    rows = {line.split()[0]: line.split() for line in run.stdout.splitlines()
            if line.startswith(("champion", "learned"))}  # fmt: skip
    champion, learned = float(rows["champion"][-2]), float(rows["learned"][-2])
    assert learned >= champion + 0.03  # the group whose truth differs


def test_the_outcomes_template_has_every_request_field_and_the_outcome_columns():
    from service.core.fields import FIELDS

    header = (ROOT / "data" / "outcomes-template.csv").read_text().strip().split(",")
    assert header == [f.path for f in FIELDS] + ["outcome_drop_mm", "outcome_band"]
