"""The rec_ columns of a scored chunk: validated, decided, and worded as the API answers.

One chunk goes through the API's vectorised core (columnar validation, `Recommender.decide`,
the rules' messages and the summary's parts); each column here is what the single-request
response holds for that row, built for the whole chunk at once.
"""

from collections.abc import Mapping
from itertools import compress
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from service.batch.dialect import points
from service.batch.reader import MALFORMED
from service.core.combine import DIRECTIONS, Decisions
from service.core.explain import trained_on
from service.core.fields import BANDS, BY_PATH
from service.core.model import ServingModel
from service.core.summary import slots
from service.core.texts import Texts, distinct
from service.core.validate import check_columns

if TYPE_CHECKING:  # the recommender (and marshmallow under it) loads only to score a file
    from service.core.recommend import Recommender

OUTPUT = pa.schema(
    [
        ("rec_status", pa.string()),
        ("rec_error", pa.string()),
        ("rec_drop_min_mm", pa.int64()),
        ("rec_drop_max_mm", pa.int64()),
        ("rec_band", pa.string()),
        ("rec_direction", pa.string()),
        ("rec_confidence", pa.float64()),
        ("rec_refer", pa.bool_()),
        ("rec_rules", pa.string()),
        ("rec_summary", pa.string()),
        ("rec_model_version", pa.string()),
    ]
)


NUMERIC = ("number", "count", "severity")


def score_table(
    table: pa.Table, known: Mapping[str, str], recommender: "Recommender", decimal: str = "."
) -> pa.Table:
    """The input columns untouched, then the rec_ columns (rec_error without its row number).

    `known`: field path -> column name; `decimal`: the numbers' decimal mark in text cells.
    """
    n = table.num_rows
    malformed = table.column(MALFORMED)
    table = table.drop_columns([MALFORMED])
    fields = {path: table.column(col) for path, col in known.items()}
    if decimal == ",":
        for path, column in fields.items():
            if BY_PATH[path].kind in NUMERIC and pa.types.is_string(column.type):
                fields[path] = points(column)
    checked = check_columns(fields, n)
    ok = malformed.is_null().to_numpy(zero_copy_only=False)
    ok[list(checked.errors)] = False
    if ok.all():
        errors: pa.Array = pa.nulls(n, pa.string())
    else:
        reasons = malformed.to_numpy(zero_copy_only=False).astype(object)
        for row, problems in checked.errors.items():
            if reasons[row] is None:
                reasons[row] = "; ".join(f"{p} {m}" for p, msgs in problems.items() for m in msgs)
        errors = pa.array(reasons, type=pa.string())
    rec = {"rec_status": pc.if_else(pa.array(ok), "ok", "error"), "rec_error": errors}
    if ok.any():
        cols = checked.columns if ok.all() else {p: v[ok] for p, v in checked.columns.items()}
        d = recommender.decide(cols)
        rec |= {
            name: _spread(values, ok) for name, values in _decided(d, recommender.model).items()
        }
    else:
        rec |= {f.name: pa.nulls(n, f.type) for f in OUTPUT if f.name not in rec}
    return pa.Table.from_arrays([*table.columns, *(rec[f.name] for f in OUTPUT)],
                                schema=pa.schema([*table.schema, *OUTPUT]))  # fmt: skip


def _spread(values: pa.Array, ok: np.ndarray) -> pa.Array:
    """Values of the ok rows placed at those rows, null at the others."""
    if ok.all():
        return values
    at = np.cumsum(ok) - 1
    return pc.take(values, pa.array(at, mask=~ok))


def _decided(d: Decisions, model: ServingModel | None) -> dict[str, pa.Array]:
    """The decision columns of the decided rows."""
    version = model.version if model else None
    rule_texts, rule_codes = rule_ids(d)
    return {
        "rec_drop_min_mm": pa.array(d.range_min),
        "rec_drop_max_mm": pa.array(d.range_max),
        "rec_band": pc.take(pa.array(BANDS), pa.array(d.band)),
        "rec_direction": pc.take(pa.array(DIRECTIONS), pa.array(d.direction)),
        "rec_confidence": pa.array(round4(d.confidence)),
        "rec_refer": pa.array(d.urgency > 0),
        "rec_rules": pc.take(pa.array(rule_texts, pa.string()), pa.array(rule_codes)),
        "rec_summary": summaries(d, simulated=trained_on(model) == "simulated"),
        "rec_model_version": pa.repeat(pa.scalar(version, pa.string()), len(d.band)),
    }


def round4(x: np.ndarray) -> np.ndarray:
    """round(x, 4) as Python rounds (exact decimal halves), vectorised; ties checked one by one."""
    scaled = x * 1e4
    out = np.rint(scaled) / 1e4
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    out[near_half] = [round(v, 4) for v in x[near_half].tolist()]
    return out


def rule_ids(d: Decisions) -> tuple[list[str], np.ndarray]:
    """Each row's applied rules (fired, not overruled) by id, joined by ';', as (texts, codes)."""
    active = d.fired & ~d.overruled
    first, codes = distinct(*np.packbits(active, axis=0))
    ids = [rule.id for rule in d.book.rules]
    return [";".join(compress(ids, flags)) for flags in active[:, first].T.tolist()], codes


def summaries(d: Decisions, simulated: bool) -> pa.Array:
    """Every row's summary: the core's sentences for the chunk, joined in arrow."""
    texts = Texts()
    parts = slots(d, texts, simulated)
    words = pa.array(texts.texts, type=pa.string())
    columns = [pc.take(words, pa.array(codes, mask=codes == 0)) for codes in parts]
    return pc.binary_join_element_wise(*columns, " ", null_handling="skip")
