"""heeldrop score: one output row per record, equal to the single-request path, and safe to open."""

import contextlib
import csv
import fcntl
import io
import json
import os
import pty
import re
import signal
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from service import cli
from service.batch import columns as batch_columns
from service.batch import headers
from service.batch import reader as batch_input
from service.batch import records as csv_records
from service.batch import score as batch
from service.batch import writer as batch_output
from service.config import Config
from service.core.errors import InvalidInput
from service.core.fields import BY_PATH, FIELDS, Field
from service.core.recommend import Recommender
from service.training.cohort import write_cohort

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER = ["client_ref", "footwear.current_drop_mm", "symptoms.achilles_pain", "note"]


def score(src: Path, models: Path, *extra: str, out: Path | None = None) -> tuple[int, str]:
    """Run `heeldrop score` in-process; the exit code and what it wrote to stderr."""
    out = out or src.with_name(src.stem + ".out.csv")
    args = cli.parser().parse_args(["score", str(src), "-o", str(out), *extra])
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = args.func(args, Config(models_dir=models))
    return code, err.getvalue()


def rows(path: Path, sep: str = ",") -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter=sep))


@pytest.fixture(scope="module")
def models(registry):
    return registry.root.parent


@pytest.fixture(scope="module")
def no_models(tmp_path_factory):
    return tmp_path_factory.mktemp("no-models")


# --- requests as JSON and as CSV cells ---------------------------------------------------------


def _valid(f: Field) -> st.SearchStrategy[Any]:
    if f.kind == "bool":
        return st.booleans()
    if f.kind == "enum":
        return st.sampled_from(f.choices)
    if f.kind == "text":
        return st.text("abc xyz-=+@1", max_size=64).map(str.strip)
    whole = st.integers(int(f.lo), int(f.hi))
    if f.kind != "number":
        return whole
    return st.one_of(whole, st.floats(f.lo, f.hi).map(lambda x: x + 0.0))  # no -0.0


def _invalid(f: Field) -> st.SearchStrategy[Any]:
    if f.kind == "enum":
        return st.just("sideways")
    if f.kind == "text":
        return st.just("x" * 65)
    if f.kind == "bool":
        return st.booleans()
    return st.sampled_from([f.lo - 1, f.hi + 0.5, f.lo + 0.5 if f.kind != "number" else -3])


def _value(f: Field) -> st.SearchStrategy[Any]:
    """Mostly a valid value, one time in eight an invalid one."""
    return st.integers(0, 7).flatmap(lambda k: _invalid(f) if k == 0 else _valid(f))


@st.composite
def requests(draw: Any) -> dict[str, Any]:
    """A flat request: field path -> JSON value; mostly valid, sometimes not."""
    chosen = draw(st.sets(st.sampled_from([f.path for f in FIELDS]), max_size=14))
    if draw(st.integers(0, 9)):
        chosen.add("footwear.current_drop_mm")
    return {path: draw(_value(BY_PATH[path])) for path in sorted(chosen)}


def nested(flat: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path, value in flat.items():
        *groups, leaf = path.split(".")
        node = out
        for g in groups:
            node = node.setdefault(g, {})
        node[leaf] = value
    return out


def cell(value: Any, spelling: int) -> str:
    """A JSON value as a CSV cell; booleans in any accepted spelling."""
    if isinstance(value, bool):
        return [("true", "false"), ("1", "0"), ("Yes", "NO")][spelling % 3][not value]
    return value if isinstance(value, str) else json.dumps(value)


def write_requests(path: Path, flats: list[dict[str, Any]], spelling: int = 0) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        out = csv.writer(fh)
        out.writerow([f.path for f in FIELDS])
        for flat in flats:
            out.writerow(
                ["" if f.path not in flat else cell(flat[f.path], spelling) for f in FIELDS]
            )


def expected(recommender: Any, flat: dict[str, Any]) -> dict[str, Any] | None:
    """What the single-request path answers, in the output's columns; None when it refuses."""
    try:
        r = recommender.recommend(nested(flat))
    except InvalidInput:
        return None
    rec, why = r["recommendation"], r["explanation"]
    return {
        "rec_drop_min_mm": str(rec["drop_mm"]["min"]),
        "rec_drop_max_mm": str(rec["drop_mm"]["max"]),
        "rec_band": rec["band"],
        "rec_direction": rec["direction"],
        "rec_confidence": rec["confidence"],
        "rec_refer": str(rec["refer_to_clinician"]).lower(),
        "rec_rules": ";".join(f["id"] for f in why["rules"] if not f["overruled"]),
        "rec_summary": why["summary"],
        "rec_model_version": why["model"]["version"] or "",
    }


def got(row: dict[str, str]) -> dict[str, Any] | None:
    if row["rec_status"] != "ok":
        return None
    out: dict[str, Any] = {k: row[k] for k in batch_columns.OUTPUT.names[2:]}
    out["rec_confidence"] = float(out["rec_confidence"])
    return out


# --- the single-request path ------------------------------------------------------------------


@FAST
@given(flats=st.lists(requests(), min_size=1, max_size=30), spelling=st.integers(0, 2))
def test_every_scored_row_equals_the_single_request_path(
    flats, spelling, recommender, models, tmp_path_factory
):
    src = tmp_path_factory.mktemp("eq") / "in.csv"
    write_requests(src, flats, spelling)
    assert score(src, models)[0] == 0
    out = rows(src.with_name("in.out.csv"))
    assert len(out) == len(flats)
    for flat, row in zip(flats, out, strict=True):
        assert got(row) == expected(recommender, flat), flat


@pytest.mark.parametrize("champion", ["none", "refused"])
def test_without_a_usable_champion_nothing_is_scored_unless_rules_only_is_asked(tmp_path, champion):
    models = tmp_path / "models"
    if champion == "refused":
        (models / "registry").mkdir(parents=True)
        (models / "champion.json").write_text('{"champion": "20260101T000000000000Z"}')
    src = tmp_path / "in.csv"
    src.write_text("footwear.current_drop_mm\n8\n")
    out = tmp_path / "out.csv"
    code, err = score(src, models, out=out)
    assert code == 2 and "--rules-only" in err and str(models) in err
    assert not out.exists()
    code, err = score(src, models, "--rules-only", out=out)
    assert code == 0 and rows(out)[0]["rec_model_version"] == ""


@FAST
@given(flats=st.lists(requests(), min_size=1, max_size=20))
def test_rules_only_rows_equal_the_degraded_single_request_path(
    flats, rules_only, no_models, tmp_path_factory
):
    src = tmp_path_factory.mktemp("eq") / "in.csv"
    write_requests(src, flats)
    code, err = score(src, no_models, "--rules-only")
    assert code == 0
    assert "--rules-only: scoring with the rules only" in err
    for flat, row in zip(flats, rows(src.with_name("in.out.csv")), strict=True):
        assert got(row) == expected(rules_only, flat)


def test_a_cohort_scores_like_the_single_request_path_row_by_row(
    recommender, models, tmp_path, cohort_csv
):
    out = tmp_path / "out.csv"
    assert score(cohort_csv, models, "--chunk-rows", "700", out=out)[0] == 0
    scored = rows(out)
    assert len(scored) == 4000
    for row in scored[::7]:
        flat = {p: row[p] for p in BY_PATH if row[p] != ""}
        for path, value in flat.items():
            kind = BY_PATH[path].kind
            if kind == "bool":
                flat[path] = value == "true"
            elif kind not in ("enum", "text"):
                flat[path] = json.loads(value)
        assert got(row) == expected(recommender, flat)


def test_confidence_rounds_to_four_places_exactly_as_python_round():
    rng = np.random.default_rng(0)
    halves = (np.arange(20_000) + 0.5) / 1e4  # ties in decimal, near-ties in binary
    x = np.concatenate([rng.random(20_000), halves, np.nextafter(halves, 0)])
    assert batch_columns.round4(x).tolist() == [round(v, 4) for v in x.tolist()]


# --- nothing lost ------------------------------------------------------------------------------


BAD_KINDS = (
    "wrong type",
    "out of range",
    "no drop",
    "too many fields",
    "too few fields",
    "open quote",
    "quote inside",
)


def _record(kind: str, i: int) -> tuple[str, str]:
    """A CSV line of HEADER's columns, and what its error must mention ('' if none)."""
    ref = f"r{i}"
    lines = {
        "good": (f'{ref},8,2,"a, ""quoted""\nnote"', ""),
        "wrong type": (f"{ref},eight,2,x", "footwear.current_drop_mm must be a number"),
        "out of range": (f"{ref},8,11,x", "symptoms.achilles_pain must be a whole number"),
        "no drop": (f"{ref},,2,x", "footwear.current_drop_mm is required"),
        "too many fields": (f"{ref},8,2,x,y", "5 fields where the header has 4"),
        "too few fields": (f"{ref},8", "2 fields where the header has 4"),
        "open quote": (f'{ref},8,2,"unclosed', "broken quoting"),
        "quote inside": (f'{ref},8,2,5" shoe', "broken quoting"),
    }
    return lines[kind]


@FAST
@given(
    kinds=st.lists(st.sampled_from(("good",) * 4 + BAD_KINDS), min_size=1, max_size=40),
    newline=st.sampled_from(["\n", "\r\n"]),
    blanks=st.booleans(),
    block=st.integers(8, 400),
)
def test_every_record_gets_one_row_in_order_and_bad_ones_say_which_row_and_why(
    kinds, newline, blanks, block, tmp_path_factory
):
    src = tmp_path_factory.mktemp("planted") / "in.csv"
    lines = [_record(kind, i) for i, kind in enumerate(kinds)]
    text = newline.join([",".join(HEADER)] + [line for line, _ in lines])
    if blanks:  # blank lines are not records
        text = text.replace(f"{newline}r1,", f"{newline}{newline}r1,")
    src.write_bytes(text.encode())
    source = batch_input.open_input(src, 10)
    assert isinstance(source, batch_input.CsvInput)
    source.block = block  # records cut by block ends must wait for the next block
    sink_path = src.with_name("out.csv")
    sink = batch_output.Sink(sink_path, sink_path, source.names, source.schema)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(csv_records, "WINDOW", 64)  # and quoted records scanned in small windows
        known = {path: f"c{i}" for path, i in headers.match(source.names).known.items()}
        batch.score_local(source, Recommender(model=None), sink, 2, _Quiet(), known)
    sink.close()
    out = rows(sink_path)
    assert len(out) == len(kinds)
    for i, (row, (_, why)) in enumerate(zip(out, lines, strict=True)):
        if why:
            assert row["rec_status"] == "error"
            assert row["rec_error"].startswith(f"row {i + 2}: ") and why in row["rec_error"]
        else:
            assert row["rec_status"] == "ok", row
            assert row["client_ref"] == f"r{i}"
            assert row["note"] == 'a, "quoted"\nnote'  # commas, quotes, a line break: intact


class _Quiet:
    def update(self, n: int, reached: int | None = None) -> None:
        pass


@pytest.mark.parametrize(
    ("body", "refs", "why"),
    [
        ("r1,8,2,x\nr2,8,2,x,extra\nr3,8,2,x\n", ["r1", "", "r3"], "5 fields where the header"),
        ("r1,8,2,x\nr2,8\nr3,8,2,x\n", ["r1", "", "r3"], "2 fields where the header"),
        ('r1,8,2,x\nr2,8,2,"never closed\nr3,8,2,x\nr4,8,2,x\n', ["r1", "", "r3", "r4"], "quoting"),
        ('r1,8,2,x\nr2,8,2,ab"c\nr3,8,2,"ok"\n', ["r1", "", "r3"], "quoting"),
        ('r1,8,2,"x"y\nr2,8,2,x\n', ["", "r2"], "quoting"),
        ("r1,8,2,x\nr2,8,\n2,x\nr3,8,2,x\n", ["r1", "", "", "r3"], "fields where the header"),
    ],
    ids=["too-many", "too-few", "unclosed-quote", "quote-in-value", "text-after-quote", "split"],
)
def test_a_malformed_line_is_an_error_row_and_the_rest_are_scored(
    body, refs, why, tmp_path, no_models
):
    src = tmp_path / "in.csv"
    src.write_text(",".join(HEADER) + "\n" + body)
    code, err = score(src, no_models, "--rules-only")
    assert code == 0
    out = rows(tmp_path / "in.out.csv")
    assert [r["client_ref"] for r in out] == refs
    for i, row in enumerate(out):
        assert (row["rec_status"] == "ok") == bool(refs[i])
        if not refs[i]:
            assert row["rec_error"].startswith(f"row {i + 2}: ") and why in row["rec_error"]
    assert err.strip().endswith(f"{len(refs)} rows: {sum(map(bool, refs))} ok, "
                                f"{refs.count('')} errors")  # fmt: skip


def test_an_unclosed_quote_in_a_large_file_costs_one_row(tmp_path, no_models):
    src = tmp_path / "in.csv"
    good = "".join(f"r{i},8,2,x\n" for i in range(60_000))
    src.write_text(",".join(HEADER) + '\nr,8,2,"never closed\n' + good)
    assert score(src, no_models, "--rules-only", "--chunk-rows", "5000")[0] == 0
    out = rows(tmp_path / "in.out.csv")
    assert len(out) == 60_001
    assert out[0]["rec_status"] == "error" and "quoting" in out[0]["rec_error"]
    assert all(r["rec_status"] == "ok" for r in out[1:])


def test_a_quoted_line_break_in_any_column_round_trips(tmp_path, no_models):
    src = tmp_path / "in.csv"
    src.write_text(
        ",".join(HEADER) + "\r\n" + '"a\r\nb",8,2,"line one\nline two"\r\n' + 'c,"8",2,""\r\n'
    )
    assert score(src, no_models, "--rules-only")[0] == 0
    out = rows(tmp_path / "in.out.csv")
    assert [(r["client_ref"], r["note"], r["rec_status"]) for r in out] == [
        ("a\r\nb", "line one\nline two", "ok"),
        ("c", "", "ok"),
    ]


# --- unusable input ---------------------------------------------------------------------------


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_column(tmp_path, no_models):
    src = tmp_path / "in.csv"
    src.write_bytes(b"\xef\xbb\xbf" + "footwear.current_drop_mm,client_ref\n8,é\n".encode())
    assert score(src, no_models, "--rules-only")[0] == 0
    [row] = rows(tmp_path / "in.out.csv")
    assert (row["footwear.current_drop_mm"], row["client_ref"], row["rec_status"]) == (
        "8",
        "é",
        "ok",
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"footwear.current_drop_mm,client_ref\n8,M\xfcller\n", "not UTF-8"),
        ("footwear.current_drop_mm,client_ref\n".encode("utf-16"), "binary"),
        (b"foot\xfcwear.current_drop_mm\n8\n", "not UTF-8"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary"),
        (b"", "no header"),
        (b'{"footwear": {"current_drop_mm": 8}}\n', "no column for footwear.current_drop_mm"),
        (b"client_ref,age\nx,1\n", "no column for footwear.current_drop_mm"),
        (b"footwear.current_drop_mm,footwear.current_drop_mm\n8,9\n", "more than once"),
    ],
    ids=["latin1-row", "utf16", "latin1-header", "png", "empty", "json", "no-drop", "twice"],
)
def test_unusable_input_exits_2_with_a_clear_message_and_writes_nothing(
    content, message, tmp_path, no_models
):
    src = tmp_path / "in.csv"
    src.write_bytes(content)
    code, err = score(src, no_models, "--rules-only")
    assert code == 2
    assert message in err
    assert not (tmp_path / "in.out.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]  # no temporary file left


def test_a_missing_file_exits_2(tmp_path, no_models):
    code, err = score(tmp_path / "nope.csv", no_models, "--rules-only")
    assert (code, "no such file" in err) == (2, True)


def test_a_latin1_row_after_many_good_chunks_still_writes_nothing(tmp_path, no_models):
    src = tmp_path / "in.csv"
    good = "".join(f"r{i},8\n" for i in range(30_000)).encode()
    src.write_bytes(b"client_ref,footwear.current_drop_mm\n" + good + b"M\xfcller,8\n")
    code, err = score(src, no_models, "--rules-only", "--chunk-rows", "1000")
    assert code == 2 and "not UTF-8" in err
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


def test_a_nul_byte_past_the_first_mib_is_binary_input_and_writes_nothing(tmp_path, no_models):
    src = tmp_path / "in.csv"
    good = "".join(f"r{i},8\n" for i in range(300_000)).encode()  # 2.6 MB before it
    src.write_bytes(b"client_ref,footwear.current_drop_mm\n" + good + b"x\x00y,8\nlast,6\n")
    code, err = score(src, no_models, "--rules-only")
    assert code == 2 and "binary data" in err
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


# --- records too long to read -----------------------------------------------------------------


@pytest.mark.parametrize("engine", ["pandas", "dask"])
def test_a_record_longer_than_a_mib_is_that_rows_error_in_its_place(tmp_path, no_models, engine):
    src = tmp_path / "in.csv"
    mib = 1 << 20
    src.write_bytes(
        b"client_ref,footwear.current_drop_mm\n"
        b"a,8\n"
        + b"b,"
        + b" " * (3 * mib)
        + b"8\n"  # spaces in the drop: one unquoted line
        + b'c,"'
        + b"x" * (3 * mib)
        + b'"\n'  # one quoted field
        + b'd,"'
        + b"y\n" * mib
        + b'"\n'  # a quoted field over many lines
        + b"e,6"  # and a last line without its line break
    )
    code, err = score(src, no_models, "--rules-only", "--engine", engine)
    assert code == 0, err
    got = rows(tmp_path / "in.out.csv")
    assert [(r["client_ref"], r["rec_status"]) for r in got][:2] == [("a", "ok"), ("", "error")]
    assert got[1]["rec_error"] == "row 3: the record is longer than 1 MiB"
    assert "longer than 1 MiB" in got[2]["rec_error"]
    assert (got[-1]["client_ref"], got[-1]["rec_status"]) == ("e", "ok")


@pytest.mark.slow
def test_memory_stays_flat_however_long_a_line_is(tmp_path):
    """A 400 MB line (its drop 400 MB of spaces) costs a skip, not its size in memory: the
    child's peak stays well under what reading the line would take (about 4x its size)."""
    src = tmp_path / "in.csv"
    with open(src, "wb") as fh:
        fh.write(b"client_ref,footwear.current_drop_mm\na,8\nb,")
        chunk = b" " * (1 << 24)
        for _ in range(24):
            fh.write(chunk)
        fh.write(b"8\nc,6\n")
    measure = (
        "import resource, subprocess, sys; "
        "code = subprocess.call(sys.argv[1:], stdout=subprocess.DEVNULL, "
        "stderr=subprocess.DEVNULL); "
        "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
    )
    out = subprocess.run(
        [sys.executable, "-c", measure, sys.executable, "-m", "service.cli", "score", str(src),
         "-o", str(tmp_path / "out.csv"), "--rules-only"],
        capture_output=True, text=True, check=True, timeout=300,
    ).stdout.split()  # fmt: skip
    code, peak_kib = int(out[0]), int(out[1])
    assert code == 0
    assert peak_kib < 600 * 1024, f"peak {peak_kib / 1024:.0f} MiB for a 400 MB line"
    assert [r["rec_status"] for r in rows(tmp_path / "out.csv")] == ["ok", "error", "ok"]


# --- columns and escaping ---------------------------------------------------------------------


def test_unknown_columns_pass_through_untouched_and_are_named_in_one_warning(tmp_path, no_models):
    src = tmp_path / "in.csv"
    src.write_text("shop,footwear.current_drop_mm,visit date\n  Bern ,8,2025-01-02\n")
    code, err = score(src, no_models, "--rules-only")
    assert code == 0
    warnings = [line for line in err.splitlines() if "unknown columns" in line]
    assert warnings == [
        "heeldrop score: warning: unknown columns passed through untouched: shop, visit date"
    ]
    [row] = rows(tmp_path / "in.out.csv")
    assert (row["shop"], row["visit date"]) == ("  Bern ", "2025-01-02")


def test_cells_a_spreadsheet_would_run_as_formulas_are_escaped_and_numbers_are_not(
    tmp_path, no_models
):
    src = tmp_path / "in.csv"
    src.write_text(
        "client_ref,footwear.current_drop_mm,=cmd|' /C calc'!A0,memo\n"
        '"=HYPERLINK(""http://x"")",8,@SUM(1),-1.5\n'
        "+1+1,-2,\tTAB,-1+2\n"
        "ok,8,plain,+3\n"
    )
    assert score(src, no_models, "--rules-only")[0] == 0
    text = (tmp_path / "in.out.csv").read_text()
    out = rows(tmp_path / "in.out.csv")
    assert "\"'=cmd|' /C calc'!A0\"" in text.splitlines()[0]
    assert [r["client_ref"] for r in out] == ['\'=HYPERLINK("http://x")', "'+1+1", "ok"]
    assert [r["'=cmd|' /C calc'!A0"] for r in out] == ["'@SUM(1)", "'\tTAB", "plain"]
    assert [r["memo"] for r in out] == ["-1.5", "'-1+2", "+3"]  # numbers are data
    assert out[1]["footwear.current_drop_mm"] == "-2"  # out of range, but still a number
    assert out[1]["rec_error"] == "row 3: footwear.current_drop_mm must be a number from 0 to 30"


# --- Parquet ----------------------------------------------------------------------------------


def test_parquet_in_and_out_give_the_same_answers_as_csv(tmp_path, models, cohort_csv):
    assert score(cohort_csv, models, out=tmp_path / "a.csv")[0] == 0
    assert score(cohort_csv, models, out=tmp_path / "a.parquet")[0] == 0
    typed = pacsv.read_csv(cohort_csv)  # numbers and booleans as Parquet types
    pq.write_table(typed, tmp_path / "typed.parquet", row_group_size=1500)
    assert score(tmp_path / "typed.parquet", models, out=tmp_path / "b.csv")[0] == 0
    from_csv = pq.read_table(tmp_path / "a.parquet")
    assert from_csv.column_names == list(rows(tmp_path / "a.csv")[0])
    assert from_csv.schema.field("rec_drop_min_mm").type == pa.int64()
    assert from_csv.schema.field("person.age_years").type == pa.string()  # passed through as text
    text, typed_out = rows(tmp_path / "a.csv"), rows(tmp_path / "b.csv")
    decided = batch_columns.OUTPUT.names
    assert [[r[k] for k in decided] for r in text] == [[r[k] for k in decided] for r in typed_out]
    assert from_csv.column("rec_summary").to_pylist() == [r["rec_summary"] for r in text]


# --- progress and interruption ----------------------------------------------------------------


def test_a_terminal_gets_a_progress_bar_and_a_pipe_only_the_last_line(tmp_path, no_models):
    src = tmp_path / "in.csv"
    src.write_text("footwear.current_drop_mm\n" + "8\n" * 500)
    cmd = [sys.executable, "-m", "service.cli", "score", str(src), "-o", str(tmp_path / "o.csv"),
           "--rules-only"]  # fmt: skip
    env = os.environ | {"HEELDROP_MODELS_DIR": str(no_models)}
    piped = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    assert piped.stderr.splitlines()[-1] == "500 rows: 500 ok, 0 errors"
    assert "rows/s" not in piped.stderr
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    subprocess.run(cmd, env=env, stderr=follower, stdout=subprocess.DEVNULL, check=True)
    os.close(follower)
    shown = os.read(leader, 1 << 16).decode()
    os.close(leader)
    assert "rows/s" in shown and "500" in shown


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.csv"
    write_cohort(path, 200_000, seed=5)
    return path


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_an_interrupted_run_leaves_no_output_file(sig, big_csv, tmp_path, no_models):
    target = tmp_path / "out" / "scored.csv"
    cmd = [sys.executable, "-m", "service.cli", "score", str(big_csv), "-o", str(target),
           "--rules-only"]  # fmt: skip
    env = os.environ | {"HEELDROP_MODELS_DIR": str(no_models)}
    proc = subprocess.Popen([*cmd, "--chunk-rows", "2000", "--jobs", "1"], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size for p in target.parent.glob(".scored.csv.*.tmp")):
        assert proc.poll() is None and time.monotonic() < deadline, "no partial output seen"
        time.sleep(0.05)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert not target.exists()
    if sig != signal.SIGKILL:  # SIGKILL cannot be caught; only its temporary file remains
        assert proc.returncode == 130 and "interrupted" in err
        assert list(target.parent.iterdir()) == []


def test_out_equal_to_in_is_refused_and_the_input_kept(tmp_path, no_models):
    src = tmp_path / "in.csv"
    src.write_text("footwear.current_drop_mm\n8\n")
    (tmp_path / "link.csv").symlink_to(src)
    for out in (src, tmp_path / "." / "in.csv", tmp_path / "link.csv"):
        code, err = score(src, no_models, "--rules-only", out=out)
        assert code == 2 and "OUT is IN" in err
    assert src.read_text() == "footwear.current_drop_mm\n8\n"


# --- customer files as shops have them --------------------------------------------------------


def respell(src: Path, dst: Path, sep: str = ",", mark: str = ".", labels: bool = False) -> None:
    """`src` as another shop writes it: headers as labels typed with units ("Current drop (mm)",
    mixed case), the separator `sep`, numbers with the decimal `mark`."""
    with open(src, newline="", encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    names = table[0]
    if labels:
        names = [
            (headers.typed(BY_PATH[n]).upper() if i % 3 == 0 else headers.typed(BY_PATH[n]))
            if n in BY_PATH else n
            for i, n in enumerate(names)
        ]  # fmt: skip
    numeric = [i for i, n in enumerate(table[0]) if n in BY_PATH and BY_PATH[n].kind == "number"]
    for row in table[1:]:
        for i in numeric:
            row[i] = row[i].replace(".", mark)
    with open(dst, "w", newline="", encoding="utf-8") as fh:
        csv.writer(fh, delimiter=sep).writerows([names, *table[1:]])


def decided(path: Path) -> list[list[str]]:
    return [[r[k] for k in batch_columns.OUTPUT.names] for r in rows(path)]


def test_typed_headers_give_the_same_answers_as_field_paths(models, cohort_csv, tmp_path):
    """The issue's K1001: "Current drop (mm)" and the other columns typed as labels are read,
    not passed through: every answer equals the canonical file's."""
    typed = tmp_path / "typed.csv"
    respell(cohort_csv, typed, labels=True)
    assert typed.read_text().startswith("CLIENT REFERENCE,Age (years),Body mass (kg),SEX,")
    assert score(cohort_csv, models, out=tmp_path / "a.csv")[0] == 0
    code, err = score(typed, models, out=tmp_path / "b.csv")
    assert code == 0
    assert "'Current drop (mm)' as footwear.current_drop_mm" in err
    assert "unknown columns passed through untouched: outcome_band, outcome_drop_mm" in err
    assert decided(tmp_path / "b.csv") == decided(tmp_path / "a.csv")
    assert sum(r["rec_status"] == "ok" for r in rows(tmp_path / "b.csv")) == 4000


@pytest.mark.parametrize(("sep", "mark"), [(";", ","), ("\t", "."), ("\t", ",")])
def test_european_exports_are_detected_and_answer_as_the_comma_file(
    sep, mark, models, cohort_csv, tmp_path
):
    shop = tmp_path / "shop.csv"
    respell(cohort_csv, shop, sep, mark, labels=True)
    assert score(cohort_csv, models, out=tmp_path / "a.csv")[0] == 0
    code, err = score(shop, models, out=tmp_path / "b.csv")
    shown = {";": "';'", "\t": "tab"}[sep]
    assert f"separator {shown} (detected), decimal {'comma' if mark == ',' else 'point'} " \
           "(detected)" in err  # fmt: skip
    assert code == 0
    out = rows(tmp_path / "b.csv", sep)  # written as it came
    assert [[r[k] for k in batch_columns.OUTPUT.names if k != "rec_confidence"] for r in out] == [
        row[:6] + row[7:] for row in decided(tmp_path / "a.csv")
    ]
    confidence = [r["rec_confidence"] for r in out]
    assert confidence == [r["rec_confidence"].replace(".", mark) for r in rows(tmp_path / "a.csv")]


def test_sep_and_decimal_given_override_detection(no_models, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("footwear.current_drop_mm;person.body_mass_kg\n8;70,5\n")
    code, err = score(src, no_models, "--rules-only", "--decimal", ".")
    assert code == 0 and "separator ';' (detected), decimal point (given)" in err
    [row] = rows(tmp_path / "in.out.csv", sep=";")
    assert "person.body_mass_kg must be a number" in row["rec_error"]
    one = tmp_path / "one.csv"  # one column: nothing in its header to detect a separator from
    one.write_text("Current drop (mm)\n7,5\n")
    code, err = score(one, no_models, "--rules-only", "--sep", ";", "--decimal", ",")
    assert code == 0 and "separator ';' (given), decimal comma (given)" in err
    assert rows(tmp_path / "one.out.csv", sep=";")[0]["rec_status"] == "ok"


@pytest.mark.parametrize("option", [("--sep", "|"), ("--decimal", ";")])
def test_an_unsupported_separator_or_mark_is_a_usage_error(option, tmp_path, capsys):
    with pytest.raises(SystemExit) as done:
        cli.parser().parse_args(["score", "in.csv", "-o", "out.csv", *option])
    assert done.value.code == 2 and option[0] in capsys.readouterr().err


def test_a_missing_drop_column_lists_the_expected_headers(no_models, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("Customer,Drop,Achilles pain\nK1001,8,2\n")
    code, err = score(src, no_models, "--rules-only")
    assert code == 2
    assert "no column for footwear.current_drop_mm (Current drop (mm))" in err
    assert re.search(r"\n  mobility.knee_to_wall_cm.left +or  Knee to wall, left \(cm\)\n", err)
    assert [p.name for p in tmp_path.iterdir()] == ["in.csv"]


def test_a_column_like_a_field_is_refused_unless_allow_unknown(no_models, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("Customer,Current drop (mm),Achilles pian,Notes\nK1001,8,6,x\n")
    code, err = score(src, no_models, "--rules-only")
    assert code == 2
    assert "'Achilles pian' looks like symptoms.achilles_pain (Achilles pain (/10))" in err
    assert re.search(r"footwear.current_drop_mm +or  Current drop \(mm\)  \(required\)", err)
    assert not (tmp_path / "in.out.csv").exists()
    code, err = score(src, no_models, "--rules-only", "--allow-unknown")
    assert code == 0
    assert "passed through unread though they look like fields: 'Achilles pian'" in err
    [row] = rows(tmp_path / "in.out.csv")
    assert (row["Achilles pian"], row["Notes"], row["rec_status"]) == ("6", "x", "ok")


def test_a_column_map_names_the_columns_and_a_bad_one_is_refused(no_models, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("Kunde,Sprengung,Achillessehne\nK1001,8,6\n")
    (tmp_path / "map.toml").write_text(
        '"Sprengung" = "footwear.current_drop_mm"\n"Achillessehne" = "symptoms.achilles_pain"\n'
    )
    code, err = score(src, no_models, "--rules-only", "--columns", str(tmp_path / "map.toml"))
    assert code == 0 and "'Sprengung' as footwear.current_drop_mm" in err
    [row] = rows(tmp_path / "in.out.csv")
    mapped, plain = row["rec_summary"], tmp_path / "plain.csv"
    plain.write_text("footwear.current_drop_mm,symptoms.achilles_pain\n8,6\n")
    assert score(plain, no_models, "--rules-only")[0] == 0
    assert rows(tmp_path / "plain.out.csv")[0]["rec_summary"] == mapped
    (tmp_path / "bad.toml").write_text('"Sprengung" = "footwear.drop"\n')
    code, err = score(src, no_models, "--rules-only", "--columns", str(tmp_path / "bad.toml"))
    assert code == 2 and "'footwear.drop', which is no field" in err


def test_excel_output_has_a_byte_order_mark_and_crlf_line_ends(no_models, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text('footwear.current_drop_mm,client_ref\n8,"a\nb"\n9,é\n')
    assert score(src, no_models, "--rules-only", "--excel", out=tmp_path / "x.csv")[0] == 0
    assert score(src, no_models, "--rules-only", out=tmp_path / "plain.csv")[0] == 0
    excel, plain = (tmp_path / "x.csv").read_bytes(), (tmp_path / "plain.csv").read_bytes()
    assert excel.startswith(b'\xef\xbb\xbf"footwear.current_drop_mm"')
    assert excel.count(b"\r\n") == 3 and excel.endswith(b"\r\n")
    assert b'"a\nb"' in excel  # a line break inside a value stays as it was
    assert not plain.startswith(b"\xef\xbb\xbf") and b"\r\n" not in plain
    assert excel[3:].replace(b"\r\n", b"\n") == plain


def test_a_phone_number_passes_through_as_data_and_a_formula_is_defused(no_models, tmp_path):
    src = tmp_path / "in.csv"
    src.write_text("footwear.current_drop_mm,Phone,Notes\n8,+49 170 1234567,=1+1\n")
    assert score(src, no_models, "--rules-only")[0] == 0
    [row] = rows(tmp_path / "in.out.csv")
    assert (row["Phone"], row["Notes"]) == ("+49 170 1234567", "'=1+1")


PROGRESS = re.compile(
    r"heeldrop score: [\d,]+ rows, [\d,]+ rows/s(, (\d+)% read, about \d+ (s|min|h \d+ min) left)?"
)


def test_a_run_without_a_terminal_logs_progress_lines_with_the_share_read(tmp_path, no_models):
    src = tmp_path / "in.csv"
    src.write_text(
        "footwear.current_drop_mm,Notes\n" + "8,a note of some forty characters or so\n" * 30_000
    )
    cmd = [sys.executable, "-m", "service.cli", "score", str(src), "-o", str(tmp_path / "o.csv"),
           "--rules-only", "--chunk-rows", "5000", "--jobs", "1",
           "--progress-every", "0"]  # fmt: skip
    env = os.environ | {"HEELDROP_MODELS_DIR": str(no_models)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    lines = [line for line in done.stderr.splitlines() if line.endswith(("left", "rows/s"))]
    assert len(lines) >= 3 and all(PROGRESS.fullmatch(line) for line in lines), done.stderr
    counts = [int(PROGRESS.fullmatch(line)[0].split()[2].replace(",", "")) for line in lines]
    assert counts == sorted(counts) and counts[-1] == 30_000
    shares = [int(m[2]) for line in lines if (m := PROGRESS.fullmatch(line)) and m[2]]
    assert shares and shares == sorted(shares) and all(0 < s < 100 for s in shares)
    assert done.stderr.splitlines()[-1] == "30000 rows: 30000 ok, 0 errors"


def test_an_effective_drop_past_30_mm_is_a_row_error_that_reads_as_a_sentence(tmp_path, models):
    src = tmp_path / "in.csv"
    src.write_text("footwear.current_drop_mm,footwear.heel_insert_mm\n20,15\n20,10\n")
    code, _ = score(src, models)
    assert code == 0
    over, at = rows(tmp_path / "in.out.csv")
    assert over["rec_error"] == (
        "row 2: footwear.heel_insert_mm must keep the effective drop (current_drop_mm + "
        "heel_insert_mm) at 30 mm or less; nothing heeldrop advises goes past it"
    )
    assert at["rec_status"] == "ok"  # 30 mm itself is answered
