"""The Dask engine of `heeldrop score`: the pandas engine's chunks, scored by `map_partitions`.

Partitions are the same pieces the pandas engine reads (byte ranges that start and end on a
record, or Parquet row groups); workers read them from the input path, so it must be shared
with them. The model is scattered to every worker once; results come back in order and go
through the same Sink, so the output is byte for byte the pandas engine's.
"""

import contextlib
from collections.abc import Mapping
from typing import Any

import dask.dataframe as dd
import pandas as pd
import pyarrow as pa
from distributed import Client, LocalCluster

from service.batch.columns import OUTPUT, score_table
from service.batch.reader import MALFORMED, CsvInput, Input
from service.batch.score import ordered
from service.batch.writer import Sink
from service.core.errors import InvalidInput
from service.core.model import ServingModel
from service.core.recommend import Recommender

CONNECT_TIMEOUT = "10s"
_RECOMMENDERS: dict[int, tuple[ServingModel | None, Recommender]] = {}


def _frame(table: pa.Table) -> pd.DataFrame:
    """Arrow-backed columns, so the trip through pandas gives back the same arrow table."""
    return table.to_pandas(types_mapper=pd.ArrowDtype)


def _recommender(model: ServingModel | None) -> Recommender:
    """One Recommender per worker process and shipped model, built on first use."""
    key = id(model)
    if key not in _RECOMMENDERS:
        _RECOMMENDERS[key] = (model, Recommender(model=model))
    return _RECOMMENDERS[key][1]


def _read(part: tuple[str, int, int], source: Input) -> pd.DataFrame:
    return _frame(source.read(part))


def _score(
    frame: pd.DataFrame, model: ServingModel | None, known: Mapping[str, str], decimal: str
) -> pd.DataFrame:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    return _frame(score_table(table, known, _recommender(model), decimal))


def score(
    source: Input,
    recommender: Recommender,
    sink: Sink,
    jobs: int,
    scheduler: str | None,
    progress: Any,
    known: Mapping[str, str],
    decimal: str = ".",
) -> None:
    """Score `source` into `sink` on the cluster at `scheduler`, else on `jobs` local workers;
    `known` and `decimal` as for the pandas engine."""
    with contextlib.ExitStack() as stack:
        if scheduler:
            try:
                client = stack.enter_context(Client(scheduler, timeout=CONNECT_TIMEOUT))
            except (OSError, TimeoutError) as exc:
                raise InvalidInput(
                    f"cannot reach the Dask scheduler at {scheduler} ({exc})"
                ) from None
        else:
            cluster = LocalCluster(
                n_workers=jobs, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = stack.enter_context(Client(stack.enter_context(cluster)))
        model = recommender.model
        shipped = client.scatter(model, broadcast=True) if model is not None else None
        raw = pa.schema([*source.schema, pa.field(MALFORMED, pa.string())])
        out = pa.schema([*source.schema, *OUTPUT])
        parts = source.parts()
        frames = dd.from_map(_read, parts, source=source, meta=_frame(raw.empty_table()))
        scored = frames.map_partitions(
            _score, shipped, dict(known), decimal, meta=_frame(out.empty_table())
        )
        done = ordered(client.compute, scored.to_delayed(), ahead=2 * jobs)
        for frame, part in zip(done, parts, strict=True):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            sink.write(sink.prepare(table))
            progress.update(table.num_rows, part[2] if isinstance(source, CsvInput) else None)
