"""The `heeldrop` command: recommend, cohort and models, in-process and once as a real process."""

import csv
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from service.api.schemas import RecommendationResponseSchema
from service.cli import main

REQUEST = {
    "client_ref": "cli-1",
    "footwear": {"current_drop_mm": 10, "heel_insert_mm": 2},
    "symptoms": {"achilles_pain": 4},
    "mobility": {"knee_to_wall_cm": {"left": 8, "right": 9}},
}
COMMANDS = (
    "serve", "recommend", "score", "cohort", "retrain", "models", "keys", "users", "log", "drift",
)  # fmt: skip
ERROR_KEYS = {"code", "status", "message", "errors"}


@pytest.fixture
def models_dir(registry, monkeypatch):
    """Point the command at the trained session registry."""
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(registry.root.parent))
    return registry.root.parent


@pytest.fixture
def registry_copy(registry, tmp_path, monkeypatch):
    """A private copy of the registry holding the champion and one older, non-champion version."""
    root = tmp_path / "models" / "registry"
    shutil.copytree(registry.root, root, ignore=shutil.ignore_patterns(".lock"))
    champion = registry.champion()
    older = "20000101T000000000000Z"
    shutil.copytree(root / champion, root / older)
    meta = json.loads((root / older / "metadata.json").read_text())
    (root / older / "metadata.json").write_text(json.dumps({**meta, "version": older}))
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(tmp_path / "models"))
    return root, champion, older


def run(capsys, *argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_error_shape(body, code=422):
    assert set(body) == ERROR_KEYS
    assert body["code"] == code
    assert isinstance(body["status"], str) and body["status"]
    assert isinstance(body["message"], str) and body["message"]
    assert isinstance(body["errors"], dict)


def test_recommend_reads_a_file_and_prints_one_response(models_dir, registry, tmp_path, capsys):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST), encoding="utf-8")
    code, out, _ = run(capsys, "recommend", str(path))
    assert code == 0
    assert len(out.strip().splitlines()) == 1
    response = json.loads(out)
    assert RecommendationResponseSchema().validate(response) == {}
    assert response["client_ref"] == "cli-1"
    assert response["degraded"] is False
    assert response["explanation"]["model"]["version"] == registry.champion()
    assert RecommendationResponseSchema().validate(response) == {}


def test_recommend_answers_as_the_recommender_does(models_dir, recommender, tmp_path, capsys):
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST), encoding="utf-8")
    _, out, _ = run(capsys, "recommend", str(path))
    printed = json.loads(out)
    direct = recommender.recommend(REQUEST)
    del printed["request_id"], direct["request_id"]
    assert printed == direct


def test_recommend_dash_reads_standard_input(models_dir, capsys, monkeypatch):
    code, out, _ = run(capsys, "recommend", "-", stdin=json.dumps(REQUEST), monkeypatch=monkeypatch)
    assert code == 0
    assert json.loads(out)["recommendation"]["drop_mm"]["min"] >= 8  # HD011: Achilles pain


def test_recommend_without_a_path_reads_standard_input(models_dir, capsys, monkeypatch):
    code, out, _ = run(capsys, "recommend", stdin=json.dumps(REQUEST), monkeypatch=monkeypatch)
    assert code == 0
    assert json.loads(out)["client_ref"] == "cli-1"


@pytest.mark.parametrize(
    "text",
    ["{not json", "", '{"footwear": {"current_drop_mm": NaN}}', "[1, 2]",
     '{"footwear": {"current_drop_mm": Infinity}}'],
    ids=["broken", "empty", "nan", "array", "infinity"],
)  # fmt: skip
def test_unusable_json_prints_the_error_shape_and_exits_2(models_dir, capsys, monkeypatch, text):
    code, out, _ = run(capsys, "recommend", "-", stdin=text, monkeypatch=monkeypatch)
    assert code == 2
    assert_error_shape(json.loads(out))
    assert json.loads(out)["errors"]


def test_invalid_fields_print_422_keyed_by_field_path_and_exit_2(models_dir, capsys, monkeypatch):
    body = {"footwear": {"current_drop_mm": 31}, "symptoms": {"achilles_pain": 3.5}, "x": 1}
    code, out, _ = run(capsys, "recommend", "-", stdin=json.dumps(body), monkeypatch=monkeypatch)
    assert code == 2
    error = json.loads(out)
    assert_error_shape(error)
    assert error["status"] == "Unprocessable Entity"
    assert set(error["errors"]) == {"footwear.current_drop_mm", "symptoms.achilles_pain", "x"}


def test_a_huge_integer_prints_422_and_exits_2_not_a_traceback(models_dir, capsys, monkeypatch):
    text = '{"footwear": {"current_drop_mm": 1' + "0" * 400 + "}}"
    code, out, _ = run(capsys, "recommend", "-", stdin=text, monkeypatch=monkeypatch)
    assert code == 2
    assert list(json.loads(out)["errors"]) == ["footwear.current_drop_mm"]


def test_a_missing_file_exits_2_with_the_error_shape(models_dir, tmp_path, capsys):
    code, out, _ = run(capsys, "recommend", str(tmp_path / "nope.json"))
    assert code == 2
    body = json.loads(out)
    assert set(body) == ERROR_KEYS
    assert "nope.json" in body["message"]


def test_lines_gives_one_output_line_per_input_line(models_dir, capsys, monkeypatch):
    good = json.dumps(REQUEST)
    lines = [good, "{broken", json.dumps({"footwear": {}}), good, "[]"]
    code, out, _ = run(capsys, "recommend", "--lines", stdin="\n".join(lines) + "\n",
                       monkeypatch=monkeypatch)  # fmt: skip
    assert code == 0
    outputs = [json.loads(line) for line in out.strip().splitlines()]
    assert len(outputs) == len(lines)
    for number in (1, 4):
        assert RecommendationResponseSchema().validate(outputs[number - 1]) == {}
    for number in (2, 3, 5):
        bad = outputs[number - 1]
        assert set(bad) == {"line", "error"}
        assert bad["line"] == number
        assert_error_shape(bad["error"])
    assert list(outputs[2]["error"]["errors"]) == ["footwear.current_drop_mm"]
    assert outputs[0]["recommendation"] == outputs[3]["recommendation"]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:")
    assert f"heeldrop {command}" in out


def test_the_top_level_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert all(command in out for command in COMMANDS)


def test_an_unknown_command_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as done:
        main(["fly"])
    assert done.value.code == 2
    assert "usage:" in capsys.readouterr().err


def test_cohort_writes_the_asked_number_of_rows_the_same_for_a_seed(tmp_path, capsys):
    first, second = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(["cohort", "--rows", "50", "--seed", "1", "-o", str(first)]) == 0
    assert main(["cohort", "--rows", "50", "--seed", "1", "-o", str(second)]) == 0
    with first.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 50
    assert "footwear.current_drop_mm" in rows[0]
    assert all(row["footwear.current_drop_mm"] != "" for row in rows)
    assert first.read_bytes() == second.read_bytes()


def test_models_list_marks_only_the_champion_with_a_star(registry_copy, capsys):
    _, champion, older = registry_copy
    code, out, _ = run(capsys, "models", "list")
    assert code == 0
    lines = out.strip().splitlines()
    assert len(lines) == 2
    starred = [line for line in lines if line.startswith("*")]
    assert len(starred) == 1 and champion in starred[0]
    (plain,) = [line for line in lines if not line.startswith("*")]
    assert older in plain


def test_models_show_prints_the_champions_metadata_with_its_digest(registry_copy, capsys):
    root, champion, _ = registry_copy
    code, out, _ = run(capsys, "models", "show")
    assert code == 0
    meta = json.loads(out)
    assert meta["version"] == champion
    digest = hashlib.sha256((root / champion / "model.skops").read_bytes()).hexdigest()
    assert meta["sha256"] == digest
    assert {"scikit-learn", "numpy"} <= set(meta["versions"])


def test_models_show_prints_a_named_version(registry_copy, capsys):
    _, _, older = registry_copy
    code, out, _ = run(capsys, "models", "show", older)
    assert code == 0
    assert json.loads(out)["version"] == older


def test_models_show_of_an_unknown_version_fails_without_a_traceback(registry_copy, capsys):
    code, _, err = run(capsys, "models", "show", "19990101T000000000000Z")
    assert code != 0
    assert "Traceback" not in err
    assert "19990101T000000000000Z" in err


def test_recommend_with_an_empty_models_dir_answers_degraded(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(tmp_path / "empty"))
    code, out, _ = run(capsys, "recommend", "-", stdin=json.dumps(REQUEST), monkeypatch=monkeypatch)
    assert code == 0
    response = json.loads(out)
    assert response["degraded"] is True
    assert response["explanation"]["model"]["version"] is None
    assert RecommendationResponseSchema().validate(response) == {}


def test_the_installed_command_answers_from_standard_input(registry):
    exe = Path(sys.executable).with_name("heeldrop")
    command = [str(exe)] if exe.exists() else [sys.executable, "-m", "service.cli"]
    env = {**os.environ, "HEELDROP_MODELS_DIR": str(registry.root.parent)}
    done = subprocess.run(
        [*command, "recommend", "-"],
        input=json.dumps(REQUEST),
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    response = json.loads(done.stdout)
    assert response["degraded"] is False
    assert response["explanation"]["model"]["version"] == registry.champion()
    assert RecommendationResponseSchema().validate(response) == {}


def test_models_check_passes_a_servable_champion(registry_copy, capsys):
    _, champion, _ = registry_copy
    code, _, err = run(capsys, "models", "check", "champion")
    assert code == 0 and f"{champion} can be served" in err


def test_models_check_fails_with_the_reason_for_a_champion_serving_would_refuse(
    registry_copy, capsys
):
    """A champion trained on another version's inputs: `make run` retrains rather than serve
    the rules alone."""
    root, champion, _ = registry_copy
    meta = json.loads((root / champion / "metadata.json").read_text())
    (root / champion / "metadata.json").write_text(json.dumps({**meta, "features": ["x"]}))
    pointer = json.loads((root / "champion.json").read_text())  # as an earlier release wrote it
    (root / "champion.json").write_text(json.dumps({**pointer, "metadata_sha256": {}}))
    code, _, err = run(capsys, "models", "check")
    assert code == 1 and "trained on other features" in err and "Traceback" not in err


@pytest.mark.parametrize("version", [None, "19990101T000000000000Z"])
def test_models_check_fails_without_a_traceback_when_there_is_nothing_to_load(
    tmp_path, capsys, monkeypatch, registry_copy, version
):
    if version is None:
        monkeypatch.setenv("HEELDROP_MODELS_DIR", str(tmp_path / "empty"))
    code, _, err = run(capsys, "models", "check", *([version] if version else []))
    assert code == 1 and err.startswith("heeldrop: ") and "Traceback" not in err


@pytest.mark.parametrize("umask", [0o077, 0o022])
def test_atomic_writes_respect_the_umask_and_keep_a_files_mode(tmp_path, umask):
    import os
    import stat

    from service.files import atomic_write_text

    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "new.csv", "x")
        (tmp_path / "kept.csv").write_text("old")
        os.chmod(tmp_path / "kept.csv", 0o600)
        atomic_write_text(tmp_path / "kept.csv", "new")
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "new.csv").st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(os.stat(tmp_path / "kept.csv").st_mode) == 0o600
    assert (tmp_path / "kept.csv").read_text() == "new"


# --- which models folder and database, wherever the command runs -------------------------------


@pytest.fixture
def elsewhere(tmp_path, monkeypatch):
    """Run from a directory outside the checkout with neither variable set."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HEELDROP_MODELS_DIR", raising=False)
    monkeypatch.delenv("HEELDROP_DATABASE_URL", raising=False)
    return tmp_path


def test_a_database_command_says_which_database_and_that_it_is_new(elsewhere, capsys):
    code, out, err = run(capsys, "keys", "list")
    assert code == 0 and out == ""
    assert err.splitlines()[0] == (
        f"heeldrop: database sqlite:///{elsewhere}/instance/heeldrop.db (the default, "
        "instance/heeldrop.db in the current directory; HEELDROP_DATABASE_URL sets another; "
        "a new file)"
    )
    assert (elsewhere / "instance" / "heeldrop.db").exists()
    _, _, err = run(capsys, "keys", "list")
    assert "a new file" not in err and f"sqlite:///{elsewhere}/instance/heeldrop.db" in err


def test_recommend_says_which_models_folder_on_stderr_and_keeps_stdout_json(
    elsewhere, registry, capsys, monkeypatch
):
    (elsewhere / "here").symlink_to(registry.root.parent)
    monkeypatch.setenv("HEELDROP_MODELS_DIR", "here")  # relative: made absolute, and said
    code, out, err = run(capsys, "recommend", "-", stdin=json.dumps(REQUEST),
                         monkeypatch=monkeypatch)  # fmt: skip
    assert code == 0 and json.loads(out)["degraded"] is False
    assert err.splitlines() == [f"heeldrop: models folder {elsewhere}/here (HEELDROP_MODELS_DIR)"]


def test_the_default_models_folder_is_named_with_where_it_comes_from(elsewhere, capsys):
    src = elsewhere / "in.csv"
    src.write_text("footwear.current_drop_mm\n8\n")
    code, _, err = run(capsys, "score", str(src), "-o", str(elsewhere / "out.csv"))
    assert code == 2
    assert err.splitlines()[0] == (
        f"heeldrop: models folder {elsewhere}/models (the default, models/ in the current "
        "directory; HEELDROP_MODELS_DIR sets another)"
    )
    assert f"no champion model in {elsewhere}/models" in err and "--rules-only" in err
    code, _, err = run(capsys, "score", str(src), "-o", str(elsewhere / "out.csv"), "--rules-only")
    assert code == 0 and "models folder" not in err  # the rules alone read no models


def test_a_setting_that_names_the_default_place_is_said_to_be_the_setting(elsewhere, monkeypatch):
    from service.config import Config

    monkeypatch.setenv("HEELDROP_MODELS_DIR", str(elsewhere / "models"))  # as the image sets it
    monkeypatch.setenv("HEELDROP_DATABASE_URL", "sqlite:///instance/heeldrop.db")
    models, database = Config().sources(models=True, database=True)
    assert models == f"models folder {elsewhere}/models (HEELDROP_MODELS_DIR)"
    assert database.startswith(f"database sqlite:///{elsewhere}/instance/heeldrop.db (HEELDROP_")


def test_a_database_password_is_never_printed(monkeypatch):
    from service.config import Config

    monkeypatch.setenv("HEELDROP_DATABASE_URL", "postgresql+psycopg://shop:s3cr%40t@db:5432/hd")
    [line] = Config().sources(models=False, database=True)
    assert line == "database postgresql+psycopg://shop:***@db:5432/hd (HEELDROP_DATABASE_URL)"


def test_a_relative_sqlite_url_is_made_absolute_and_others_are_kept(elsewhere, monkeypatch):
    from service.config import Config

    monkeypatch.setenv("HEELDROP_DATABASE_URL", "sqlite:///db/x.db?timeout=3")
    assert Config().database_url == f"sqlite:///{elsewhere}/db/x.db?timeout=3"
    for kept in ("sqlite:////srv/x.db", "sqlite:///:memory:", "postgresql://h/db"):
        monkeypatch.setenv("HEELDROP_DATABASE_URL", kept)
        assert Config().database_url == kept


# --- serve without a champion -------------------------------------------------------------------


def _serve(models: Path, tmp_path: Path, *extra: str, port: int = 0) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEELDROP_")}
    env |= {"HEELDROP_MODELS_DIR": str(models), "HEELDROP_SECRET_KEY": "test-only-secret",
            "HEELDROP_DATABASE_URL": f"sqlite:///{tmp_path}/heeldrop.db"}  # fmt: skip
    cmd = [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--workers", "1"]
    return subprocess.Popen(
        [*cmd, *extra], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip


def test_serve_refuses_to_start_without_a_champion(tmp_path):
    done = _serve(tmp_path / "empty", tmp_path)
    out, _ = done.communicate(timeout=120)
    assert done.returncode == 2
    assert f"heeldrop serve: no champion model in {tmp_path}/empty" in out
    assert "--rules-only" in out and "make model" in out and "Traceback" not in out


def test_serve_refuses_a_champion_serving_would_refuse(registry_copy, tmp_path):
    root, champion, _ = registry_copy
    (root / champion / "model.skops").write_bytes(b"tampered")
    done = _serve(root.parent, tmp_path)
    out, _ = done.communicate(timeout=120)
    assert done.returncode == 2 and "is refused" in out and "Traceback" not in out


def test_serve_with_rules_only_starts_without_a_champion_and_answers_degraded(tmp_path):
    import signal
    import socket
    import time

    import requests

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = _serve(tmp_path / "empty", tmp_path, "--rules-only", port=port)
    try:
        deadline = time.monotonic() + 180  # a wait for the boot, not a measure of speed
        while True:
            assert server.poll() is None, server.communicate()[0]
            try:
                live = requests.get(f"http://127.0.0.1:{port}/livez", timeout=2)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.25)
        assert live.status_code == 200
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 503  # up, but without a model: degraded, and it says so
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        out, _ = server.communicate(timeout=60)
    assert "--rules-only: answers are the rules' alone (degraded)" in out
