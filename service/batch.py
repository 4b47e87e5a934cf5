"""Batch scoring (`heeldrop score`): a file of requests in, a scored row out for every record.

Streams in chunks through the API's vectorised core (validate, decide), so memory is bounded by
the chunk size whatever the file size. Chunks are scored on a thread pool (or Dask, see
service/dask_engine.py) and written in order. Docs: docs/batch.md.
"""

import argparse
import contextlib
import csv
import io
import os
import re
import signal
import string
import sys
import threading
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import compress
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from threadpoolctl import threadpool_limits
from tqdm import tqdm

from service.combine import DIRECTIONS, Decisions
from service.config import Config
from service.errors import InvalidInput, ModelRefused
from service.explain import _Values
from service.features import BAND_HI, BAND_LO
from service.fields import BANDS, BY_PATH
from service.files import atomic_path
from service.rules import Rule
from service.validate import NUMBER, check_columns

if TYPE_CHECKING:  # scikit-learn (under the model) loads only when a file is scored, not for --help
    from service.recommend import Recommender

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT, EXIT_INTERRUPTED = 0, 1, 2, 130
PARQUET = (".parquet", ".pq")
MALFORMED = "__malformed"  # beside the input columns (named c0, c1, ...) until written
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
BROKEN_QUOTES = "broken quoting: quotes must enclose a whole value and be closed"
HEAD_BYTES = 1 << 20  # the header must end within this much
MAX_RECORD_BYTES = 1 << 20  # a record with a quoted line break is broken beyond this
WINDOW = 1 << 12  # bytes scanned at first after a restart; doubles while records are clean
QUOTE, COMMA, LF, CR = b'"'[0], b","[0], b"\n"[0], b"\r"[0]
_DELIMITS = np.zeros(256, dtype=bool)  # what may stand next to a quote that opens or closes
_DELIMITS[[QUOTE, COMMA, LF, CR]] = True
_FORMULA = np.zeros(256, dtype=bool)  # OWASP: a cell starting with these may run as a formula
_FORMULA[[ord(c) for c in "=+-@\t\r"]] = True
T = TypeVar("T")


# --- CSV records ------------------------------------------------------------------------------


@dataclass
class Piece:
    """Whole CSV records from byte `start` to `stop`: what the parser gets, and the broken ones.

    `broken` holds, for each record cut out for broken quoting, how many parsed records precede
    it, so its error row goes back in its place.
    """

    data: bytes
    broken: np.ndarray
    start: int = 0
    stop: int = 0


def split(buf: bytes, eof: bool, width: int) -> tuple[int, Piece]:
    """How much of `buf` (which starts a record) is whole records, and those records."""
    if b'"' not in buf:  # the common case: every line break ends a record
        end = len(buf) if eof else max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
        return end, Piece(buf[:end], np.zeros(0, dtype=np.int64))
    return _split_quoted(buf, eof, width)


def _split_quoted(buf: bytes, eof: bool, width: int) -> tuple[int, Piece]:
    """Records by quote parity, RFC 4180 strictly: a quote opens or closes a whole value.

    A record breaking that rule is cut out as broken. If it spans lines (or has the wrong number
    of fields while spanning lines, or grows past MAX_RECORD_BYTES) only its first line is cut
    and the scan restarts on the next line: an unclosed quote costs one row, not the file.
    """
    a = np.frombuffer(buf, dtype=np.uint8)
    size = len(a)
    q = np.flatnonzero(a == QUOTE)
    cr = np.flatnonzero(a == CR)
    bare_cr = cr[(cr + 1 == size) | (a[np.minimum(cr + 1, size - 1)] != LF)]
    term = np.union1d(np.flatnonzero(a == LF), bare_cr)
    opens_ok = (q == 0) | _DELIMITS[a[np.maximum(q - 1, 0)]]
    closes_ok = (q + 1 == size) | _DELIMITS[a[np.minimum(q + 1, size - 1)]]
    starts: list[np.ndarray] = []
    stops: list[np.ndarray] = []
    cut: list[np.ndarray] = []
    pos, window = 0, WINDOW
    while True:
        hi = min(size, pos + window)
        k0, k1 = np.searchsorted(q, [pos, hi])
        t0, t1 = np.searchsorted(term, [pos, hi])
        qs, ts = q[k0:k1], term[t0:t1]
        inside = np.searchsorted(qs, ts) % 2 == 1
        ends = ts[~inside] + 1
        last = hi == size
        if last and eof and (ends[-1] if len(ends) else pos) < size:
            ends = np.append(ends, size)  # the file's last record has no line break
        begins = np.concatenate(([pos], ends[:-1])).astype(np.int64)[: len(ends)]
        rel = np.arange(len(qs)) % 2
        wrong = qs[np.where(rel == 0, ~opens_ok[k0:k1], ~closes_ok[k0:k1])]
        bad = np.zeros(len(ends), dtype=bool)
        bad[_owner(ends, wrong)] = True
        if last and eof and len(qs) % 2 and len(ends):
            bad[-1] = True  # a quote never closed
        inner = ts[inside]
        multi = np.zeros(len(ends), dtype=bool)
        multi[_owner(ends, inner)] = True
        for k in np.flatnonzero(multi & ~bad):
            too_long = ends[k] - begins[k] > MAX_RECORD_BYTES
            bad[k] = too_long or _fields(a, qs, int(begins[k]), int(ends[k])) != width
        tail = int(ends[-1]) if len(ends) else pos
        cut_at = None
        if (bad & multi).any():
            r = int(np.flatnonzero(bad & multi)[0])
            cut_at = (r, int(begins[r]))
        elif (
            last and not eof and size - tail > MAX_RECORD_BYTES and inner.size and inner[-1] > tail
        ):
            cut_at = (len(ends), tail)  # an unfinished record with a line break, already too long
        if cut_at is not None:  # cut the broken record's first line, and scan on from the next
            r, begin = cut_at
            line_end = int(inner[np.searchsorted(inner, begin)]) + 1
            starts += [begins[:r], np.array([begin])]
            stops += [ends[:r], np.array([line_end])]
            cut += [bad[:r], np.array([True])]
            pos, window = line_end, WINDOW
            continue
        starts.append(begins)
        stops.append(ends)
        cut.append(bad)
        if last:
            return tail, _piece(buf, a, np.concatenate(starts), np.concatenate(stops), cut)
        pos, window = (tail, window * 2) if len(ends) else (pos, window * 4)


def _owner(ends: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Which record (by its end) holds each position; positions past the last are dropped."""
    owner = np.searchsorted(ends, positions, side="right")
    return owner[owner < len(ends)]


def _fields(a: np.ndarray, quotes: np.ndarray, start: int, stop: int) -> int:
    """Fields in one record: commas outside quotes, plus one."""
    commas = np.flatnonzero(a[start:stop] == COMMA) + start
    return int((np.searchsorted(quotes, commas) % 2 == 0).sum()) + 1


def _piece(
    buf: bytes, a: np.ndarray, starts: np.ndarray, stops: np.ndarray, cut: list[np.ndarray]
) -> Piece:
    broken = np.concatenate(cut)
    if not broken.any():
        return Piece(buf[: int(stops[-1]) if len(stops) else 0], np.zeros(0, dtype=np.int64))
    end = a[np.maximum(stops - 1, 0)]
    crlf = (end == LF) & (stops - 2 >= starts) & (a[np.maximum(stops - 2, 0)] == CR)
    length = stops - starts - np.isin(end, (LF, CR)) - crlf
    counted = np.cumsum(~broken & (length > 0))  # the parser skips blank lines
    data = b"".join(buf[s:e] for s, e in zip(starts[~broken], stops[~broken], strict=True))
    return Piece(data, counted[broken])


def _header(buf: bytes, eof: bool, path: Path) -> tuple[list[str], int]:
    """The column names and the offset where records start; InvalidInput if there are none."""
    pos = 0
    for match in re.finditer(rb"\r\n|\n|\r", buf):
        if buf.count(b'"', pos, match.start()) % 2:
            continue  # a line break inside a quoted name
        if match.start() > pos:
            return _names(buf[pos : match.start()], path), match.end()
        pos = match.end()
    if eof and pos < len(buf):
        return _names(buf[pos:], path), len(buf)
    raise InvalidInput(f"{path} is not a CSV file: it has no header line")


def _names(line: bytes, path: Path) -> list[str]:
    try:
        text = line.decode("utf-8")
        return next(csv.reader(io.StringIO(text, newline=""), strict=True))
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text; save it as CSV UTF-8") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path} is not a CSV file: its header is malformed ({exc})") from None


# --- inputs -----------------------------------------------------------------------------------


def internal(n: int) -> list[str]:
    """Positional column names, so odd or repeated header names cannot collide while scoring."""
    return [f"c{i}" for i in range(n)]


class CsvInput:
    """A CSV file: its header, then its records in pieces that start and end on a record."""

    def __init__(self, path: Path, chunk_rows: int):
        self.path = path
        try:
            with open(path, "rb") as fh:
                head = fh.read(HEAD_BYTES)
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
        if b"\x00" in head:
            raise InvalidInput(f"{path} is not a CSV file: it holds binary data")
        bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
        self.names, header_end = _header(head[bom:], len(head) < HEAD_BYTES, path)
        self.start = bom + header_end
        per_record = len(head) / max(head.count(b"\n"), 1)
        self.block = int(min(max(chunk_rows * per_record, 1 << 16), 1 << 28))
        self.schema = pa.schema([(name, pa.string()) for name in internal(len(self.names))])

    def pieces(self) -> Iterator[Piece]:
        """Read block by block; a record cut by a block's end waits for the next block."""
        width = len(self.names)
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            offset, carry = self.start, b""
            while True:
                block = fh.read(self.block)
                eof = len(block) < self.block
                buf = carry + block
                end, piece = split(buf, eof, width)
                piece.start, piece.stop = offset, offset + end
                yield piece
                offset, carry = offset + end, buf[end:]
                if eof:
                    return

    def parts(self) -> list[tuple[str, int, int]]:
        """(path, start, stop) of each piece, for workers that read the file themselves."""
        return [(str(self.path), p.start, p.stop) for p in self.pieces()]

    def table(self, piece: Piece) -> pa.Table:
        """Parse a piece: every record in order; malformed ones empty, with their reason."""
        return parse(piece, len(self.names))

    def read(self, part: tuple[str, int, int]) -> pa.Table:
        """The table of one of `parts()`, read and split again where it lives."""
        path, start, stop = part
        with open(path, "rb") as fh:
            fh.seek(start)
            buf = fh.read(stop - start)
        piece = split(buf, True, len(self.names))[1]
        piece.start, piece.stop = start, stop
        return self.table(piece)


def parse(piece: Piece, width: int) -> pa.Table:
    """The records of a piece as text columns plus MALFORMED (why a record could not be read)."""
    try:
        piece.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = piece.data[exc.start]
        raise InvalidInput(
            f"the file is not UTF-8 text (byte {byte:#04x} near offset {piece.start + exc.start});"
            " save it as CSV UTF-8"
        ) from None
    names = internal(width)
    invalid: list[tuple[int, int]] = []

    def skip(row: Any) -> str:
        invalid.append((row.number - 1, row.actual_columns))
        return "skip"

    if re.search(rb"[^\r\n]", piece.data):  # not only blank lines
        table = pacsv.read_csv(
            pa.BufferReader(piece.data),
            read_options=pacsv.ReadOptions(
                column_names=names, use_threads=False, block_size=max(len(piece.data), 1 << 16)
            ),
            parse_options=pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=skip),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                check_utf8=False,
            ),
        )
    else:
        table = pa.schema([(name, pa.string()) for name in names]).empty_table()
    parsed = table.num_rows + len(invalid)
    total = parsed + len(piece.broken)
    broken_at = piece.broken + np.arange(len(piece.broken))
    placed = np.ones(total, dtype=bool)
    placed[broken_at] = False
    order = np.flatnonzero(placed)  # where each parsed record lands
    reasons = np.full(total, None, dtype=object)
    reasons[broken_at] = BROKEN_QUOTES
    good = np.ones(parsed, dtype=bool)
    for row, fields in invalid:
        good[row] = False
        reasons[order[row]] = f"{fields} fields where the header has {width}"
    if parsed < total or invalid:
        take, unread = np.zeros(total, dtype=np.int64), np.ones(total, dtype=bool)
        take[order[good]], unread[order[good]] = np.arange(table.num_rows), False
        table = table.take(pa.array(take, mask=unread))
    return table.append_column(MALFORMED, pa.array(reasons, type=pa.string()))


class ParquetInput:
    """A Parquet file: typed columns, read in record batches."""

    def __init__(self, path: Path, chunk_rows: int):
        self.path, self.chunk_rows = path, chunk_rows
        try:
            schema = pq.read_schema(path)
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc}") from None
        except pa.ArrowInvalid as exc:
            raise InvalidInput(f"{path} is not a Parquet file ({exc})") from None
        self.names = schema.names
        self.schema = pa.schema(
            [(n, f.type) for n, f in zip(internal(len(schema)), schema, strict=True)]
        )

    def pieces(self) -> Iterator[pa.RecordBatch]:
        yield from pq.ParquetFile(self.path).iter_batches(batch_size=self.chunk_rows)

    def parts(self) -> list[tuple[str, int, int]]:
        """(path, row group, 0) of each row group."""
        groups = pq.ParquetFile(self.path).num_row_groups
        return [(str(self.path), g, 0) for g in range(groups)]

    def table(self, batch: pa.RecordBatch | pa.Table) -> pa.Table:
        table = pa.Table.from_batches([batch]) if isinstance(batch, pa.RecordBatch) else batch
        table = table.rename_columns(self.schema.names)
        return table.append_column(MALFORMED, pa.nulls(table.num_rows, pa.string()))

    def read(self, part: tuple[str, int, int]) -> pa.Table:
        """The table of one of `parts()`."""
        path, group, _ = part
        return self.table(pq.ParquetFile(path).read_row_group(group))


Input = CsvInput | ParquetInput


def open_input(path: Path, chunk_rows: int) -> Input:
    """The input by its extension; InvalidInput when it is missing or unusable."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    source = (ParquetInput if path.suffix.lower() in PARQUET else CsvInput)(path, chunk_rows)
    stripped = [name.strip() for name in source.names]
    twice = sorted({name for name in stripped if stripped.count(name) > 1})
    if twice:
        raise InvalidInput(f"{path}: the header names {', '.join(twice)} more than once")
    if "footwear.current_drop_mm" not in stripped:
        raise InvalidInput(f"{path}: no footwear.current_drop_mm column (is it a CSV of requests?)")
    return source


def known_columns(names: list[str]) -> dict[str, str]:
    """Field path -> internal column name, for the header names that are request fields."""
    return {
        name.strip(): col
        for name, col in zip(names, internal(len(names)), strict=True)
        if name.strip() in BY_PATH
    }


# --- scoring ----------------------------------------------------------------------------------


def score_table(table: pa.Table, known: Mapping[str, str], recommender: "Recommender") -> pa.Table:
    """The input columns untouched, then the rec_ columns (rec_error without its row number)."""
    n = table.num_rows
    malformed = table.column(MALFORMED)
    table = table.drop_columns([MALFORMED])
    checked = check_columns({path: table.column(col) for path, col in known.items()}, n)
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
        d, _ = recommender.decide(cols)
        version = recommender.model.version if recommender.model else None
        rec |= {name: _spread(values, ok) for name, values in _decided(d, version).items()}
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


def _decided(d: Decisions, version: str | None) -> dict[str, pa.Array]:
    """The decision columns of the decided rows."""
    rules, fired, overruled = by_id(d)
    rule_texts, rule_codes = rule_ids(rules, fired & ~overruled)
    return {
        "rec_drop_min_mm": pa.array(d.range_min),
        "rec_drop_max_mm": pa.array(d.range_max),
        "rec_band": pc.take(pa.array(BANDS), pa.array(d.band)),
        "rec_direction": pc.take(pa.array(DIRECTIONS), pa.array(d.direction)),
        "rec_confidence": pa.array(round4(d.confidence)),
        "rec_refer": pa.array(d.urgency > 0),
        "rec_rules": pc.take(pa.array(rule_texts, pa.string()), pa.array(rule_codes)),
        "rec_summary": summaries(d, rules, fired, overruled),
        "rec_model_version": pa.repeat(pa.scalar(version, pa.string()), len(d.band)),
    }


def round4(x: np.ndarray) -> np.ndarray:
    """round(x, 4) as Python rounds (exact decimal halves), vectorised; ties checked one by one."""
    scaled = x * 1e4
    out = np.rint(scaled) / 1e4
    near_half = np.abs(scaled - np.floor(scaled) - 0.5) < 1e-6
    out[near_half] = [round(v, 4) for v in x[near_half].tolist()]
    return out


def distinct(*keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One row index per distinct combination of keys, and each row's combination number.

    Floats compare by their bits, so rows grouped together format identically.
    """
    n = len(keys[0])
    combined, space = np.zeros(n, dtype=np.int64), 1
    for key in keys:  # fold the keys into one integer, re-numbering before it could overflow
        code, size = _codes(key)
        if space * size >= 1 << 62:
            values, inverse = np.unique(combined, return_inverse=True)
            combined, space = inverse.reshape(-1), len(values)
        combined, space = combined * size + code, space * size
    if space > 4 * n + 1024:
        _, first, inverse = np.unique(combined, return_index=True, return_inverse=True)
        return first, inverse.reshape(-1)
    seen = np.zeros(space, dtype=bool)  # a small key space: number the keys without sorting
    seen[combined] = True
    number = np.cumsum(seen) - 1
    inverse = number[combined]
    first = np.zeros(np.count_nonzero(seen), dtype=np.int64)
    first[inverse] = np.arange(n)  # any row of a group stands for it
    return first, inverse


def _codes(key: np.ndarray) -> tuple[np.ndarray, int]:
    """Each value's number among `key`'s values, and how many numbers there may be."""
    if key.dtype.kind in "biu" and len(key):
        lo, hi = int(key.min()), int(key.max())
        if hi - lo < 1 << 16:
            return key.astype(np.int64) - lo, hi - lo + 1
    if key.dtype.kind == "f":
        key = np.ascontiguousarray(key, dtype=np.float64).view(np.int64)
    values, inverse = np.unique(key, return_inverse=True)
    return inverse.reshape(-1), len(values)


def by_id(d: Decisions) -> tuple[list[Rule], np.ndarray, np.ndarray]:
    """The rules in id order (as responses list them), and their fired and overruled flags,
    rule by rule (rules x rows)."""
    rules = sorted(d.book.rules, key=lambda r: r.id)
    cols = [d.book.index[r.id] for r in rules]
    return rules, d.fired.T[cols], d.overruled.T[cols]


def rule_ids(rules: list[Rule], active: np.ndarray) -> tuple[list[str], np.ndarray]:
    """Each row's applied rules (`active`, rules x rows) joined by ';', as (texts, codes)."""
    first, codes = distinct(*np.packbits(active, axis=0))
    ids = [r.id for r in rules]
    return [";".join(compress(ids, flags)) for flags in active[:, first].T.tolist()], codes


class _Parts:
    """Sentence parts by code; code 0 is no part."""

    def __init__(self) -> None:
        self.texts = [""]

    def add(self, texts: list[str], which: np.ndarray) -> np.ndarray:
        """Codes for rows whose distinct part number is `which`."""
        base = len(self.texts)
        self.texts += texts
        return which + base


def _shaped(d: Decisions, rules: list[Rule]) -> np.ndarray:
    """explain's `_shaped` for every rule and row: set the band, widened the range, or a
    binding bound that excluded the model's top band or trimmed the chosen one."""
    lo, hi = d.allowed_min, d.allowed_max
    top = np.where(d.model_band >= 0, d.model_band, d.band)
    excluded = (BAND_LO[top] > hi) | (BAND_HI[top] < lo)
    trimmed = (BAND_LO[d.band] < lo) | (BAND_HI[d.band] > hi)
    moved = excluded | trimmed
    shaped = np.zeros((len(rules), len(d.band)), dtype=bool)
    for j, rule in enumerate(rules):
        if rule.band or rule.stage == "range":
            shaped[j] = True
            continue
        if rule.id in d.floors:
            shaped[j] |= d.floors[rule.id] == lo
        if rule.id in d.ceilings:
            shaped[j] |= d.ceilings[rule.id] == hi
        shaped[j] &= moved
    return shaped


def _inputs(d: Decisions, rule: Rule, rows: np.ndarray) -> list[np.ndarray]:
    """Every value a rule's message reads, for the given rows."""
    names = _template_names(rule.message)
    values: list[np.ndarray] = []
    if "reasons" in names:
        for reason, mask in zip(rule.reasons, d.reasons[rule.id], strict=True):
            names |= _template_names(reason.text)
            values.append(np.asarray(mask)[rows])
    for name in sorted(names - {"reasons"}):
        source = {"floor_value": d.floors, "ceiling_value": d.ceilings}.get(name)
        values.append((source[rule.id] if source is not None else d.ctx[name])[rows])
    return values


def _template_names(template: str) -> set[str]:
    return {
        re.split(r"[.\[]", name)[0] for _, name, _, _ in string.Formatter().parse(template) if name
    }


def _messages(d: Decisions, rule: Rule, rows: np.ndarray, parts: _Parts) -> np.ndarray:
    """Codes of the rule's message for `rows`, formatted once per distinct set of inputs."""
    values = _inputs(d, rule, rows)
    if values:
        first, which = distinct(*values)
    else:
        first, which = np.zeros(1, dtype=np.int64), np.zeros(len(rows), dtype=np.int64)
    texts = [rule.message.format_map(_Values(d, int(rows[f]), rule)) for f in first]
    return parts.add(texts, which)


def summaries(
    d: Decisions, rules: list[Rule], fired: np.ndarray, overruled: np.ndarray
) -> pa.Array:
    """Every row's `explanation.summary`, worded exactly as explain's `_summary`.

    `rules` in id order, with their flags rule by rule (`by_id`). A row's parts go into slots:
    after a hard referral, its referral messages then the advice to keep the current drop;
    otherwise the lead (slot 0), up to three messages of rules that shaped the answer (1-3),
    the rules set aside (4), the classifier's view (5) and a referral's message (6). Parts are
    formatted once per distinct input and joined in arrow, so the Python work grows with the
    variety of answers, not the row count.
    """
    n = len(d.band)
    active = fired & ~overruled
    hard = [bool(r.referral) and not r.provisional for r in rules]
    stop = active[hard].any(axis=0)
    go = ~stop
    shaped = _shaped(d, rules) & active & go
    tell_referral = go & (d.urgency > 0)
    parts = _Parts()
    slots = np.zeros((max(7, sum(bool(r.referral) for r in rules) + 1), n), dtype=np.int64)
    said = np.zeros(n, dtype=np.int64)  # messages in slots so far: why's, or a stop's reasons
    aside = np.zeros(n, dtype=np.int64)  # the rules set aside so far, by code into `asides`
    asides = [""]
    nothing = np.zeros(n, dtype=bool)
    for j, rule in enumerate(rules):
        why = shaped[j] & (said < 3)
        reasons = urgent = nothing
        if rule.referral:
            reasons = active[j] & stop
            urgent, tell_referral = active[j] & tell_referral, tell_referral & ~active[j]
        set_aside = fired[j] & overruled[j] & go
        rows = np.flatnonzero(why | reasons | urgent | set_aside)
        if not rows.size:
            continue
        message = np.zeros(n, dtype=np.int64)
        message[rows] = _messages(d, rule, rows, parts)
        at = np.flatnonzero(why)
        slots[said[at] + 1, at] = message[at]
        at = np.flatnonzero(reasons)
        slots[said[at], at] = message[at]
        said += why | reasons
        at = np.flatnonzero(urgent)
        slots[6, at] = message[at]
        at = np.flatnonzero(set_aside)
        if at.size:  # extend each row's list of names by this rule's (its message's head)
            first, which = distinct(aside[at], message[at])
            for f in first:
                name = parts.texts[message[at[f]]].split(":")[0]
                asides.append(f"{asides[aside[at[f]]]}; {name}" if aside[at[f]] else name)
            aside[at] = len(asides) - len(first) + which
    stops = np.flatnonzero(stop)
    if stops.size:  # a hard referral: the referral messages, then keep the current drop
        current = d.ctx["current"][stops]
        first, which = distinct(current)
        tails = [f"Until then, keep your current {float(current[f]):g} mm." for f in first]
        slots[said[stops], stops] = parts.add(tails, which)
    rest = np.flatnonzero(go)
    if rest.size:
        slots[0, rest] = _leads(d, rest, parts)
        slots[5, rest] = _classifier(d, rest, parts)
        at = np.flatnonzero(aside)
        texts = [f"Set aside for a higher-priority rule: {names}." for names in asides[1:]]
        slots[4, at] = parts.add(texts, aside[at] - 1)
    texts = pa.array(parts.texts, type=pa.string())
    columns = [pc.take(texts, pa.array(codes, mask=codes == 0)) for codes in slots]
    return pc.binary_join_element_wise(*columns, " ", null_handling="skip")


def _leads(d: Decisions, rows: np.ndarray, parts: _Parts) -> np.ndarray:
    current, band = d.ctx["current"][rows], d.band[rows]
    lo, hi, direction = d.range_min[rows], d.range_max[rows], d.direction[rows]
    first, which = distinct(current, band, lo, hi, direction)
    texts = []
    for f in first:
        now, name = float(current[f]), BANDS[band[f]]
        span = f"{lo[f]} mm" if lo[f] == hi[f] else f"{lo[f]}-{hi[f]} mm"
        texts.append(
            {
                "keep": f"Keep an effective heel drop of {span} ({name}): your {now:g} mm fits.",
                "lower_gradually": f"Lower gradually from {now:g} mm to {span} ({name}), in steps.",
                "raise": f"Raise your effective heel drop from {now:g} mm to {span} ({name}).",
                "step_back_up": f"Step back up from {now:g} mm to {span} ({name}).",
            }[DIRECTIONS[direction[f]]]
        )
    return parts.add(texts, which)


def _classifier(d: Decisions, rows: np.ndarray, parts: _Parts) -> np.ndarray:
    if d.probs is None:
        return parts.add(
            ["No model is loaded, so this answer comes from the rules alone."],
            np.zeros(len(rows), dtype=np.int64),
        )
    top, band = d.model_band[rows], d.band[rows]
    p = d.probs[rows, top]
    # f"{p:.0%}" formats p * 100 rounded half to even, which is what rint does to the same double
    first, which = distinct(top, band, np.rint(p * 100))
    texts = []
    for f in first:
        top_name, pct = BANDS[top[f]], f"{float(p[f]):.0%}"
        if top[f] == band[f]:
            texts.append(f"The classifier agrees: {top_name} is its most likely band ({pct}).")
        else:
            texts.append(
                f"The classifier's own top band was {top_name} ({pct}); "
                f"the rules above moved the answer to {BANDS[band[f]]}."
            )
    return parts.add(texts, which)


# --- output -----------------------------------------------------------------------------------


def defuse(values: pa.Array) -> pa.Array:
    """Prefix ' to text a spreadsheet would run as a formula (OWASP); numbers stay as they are."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values
    n = len(values)
    buffers = values.buffers()
    if not n or buffers[2] is None or not buffers[2].size:
        return values
    wide = pa.types.is_large_string(values.type)
    offsets = np.frombuffer(buffers[1], dtype=np.int64 if wide else np.int32)
    starts = offsets[values.offset : values.offset + n]
    ends = offsets[values.offset + 1 : values.offset + n + 1]
    data = np.frombuffer(buffers[2], dtype=np.uint8)
    head = data[np.minimum(starts, len(data) - 1)]  # the first byte, if the cell has one
    risky = np.flatnonzero(_FORMULA[head] & np.greater(ends, starts))
    if not risky.size:
        return values
    number = pc.fill_null(pc.match_substring_regex(values.take(pa.array(risky)), NUMBER), True)
    formula = np.zeros(n, dtype=bool)
    formula[risky] = ~number.to_numpy(zero_copy_only=False)
    quote, nothing = pa.scalar("'", values.type), pa.scalar("", values.type)
    escaped = pc.binary_join_element_wise(quote, values, nothing)
    return pc.if_else(pa.array(formula), escaped, values)


def _defuse_name(name: str) -> str:
    return str(defuse(pa.array([name]))[0].as_py())


class Sink:
    """The output file, CSV or Parquet by its extension.

    `prepare` (any thread) defuses formulas in CSV text; `write` (in order) numbers error rows.
    """

    def __init__(self, path: Path, target: Path, names: list[str], schema: pa.Schema):
        self.parquet = target.suffix.lower() in PARQUET
        if not self.parquet:  # CSV opens in spreadsheets: defuse formulas, header included
            names = [_defuse_name(name) for name in names]
        fields = [pa.field(name, f.type) for name, f in zip(names, schema, strict=True)]
        self.schema = pa.schema([*fields, *OUTPUT])
        self.writer: Any = (
            pq.ParquetWriter(path, self.schema)
            if self.parquet
            else pacsv.CSVWriter(path, self.schema)
        )
        self.rows = self.ok = 0

    def prepare(self, table: pa.Table) -> pa.Table:
        columns = [c.combine_chunks() for c in table.columns]
        if not self.parquet:
            columns = [defuse(c) for c in columns]
        return pa.Table.from_arrays(columns, schema=self.schema)

    def write(self, table: pa.Table) -> None:
        errors = table.column("rec_error").combine_chunks()
        bad = np.flatnonzero(errors.is_valid().to_numpy(zero_copy_only=False))
        if bad.size:
            numbered = np.full(table.num_rows, None, dtype=object)
            for i in bad:  # row 1 is the header, as in a spreadsheet
                numbered[i] = f"row {self.rows + i + 2}: {errors[int(i)].as_py()}"
            table = table.set_column(
                table.schema.get_field_index("rec_error"),
                "rec_error",
                pa.array(numbered, type=pa.string()),
            )
        self.writer.write_table(table)
        self.rows += table.num_rows
        self.ok += table.num_rows - bad.size

    def close(self) -> None:
        self.writer.close()


# --- the command ------------------------------------------------------------------------------


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


def _recommender(config: Config) -> "Recommender":
    from service.recommend import Recommender
    from service.registry import Registry

    try:
        model = Registry(config.models_dir).load_champion()
    except ModelRefused as exc:
        _warn(f"{exc}; scoring with the rules only")
        return Recommender(model=None)
    if model is None:
        _warn(f"no champion model in {config.models_dir}; scoring with the rules only")
    return Recommender(model=model)


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
    try:
        source = open_input(Path(args.input), args.chunk_rows)
    except InvalidInput as exc:
        print(f"heeldrop score: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    unknown = [name for name in source.names if name.strip() not in BY_PATH]
    if unknown:
        _warn(f"unknown columns passed through untouched: {', '.join(unknown)}")
    recommender = _recommender(config)
    target = Path(args.output)
    bar = tqdm(unit=" rows", unit_scale=True, disable=not sys.stderr.isatty(), file=sys.stderr)
    try:
        with _terminate_unwinds(), bar, atomic_path(target) as tmp:
            sink = Sink(tmp, target, source.names, source.schema)
            if args.engine == "dask":
                from service import dask_engine

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
        "Exit 0 when every record got an output row, 2 for unusable input.",
    )
    score.add_argument("input", metavar="IN", help="requests, one per record (.csv or .parquet)")
    score.add_argument("-o", "--output", metavar="OUT", required=True, help="scored file")
    score.add_argument("--engine", choices=("pandas", "dask"), default="pandas")
    score.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler (default: local)")
    score.add_argument("--chunk-rows", type=_positive, default=20_000, help="rows per chunk")
    score.add_argument(
        "--jobs", type=_positive, default=min(4, os.cpu_count() or 1), help="parallel workers"
    )
    score.set_defaults(func=cmd_score)
