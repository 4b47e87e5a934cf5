"""The model registry's files: skops only, checked on load, and a served numpy evaluator equal
to scikit-learn's."""

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest
import skops.io as sio

from service.core.errors import ModelRefused
from service.core.features import FEATURES
from service.core.fields import BANDS
from service.registry import (
    METADATA_FILE,
    MODEL_FILE,
    SERVING_FILE,
    load_estimator,
    load_model,
    sha256,
)
from service.training.data import read_labelled
from service.training.estimator import served


@pytest.fixture
def version_copy(registry, tmp_path):
    """A copy of the champion's folder that a test may damage."""
    folder = tmp_path / "v"
    shutil.copytree(registry.root / registry.champion(), folder)
    return folder


def _edit_metadata(folder, **changes):
    meta = json.loads((folder / METADATA_FILE).read_text())
    meta.update(changes)
    (folder / METADATA_FILE).write_text(json.dumps(meta))


def test_numpy_path_equals_scikit_learn_predict_proba_on_many_rows(model, cohort_csv):
    X = read_labelled([cohort_csv]).X
    estimator = load_estimator(model.folder)
    order = [list(estimator.classes_).index(b) for b in BANDS]
    expected = estimator.predict_proba(X)[:, order]
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=0, atol=1e-9)


def test_numpy_path_gives_the_same_answer_for_one_row_as_in_a_batch(model, cohort_csv):
    X = read_labelled([cohort_csv]).X[:50]
    batch = model.predict_proba(X)
    singles = np.vstack([model.predict_proba(X[i : i + 1]) for i in range(len(X))])
    np.testing.assert_allclose(singles, batch, atol=1e-12)


def test_model_round_trips_through_skops(model, version_copy):
    reloaded = load_model(version_copy)
    X = np.random.default_rng(0).normal(size=(20, len(FEATURES)))
    np.testing.assert_allclose(reloaded.predict_proba(X), model.predict_proba(X))


def test_served_parameters_are_the_estimators_to_the_last_bit(version_copy):
    loaded = load_model(version_copy).fast
    compiled = served(load_estimator(version_copy))
    for name in ("fill", "mean", "scale", "coef", "intercept"):
        assert np.array_equal(getattr(loaded, name), getattr(compiled, name), equal_nan=True)
    assert loaded.beta == compiled.beta


def test_serving_a_model_imports_neither_scikit_learn_nor_skops(version_copy):
    code = (
        "import sys; from service.registry import load_model; from service.batch import score; "
        "from service.api.app import create_app; from service.core.recommend import Recommender; "
        f"Recommender(model=load_model({str(version_copy)!r})).recommend("
        "{'footwear': {'current_drop_mm': 8}}); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('sklearn', 'skops')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


def test_a_version_registered_before_serving_json_is_compiled_from_its_estimator(
    model, version_copy
):
    (version_copy / SERVING_FILE).unlink()
    meta = json.loads((version_copy / METADATA_FILE).read_text())
    del meta["serving_sha256"]
    (version_copy / METADATA_FILE).write_text(json.dumps(meta))
    X = np.random.default_rng(1).normal(size=(20, len(FEATURES)))
    np.testing.assert_array_equal(load_model(version_copy).predict_proba(X), model.predict_proba(X))


def test_metadata_records_versions_digest_metrics_and_features(model):
    meta = model.metadata
    assert meta["versions"]["scikit-learn"] and meta["versions"]["skops"]
    assert len(meta["training_data"]["digest"]) == 64
    assert meta["training_data"]["origin"] == "simulated"
    assert {"macro_f1", "log_loss", "brier", "ece"} <= meta["metrics"].keys()
    assert set(meta["cv"]) >= {"logistic_regression", "hist_gradient_boosting"}
    assert meta["features"] == list(FEATURES)
    assert len(meta["sha256"]) == len(meta["serving_sha256"]) == 64


def test_a_tampered_model_file_is_refused(version_copy):
    with open(version_copy / MODEL_FILE, "ab") as fh:
        fh.write(b"tampered")
    with pytest.raises(ModelRefused, match="sha256"):
        load_model(version_copy)


def test_a_tampered_serving_file_is_refused(version_copy):
    served = json.loads((version_copy / SERVING_FILE).read_text())
    served["intercept"][0] += 1.0
    (version_copy / SERVING_FILE).write_text(json.dumps(served))
    with pytest.raises(ModelRefused, match=r"serving\.json .*sha256"):
        load_model(version_copy)


def test_a_serving_file_of_the_wrong_shape_is_refused_even_with_its_sha256(version_copy):
    served = json.loads((version_copy / SERVING_FILE).read_text())
    served["coef"] = served["coef"][:4]
    (version_copy / SERVING_FILE).write_text(json.dumps(served))
    _edit_metadata(version_copy, serving_sha256=sha256(version_copy / SERVING_FILE))
    with pytest.raises(ModelRefused, match="coef has shape"):
        load_model(version_copy)


def test_a_model_from_another_scikit_learn_version_is_refused(version_copy):
    meta = json.loads((version_copy / METADATA_FILE).read_text())
    _edit_metadata(version_copy, versions={**meta["versions"], "scikit-learn": "0.1.0"})
    with pytest.raises(ModelRefused, match=r"scikit-learn 0\.1\.0"):
        load_model(version_copy)


def test_a_model_trained_on_other_features_is_refused(version_copy):
    _edit_metadata(version_copy, features=["something_else"])
    with pytest.raises(ModelRefused, match="features"):
        load_model(version_copy)


def test_a_model_file_with_untrusted_types_is_refused_when_the_estimator_loads(version_copy):
    sio.dump(
        {"payload": np.random.default_rng(0).random(3).tolist(), "f": print},
        version_copy / MODEL_FILE,
    )
    _edit_metadata(version_copy, sha256=sha256(version_copy / MODEL_FILE))
    with pytest.raises(ModelRefused, match="untrusted"):
        load_estimator(version_copy)
    meta = json.loads((version_copy / METADATA_FILE).read_text())
    del meta["serving_sha256"]  # as registered before serving.json: compiled from the estimator
    (version_copy / METADATA_FILE).write_text(json.dumps(meta))
    with pytest.raises(ModelRefused, match="untrusted"):
        load_model(version_copy)


def test_missing_metadata_is_refused(version_copy):
    (version_copy / METADATA_FILE).unlink()
    with pytest.raises(ModelRefused, match="metadata"):
        load_model(version_copy)


def test_no_pickle_is_ever_loaded_or_written():
    from pathlib import Path

    source = "\n".join(p.read_text() for p in Path("service").rglob("*.py"))
    assert "import pickle" not in source and "joblib" not in source
    assert "allow_pickle" not in source


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
@pytest.mark.parametrize("name", ["coef", "fill", "intercept"])
def test_non_finite_parameters_are_refused_even_with_their_sha256(version_copy, name, bad):
    data = json.loads((version_copy / SERVING_FILE).read_text())
    target = data[name][0] if isinstance(data[name][0], list) else data[name]
    target[0] = bad
    (version_copy / SERVING_FILE).write_text(json.dumps(data))  # NaN, Infinity: Python's JSON
    _edit_metadata(version_copy, serving_sha256=sha256(version_copy / SERVING_FILE))
    with pytest.raises(ModelRefused, match="finite"):
        load_model(version_copy)


@pytest.mark.parametrize(("name", "value"), [("beta", 0), ("beta", -1.0), ("scale", 0.0)])
def test_a_zero_scale_or_temperature_is_refused(version_copy, name, value):
    data = json.loads((version_copy / SERVING_FILE).read_text())
    if name == "scale":
        data[name][3] = value
    else:
        data[name] = value
    (version_copy / SERVING_FILE).write_text(json.dumps(data))
    _edit_metadata(version_copy, serving_sha256=sha256(version_copy / SERVING_FILE))
    with pytest.raises(ModelRefused, match="positive"):
        load_model(version_copy)


@pytest.fixture
def fresh(registry, tmp_path):
    from service.registry import Registry

    shutil.copytree(registry.root, tmp_path / "models" / "registry")
    return Registry(tmp_path / "models")


@pytest.mark.parametrize(
    "pointer", ['{"version": 5}', "[]", "not json", '{"version": "../../outside/m"}',
                '{"version": "/etc"}', '{"version": "%s", "previous": 7}'],
)  # fmt: skip
def test_a_malformed_champion_pointer_is_refused_like_a_tampered_model(fresh, pointer):
    champion = fresh.champion()
    (fresh.root / "champion.json").write_text(pointer.replace("%s", champion))
    with pytest.raises(ModelRefused):
        fresh.load_champion()


@pytest.mark.parametrize(
    "name", ["../../outside/m", "/tmp", "..", "v1", "", "20260101T00000000000Z"]
)
def test_only_version_names_inside_the_registry_can_be_promoted(fresh, name, tmp_path):
    from service.registry import RegistryError

    before = (fresh.root / "champion.json").read_text()
    with pytest.raises(RegistryError):
        fresh.promote(name)
    assert (fresh.root / "champion.json").read_text() == before


def test_a_symlinked_version_folder_is_neither_listed_nor_served(fresh, tmp_path):
    outside = tmp_path / "outside"
    shutil.copytree(fresh.root / fresh.champion(), outside)
    (fresh.root / "20991231T235959000000Z").symlink_to(outside)
    assert "20991231T235959000000Z" not in fresh.versions()
    with pytest.raises(ModelRefused, match="symbolic link"):
        fresh.load("20991231T235959000000Z")


def test_the_cli_exits_2_with_a_message_on_a_malformed_pointer(fresh, monkeypatch, capsys):
    from service.cli import main

    (fresh.root / "champion.json").write_text('{"version": 5}')
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(fresh.root.parent))
    assert main(["models", "list"]) == 2
    err = capsys.readouterr().err
    assert "malformed" in err and "Traceback" not in err


def test_a_metadata_file_changed_after_promotion_is_refused(fresh):
    """Hashes updated in metadata.json with the files they cover (the NaN attack) are caught:
    champion.json recorded metadata.json's own digest when the version was promoted."""
    champion = fresh.champion()
    fresh.promote(champion)  # a pointer that records the digests
    folder = fresh.root / champion
    assert fresh.load_champion() is not None
    _edit_metadata(folder, metrics={"macro_f1": 0.99})
    with pytest.raises(ModelRefused, match=r"metadata\.json"):
        fresh.load_champion()


def test_promotion_and_rollback_carry_each_versions_metadata_digest(fresh):
    first = fresh.champion()
    second = fresh.new_version()
    shutil.copytree(fresh.root / first, fresh.root / second)
    fresh.promote(second)
    digests = json.loads((fresh.root / "champion.json").read_text())["metadata_sha256"]
    assert digests == {v: sha256(fresh.root / v / METADATA_FILE) for v in (first, second)}
    _edit_metadata(fresh.root / first, trained_at="never")  # the previous one, tampered
    with pytest.raises(ModelRefused, match=r"metadata\.json"):
        fresh.rollback()
    assert fresh.champion() == second


@pytest.mark.parametrize("digests", ['{"x": "nothex"}', "[1]", '{"x": 5}'])
def test_a_pointer_whose_digests_are_not_digests_is_malformed(fresh, digests):
    pointer = json.loads((fresh.root / "champion.json").read_text())
    text = json.dumps(pointer)[:-1] + f', "metadata_sha256": {digests}}}'
    (fresh.root / "champion.json").write_text(text)
    with pytest.raises(ModelRefused, match="malformed"):
        fresh.load_champion()
