"""Batch scoring (`heeldrop score`): a file of requests in, a scored row out for every record.

Streams in chunks through the API's vectorised core, so memory is bounded by the chunk size
whatever the file size: pieces of the input (reader, records) with their header matched to
fields (headers) and their separator and decimal mark known (dialect) become the rec_ columns
(columns) on a thread pool, or on Dask (dask_engine), and are written in order (writer), with
progress (progress). Docs: docs/batch.md.
"""

import argparse
import contextlib
import os
import signal
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import pyarrow as pa
from threadpoolctl import threadpool_limits

from service.batch import headers
from service.batch.columns import NUMERIC, score_table
from service.batch.dialect import Dialect, decimal_mark
from service.batch.progress import progress
from service.batch.reader import CsvInput, Input, open_input
from service.batch.writer import Sink
from service.config import Config
from service.core.errors import InvalidInput
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
    source: Input,
    recommender: "Recommender",
    sink: Sink,
    jobs: int,
    progress: Any,
    known: Mapping[str, str],
    decimal: str = ".",
) -> None:
    """The pandas engine: chunks scored on `jobs` threads, written in order.

    `known`: field path -> the input's column; `decimal`: the numbers' decimal mark.
    """

    def work(piece: Any) -> tuple[pa.Table, int | None]:
        table = score_table(source.table(piece), known, recommender, decimal)
        return sink.prepare(table), source.reached(piece)

    # The chunks are the parallelism: BLAS threads inside each chunk's model call would only
    # spin beside them (about a third more CPU time). Dask workers get the same limit from Dask.
    with (
        threadpool_limits(limits=1, user_api="blas"),
        ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="score") as pool,
    ):
        for table, reached in ordered(
            lambda piece: pool.submit(work, piece), source.pieces(), ahead=jobs
        ):
            sink.write(table)
            progress.update(table.num_rows, reached)


def _recommender(config: Config, rules_only: bool) -> "Recommender":
    """The champion's recommender, or the rules' alone when asked for (`--rules-only`);
    InvalidInput without a usable champion: a customer file is never scored without the model
    unawares."""
    from service.cli import champion
    from service.core.recommend import Recommender

    if rules_only:
        _warn("--rules-only: scoring with the rules only, without a model")
        return Recommender(model=None)
    return Recommender(model=champion(config))


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


def _layout(args: argparse.Namespace, source: Input) -> tuple[dict[str, str], Dialect]:
    """The input's columns by field path, and how its cells are written; InvalidInput (listing
    the expected headers) when a required column is missing or one looks like a field."""
    mapping = headers.read_mapping(Path(args.columns)) if args.columns else None
    header = headers.match(source.names, mapping)
    headers.check(header, args.allow_unknown)
    known = {path: source.schema.names[i] for path, i in header.known.items()}
    dialect = Dialect(decimal=args.decimal or ".")
    if isinstance(source, CsvInput):
        decimal = args.decimal
        if decimal is None:
            first = source.first()
            numeric = [first.column(c) for p, c in known.items() if BY_PATH[p].kind in NUMERIC]
            decimal = decimal_mark(numeric)
        dialect = Dialect(source.sep, decimal, source.sep_given, args.decimal is not None)
        _say(f"reading {source.path}: {dialect.describe()}; --sep and --decimal set them")
    if header.matched:
        named = ", ".join(f"{name!r} as {path}" for name, path in header.matched)
        _say(f"columns matched by name: {named}")
    if header.unknown:
        _warn(f"unknown columns passed through untouched: {', '.join(header.unknown)}")
    if header.resembling:
        alike = ", ".join(f"{name!r} (like {path})" for name, path in header.resembling)
        _warn(f"--allow-unknown: passed through unread though they look like fields: {alike}")
    if header.unused:
        _warn(f"the column map names headers this file lacks: {', '.join(header.unused)}")
    return known, dialect


def _say(message: str) -> None:
    print(f"heeldrop score: {message}", file=sys.stderr)


def cmd_score(args: argparse.Namespace, config: Config) -> int:
    source_path, target_path = Path(args.input), Path(args.output)
    if target_path.exists() and source_path.exists() and target_path.samefile(source_path):
        _say("OUT is IN; write the scored file elsewhere (the input is never replaced)")
        return EXIT_BAD_INPUT
    try:
        source = open_input(source_path, args.chunk_rows, args.sep)
        known, dialect = _layout(args, source)
        recommender = _recommender(config, args.rules_only)
    except InvalidInput as exc:
        _say(str(exc))
        return EXIT_BAD_INPUT
    shown = progress(source.size, args.progress_every)
    try:
        with _terminate_unwinds(), shown, atomic_path(target_path) as tmp:
            sink = Sink(tmp, target_path, source.names, source.schema, dialect.sep,
                        dialect.decimal, args.excel)  # fmt: skip
            if args.engine == "dask":
                from service.batch import dask_engine

                dask_engine.score(source, recommender, sink, args.jobs, args.scheduler, shown,
                                  known, dialect.decimal)  # fmt: skip
            else:
                score_local(source, recommender, sink, args.jobs, shown, known, dialect.decimal)
            sink.close()
    except InvalidInput as exc:
        _say(f"{exc}; nothing written")
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        _say(f"interrupted; {target_path} not written")
        return EXIT_INTERRUPTED
    except OSError as exc:
        _say(f"{exc}; {target_path} not written")
        return EXIT_FAILED
    print(f"{sink.rows} rows: {sink.ok} ok, {sink.rows - sink.ok} errors", file=sys.stderr)
    return EXIT_OK


def _separator(text: str) -> str:
    seps = {",": ",", ";": ";", "tab": "\t", "\t": "\t", "\\t": "\t"}
    if text.lower() not in seps:
        raise argparse.ArgumentTypeError("must be , or ; or tab")
    return seps[text.lower()]


def _seconds(text: str) -> float:
    value = float(text)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be 0 or more seconds")
    return value


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
    score.add_argument(
        "--columns", metavar="MAP.toml",
        help='a TOML file of headers mapped to fields, one a line: "Their header" = '
        '"footwear.current_drop_mm" ("" passes a column through)',
    )  # fmt: skip
    score.add_argument(
        "--allow-unknown", action="store_true",
        help="pass through columns that look like a field but match none (else exit 2)",
    )  # fmt: skip
    score.add_argument(
        "--sep", type=_separator, help="the CSV separator: , or ; or tab (default: detected)"
    )
    score.add_argument(
        "--decimal", choices=(".", ","), help="the decimal mark of numbers (default: detected)"
    )
    score.add_argument(
        "--excel", action="store_true",
        help="CSV output for Excel: a UTF-8 byte-order mark and CRLF line ends",
    )  # fmt: skip
    score.add_argument(
        "--progress-every", type=_seconds, default=10.0, metavar="SECONDS",
        help="without a terminal, a progress line every SECONDS (default 10; 0: every chunk)",
    )  # fmt: skip
    score.set_defaults(func=cmd_score)
