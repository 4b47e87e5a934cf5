"""Benchmark `heeldrop score` against the I/O floor measured in the same run, and its peak memory.

The floor is pyarrow streaming the same CSV in and out as text with as many added columns as
the scorer adds (goal: scoring within 3x of it). Peak RSS is measured per child process at 1M
and 5M rows (goal: under 1 GB, not growing with the rows). Each run is a fresh process started by
a small launcher that reads its wall time, CPU time and peak RSS (wait4). Uses the registry's
champion (HEELDROP_MODELS_DIR), training one on 20k simulated rows if there is none it can serve.

    python scripts/bench_batch.py [--rows 1000000] [--big 5000000] [--jobs N] [--repeat 3]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.csv as pacsv

from service.batch.columns import OUTPUT
from service.config import Config
from service.core.errors import ModelRefused
from service.registry import Registry
from service.training.cohort import write_cohort
from service.training.retrain import retrain

FLOOR = """
import sys, pyarrow as pa, pyarrow.csv as pacsv
src, dst, added = sys.argv[1], sys.argv[2], int(sys.argv[3])
names = pacsv.open_csv(src).schema.names
reader = pacsv.open_csv(src, convert_options=pacsv.ConvertOptions(
    column_types=dict.fromkeys(names, pa.string())))
writer = None
for batch in reader:
    extra = [pa.array(["ok"] * batch.num_rows)] * added
    out = pa.RecordBatch.from_arrays([*batch.columns, *extra],
                                     [*names, *(f"rec_{i}" for i in range(added))])
    writer = writer or pacsv.CSVWriter(dst, out.schema)
    writer.write_batch(out)
writer.close()
"""


# A child's peak RSS counts what it shared with its parent before exec, so every run starts
# from this small launcher rather than from this script, which holds the cohort in memory.
LAUNCH = """
import os, subprocess, sys, time
start = time.perf_counter()
child = subprocess.Popen(sys.argv[1:], stdout=subprocess.DEVNULL)
_, status, use = os.wait4(child.pid, 0)
print(time.perf_counter() - start, use.ru_utime + use.ru_stime, use.ru_maxrss / 1024, status)
"""


def run(cmd: list[str], env: dict[str, str] | None = None) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds and peak RSS (MiB) of one command."""
    done = subprocess.run(
        [sys.executable, "-c", LAUNCH, *cmd], env=env, capture_output=True, text=True
    )
    seconds, cpu, rss, status = done.stdout.split()
    if done.returncode or int(status):
        raise SystemExit(f"{cmd[:5]} failed:\n{done.stderr}")
    return float(seconds), float(cpu), float(rss)


def requests_csv(path: Path, rows: int) -> None:
    """The simulated cohort without its outcome columns: a shop's file of requests."""
    cohort = path.with_suffix(".cohort.csv")
    write_cohort(cohort, rows, seed=7)
    table = pacsv.read_csv(cohort).drop_columns(["outcome_band", "outcome_drop_mm"])
    pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="none"))
    cohort.unlink()


def repeated(src: Path, dst: Path, times: int) -> None:
    """`times` copies of src's records under one header, streamed (5M rows without 5M in RAM)."""
    with open(src, "rb") as fh:
        header = fh.readline()
        body_start = fh.tell()
    with open(dst, "wb") as out:
        out.write(header)
        for _ in range(times):
            with open(src, "rb") as fh:
                fh.seek(body_start)
                while block := fh.read(1 << 24):
                    out.write(block)


def models_dir(tmp: Path) -> Path:
    config = Config()
    try:
        if Registry(config.models_dir).load_champion():
            return config.models_dir
    except ModelRefused:  # one this code cannot serve (trained on other inputs): train anew
        pass
    write_cohort(tmp / "train.csv", 20_000, seed=1)
    retrain([tmp / "train.csv"], "force", Registry(tmp / "models"), config.cases_path, seed=1)
    return tmp / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big", type=int, default=5_000_000, help="rows for the memory check")
    parser.add_argument("--jobs", type=int, default=min(4, os.cpu_count() or 1))
    parser.add_argument("--chunk-rows", type=int, default=20_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        env = os.environ | {"HEELDROP_MODELS_DIR": str(models_dir(tmp))}
        src, big, out = tmp / "requests.csv", tmp / "big.csv", tmp / "out.csv"
        requests_csv(src, args.rows)
        floor = [sys.executable, "-c", FLOOR, str(src), str(out), str(len(OUTPUT))]
        ours = [sys.executable, "-m", "service.cli", "score", str(src), "-o", str(out)]
        ours += ["--jobs", str(args.jobs), "--chunk-rows", str(args.chunk_rows)]
        floors, scores = [], []
        for _ in range(args.repeat):  # interleaved, so load from elsewhere hits both alike
            floors.append(run(floor))
            scores.append(run(ours, env))
        wall, cpu = (
            statistics.median(r[0] for r in floors),
            statistics.median(r[1] for r in floors),
        )
        s_wall, s_cpu = (
            statistics.median(r[0] for r in scores),
            statistics.median(r[1] for r in scores),
        )
        mb = src.stat().st_size / 2**20
        print(
            f"{args.rows:,} rows, {mb:.0f} MiB CSV; median of {args.repeat}; {os.cpu_count()} cpus"
        )
        print(f"{'':44}{'wall':>9}{'ratio':>7}{'CPU':>9}{'ratio':>7}")
        for label, w, c in (
            (f"I/O floor (pyarrow in + out, +{len(OUTPUT)} columns)", wall, cpu),
            (f"heeldrop score --jobs {args.jobs}", s_wall, s_cpu),
        ):
            print(f"  {label:42}{w:8.2f}s{w / wall:7.2f}{c:8.2f}s{c / cpu:7.2f}")
        print(f"  goal: wall ratio <= 3.00; {args.rows / s_wall:,.0f} rows/s")
        print(
            f"  each run's wall: floor {[round(r[0], 2) for r in floors]}, "
            f"score {[round(r[0], 2) for r in scores]}"
        )
        print("peak RSS (goal < 1024 MiB, flat in rows)")
        print(f"  floor {args.rows:>11,} rows {max(r[2] for r in floors):7.0f} MiB")
        print(f"  score {args.rows:>11,} rows {max(r[2] for r in scores):7.0f} MiB")
        times = max(1, args.big // args.rows)
        repeated(src, big, times)
        seconds, _, rss = run([*ours[:4], str(big), *ours[5:]], env)
        print(f"  score {times * args.rows:>11,} rows {rss:7.0f} MiB   ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
