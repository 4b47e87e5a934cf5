"""Batch scoring (`heeldrop score`): a file of requests in, a scored row out for every record.

Streams in chunks through the API's vectorised core, so memory is bounded by the chunk size
whatever the file size: pieces of the input (batch_input, csv_records) become the rec_ columns
(batch_columns, summaries) on a thread pool, or on Dask (dask_engine), and are written in order
(batch_output). Docs: docs/batch.md.
"""

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from service.batch.columns import score_table
from service.batch.reader import Input, known_columns, open_input
from service.batch.writer import Sink
from service.config import Config
from service.core.errors import InvalidInput, ModelRefused
from service.core.fields import BY_PATH
from service.files import atomic_path

if TYPE_CHECKING:  # the recommender (and marshmallow under it) loads only to score a file
    from service.core.recommend import Recommender

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130


def ordered(submit: Callable[[Any], Any], items: Iterable[Any], ahead: int) -> Iterator[Any]:
    """Each item submitted, results yielded in order, at most `ahead` + 1 in flight.

    `submit` returns a future (concurrent.futures or dask.distributed).
    """
    pending: deque[Any] = deque()
    try:
        for item in items:
            pending.append(submit(item))
            if len(pending) > ahead:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:
        for future in pending:
            future.cancel()


def score_local(
    source: Input, recommender: "Recommender", sink: Sink, jobs: int, progress: Any
) -> None:
    """The pandas engine: chunks scored on `jobs` threads, written in order."""
    known = known_columns(source.names)

    def work(piece: Any) -> pa.Table:
        return sink.prepare(score_table(source.table(piece), known, recommender))

    # The chunks are the parallelism: BLAS threads inside each chunk's model call would only
    # spin beside them (about a third more CPU time). Dask workers get the same limit from Dask.
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="score") as pool,
    ):
        for table in ordered(lambda piece: pool.submit(work, piece), source.pieces(), ahead=jobs):
            sink.write(table)
            progress.update(table.num_rows)


def _recommender(config: Config, rules_only: bool) -> "Recommender | None":
    """The champion's recommender; without a usable champion, the rules' alone when asked for
    (`--rules-only`), else None: a customer file is never scored without the model unawares."""
    from service.core.recommend import Recommender
    from service.registry import Registry

    if rules_only:
        _warn("--rules-only: scoring with the rules only, without a model")
        return Recommender(model=None)
    try:
        model = Registry(config.models_dir).load_champion()
    except ModelRefused as exc:
        problem = f"the champion model in {config.models_dir} is refused ({exc})"
    else:
        if model is not None:
            return Recommender(model=model)
        problem = f"no champion model in {config.models_dir} (HEELDROP_MODELS_DIR)"
    print(f"heeldrop score: {problem}; train one (`make model`) or score with the rules alone "
          "with --rules-only", file=sys.stderr)  # fmt: skip
    return None


def _warn(message: str) -> None:
    print(f"heeldrop score: warning: {message}", file=sys.stderr)


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


@contextlib.contextmanager
def _terminate_unwinds() -> Iterator[None]:
    """Let SIGTERM unwind like Ctrl-C, so the temporary output file is removed."""
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        yield
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def cmd_score(args: argparse.Namespace, config: Config) -> int:
    source_path, target_path = Path(args.input), Path(args.output)
    if target_path.exists() and source_path.exists() and target_path.samefile(source_path):
        print("heeldrop score: OUT is IN; write the scored file elsewhere (the input is never "
              "replaced)", file=sys.stderr)  # fmt: skip
        return EXIT_BAD_INPUT
    try:
        source = open_input(Path(args.input), args.chunk_rows)
    except InvalidInput as exc:
        print(f"heeldrop score: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    unknown = [name for name in source.names if name.strip() not in BY_PATH]
    if unknown:
        _warn(f"unknown columns passed through untouched: {', '.join(unknown)}")
    recommender = _recommender(config, args.rules_only)
    if recommender is None:
        return EXIT_BAD_INPUT
    target = Path(args.output)
    bar = tqdm(unit=" rows", unit_scale=True, disable=not sys.stderr.isatty(), file=sys.stderr)
    try:
        with _terminate_unwinds(), bar, atomic_path(target) as tmp:
            sink = Sink(tmp, target, source.names, source.schema)
            if args.engine == "dask":
                from service.batch import dask_engine

                dask_engine.score(source, recommender, sink, args.jobs, args.scheduler, bar)
            else:
                score_local(source, recommender, sink, args.jobs, bar)
            sink.close()
    except InvalidInput as exc:
        print(f"heeldrop score: {exc}; nothing written", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print(f"heeldrop score: interrupted; {target} not written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        print(f"heeldrop score: {exc}; {target} not written", file=sys.stderr)
        return EXIT_FAILED
    print(f"{sink.rows} rows: {sink.ok} ok, {sink.rows - sink.ok} errors", file=sys.stderr)
    return EXIT_OK


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value


def register(sub: Any) -> None:
    """Add the `score` subcommand."""
    score = sub.add_parser(
        "score",
        help="score a CSV or Parquet file of requests",
        description="Score every record of IN into OUT (CSV or Parquet by extension). "
        "Exit 0 when every record got an output row, 2 for unusable input or no champion "
        "model (unless --rules-only).",
    )
    score.add_argument("input", metavar="IN", help="requests, one per record (.csv or .parquet)")
    score.add_argument("-o", "--output", metavar="OUT", required=True, help="scored file")
    score.add_argument(
        "--engine", choices=("pandas", "dask"), default="pandas",
        help="pandas: threads on this machine (default); dask: a Dask cluster (docs/batch.md)",
    )  # fmt: skip
    score.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: local)")
    score.add_argument(
        "--chunk-rows", type=_positive, default=20_000, help="rows per chunk (default 20000)"
    )
    jobs = min(4, os.cpu_count() or 1)
    score.add_argument(
        "--jobs",
        type=_positive,
        default=jobs,
        help=f"parallel workers: threads, or local Dask processes (default {jobs})",
    )
    score.add_argument(
        "--rules-only", action="store_true",
        help="score with the rules alone (without it, no champion model is exit 2)",
    )  # fmt: skip
    score.set_defaults(func=cmd_score)
