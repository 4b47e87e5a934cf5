"""CSV records: whole records cut from a byte stream, parsed, the malformed ones kept as errors.

RFC 4180 strictly: a quote opens or closes a whole value. A record that breaks it, or has the
wrong number of fields, becomes an error in its place rather than stopping the file; an
unclosed quote costs one line, not the rest of the file (docs/batch.md, "Nothing is lost").
"""

import csv
import functools
import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from service.core.errors import InvalidInput

BROKEN_QUOTES = "broken quoting: quotes must enclose a whole value and be closed"
MAX_RECORD_BYTES = 1 << 20  # a longer record is that row's error, however it is quoted
TOO_LONG = f"the record is longer than {MAX_RECORD_BYTES // (1 << 20)} MiB"
WINDOW = 1 << 12  # bytes scanned at first after a restart; doubles while records are clean
QUOTE, LF, CR = b'"'[0], b"\n"[0], b"\r"[0]


@functools.cache
def _delimits(sep: str) -> np.ndarray:
    """What may stand next to a quote that opens or closes a value."""
    table = np.zeros(256, dtype=bool)
    table[[QUOTE, ord(sep), LF, CR]] = True
    return table


@dataclass
class Piece:
    """Whole CSV records from byte `start` to `stop`: what the parser gets, and the broken ones.

    `broken` holds, for each record cut out (broken quoting, or too long), how many parsed
    records precede it, so its error row goes back in its place; `why` says which, in order.
    """

    data: bytes
    broken: np.ndarray
    start: int = 0
    stop: int = 0
    why: list[str] = field(default_factory=list)


def split(buf: bytes, eof: bool, width: int, sep: str) -> tuple[int, Piece]:
    """How much of `buf` (which starts a record) is whole records, and those records."""
    if b'"' not in buf:  # the common case: every line break ends a record
        end = len(buf) if eof else max(buf.rfind(b"\n"), buf.rfind(b"\r")) + 1
        if _may_hold_a_long_line(buf, end):
            a = np.frombuffer(buf, dtype=np.uint8, count=end)
            stops = np.union1d(np.flatnonzero(a == LF), np.flatnonzero(a == CR)) + 1
            if len(stops) == 0 or stops[-1] < end:
                stops = np.append(stops, end)
            starts = np.concatenate(([0], stops[:-1]))
            long = stops - starts > MAX_RECORD_BYTES
            if long.any():
                return end, _piece(buf, a, starts, stops, [long], [np.where(long, TOO_LONG, "")])
        return end, Piece(buf[:end], np.zeros(0, dtype=np.int64))
    return _split_quoted(buf, eof, width, sep)


def _may_hold_a_long_line(buf: bytes, end: int) -> bool:
    """Whether a line of `buf[:end]` may be longer than MAX_RECORD_BYTES: such a line holds a
    whole aligned window of half that length with no line break in it, and a window with one
    costs a single find, stopped at its first line break."""
    half = MAX_RECORD_BYTES // 2
    return any(
        buf.find(b"\n", k, k + half) < 0 and buf.find(b"\r", k, k + half) < 0
        for k in range(0, end - half + 1, half)
    )


def too_long(start: int, stop: int) -> Piece:
    """A record too long to read (the reader skipped it): its error row and nothing else."""
    return Piece(b"", np.zeros(1, dtype=np.int64), start, stop, [TOO_LONG])


def _split_quoted(buf: bytes, eof: bool, width: int, sep: str) -> tuple[int, Piece]:
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
    delimits = _delimits(sep)
    opens_ok = (q == 0) | delimits[a[np.maximum(q - 1, 0)]]
    closes_ok = (q + 1 == size) | delimits[a[np.minimum(q + 1, size - 1)]]
    starts: list[np.ndarray] = []
    stops: list[np.ndarray] = []
    cut: list[np.ndarray] = []
    why: list[np.ndarray] = []
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
        long = ends - begins > MAX_RECORD_BYTES
        for k in np.flatnonzero(multi & ~bad & ~long):
            bad[k] = _fields(a, qs, int(begins[k]), int(ends[k]), sep) != width
        reason = np.where(long, TOO_LONG, BROKEN_QUOTES)
        bad |= long
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
            first_line_long = line_end - begin > MAX_RECORD_BYTES
            why += [reason[:r], np.array([TOO_LONG if first_line_long else BROKEN_QUOTES])]
            pos, window = line_end, WINDOW
            continue
        starts.append(begins)
        stops.append(ends)
        cut.append(bad)
        why.append(reason)
        if last:
            return tail, _piece(buf, a, np.concatenate(starts), np.concatenate(stops), cut, why)
        pos, window = (tail, window * 2) if len(ends) else (pos, window * 4)


def _owner(ends: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """Which record (by its end) holds each position; positions past the last are dropped."""
    owner = np.searchsorted(ends, positions, side="right")
    return owner[owner < len(ends)]


def _fields(a: np.ndarray, quotes: np.ndarray, start: int, stop: int, sep: str) -> int:
    """Fields in one record: separators outside quotes, plus one."""
    seps = np.flatnonzero(a[start:stop] == ord(sep)) + start
    return int((np.searchsorted(quotes, seps) % 2 == 0).sum()) + 1


def _piece(
    buf: bytes,
    a: np.ndarray,
    starts: np.ndarray,
    stops: np.ndarray,
    cut: list[np.ndarray],
    why: list[np.ndarray],
) -> Piece:
    broken = np.concatenate(cut)
    if not broken.any():
        return Piece(buf[: int(stops[-1]) if len(stops) else 0], np.zeros(0, dtype=np.int64))
    reasons = [str(r) for r in np.concatenate(why)[broken]]
    end = a[np.maximum(stops - 1, 0)]
    crlf = (end == LF) & (stops - 2 >= starts) & (a[np.maximum(stops - 2, 0)] == CR)
    length = stops - starts - np.isin(end, (LF, CR)) - crlf
    counted = np.cumsum(~broken & (length > 0))  # the parser skips blank lines
    data = b"".join(buf[s:e] for s, e in zip(starts[~broken], stops[~broken], strict=True))
    return Piece(data, counted[broken], why=reasons)


def header(buf: bytes, eof: bool, path: Path, sep: str) -> tuple[list[str], int]:
    """The column names and the offset where records start; InvalidInput if there are none."""
    pos = 0
    for match in re.finditer(rb"\r\n|\n|\r", buf):
        if buf.count(b'"', pos, match.start()) % 2:
            continue  # a line break inside a quoted name
        if match.start() > pos:
            return _names(buf[pos : match.start()], path, sep), match.end()
        pos = match.end()
    if eof and pos < len(buf):
        return _names(buf[pos:], path, sep), len(buf)
    raise InvalidInput(f"{path} is not a CSV file: it has no header line")


def _names(line: bytes, path: Path, sep: str) -> list[str]:
    try:
        text = line.decode("utf-8")
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True))
    except UnicodeDecodeError:
        raise InvalidInput(f"{path} is not UTF-8 text; save it as CSV UTF-8") from None
    except csv.Error as exc:
        raise InvalidInput(f"{path} is not a CSV file: its header is malformed ({exc})") from None


def parse(piece: Piece, names: list[str], sep: str) -> tuple[pa.Table, pa.Array]:
    """A piece's records, in order, as text columns named `names`, and why each record could
    not be read (null when it could; an unreadable record's cells are null)."""
    nul = piece.data.find(b"\x00")
    if nul >= 0:
        raise InvalidInput(
            f"the file is not CSV text: it holds binary data (a NUL byte near offset "
            f"{piece.start + nul})"
        )
    try:
        piece.data.decode("utf-8")
    except UnicodeDecodeError as exc:
        byte = piece.data[exc.start]
        raise InvalidInput(
            f"the file is not UTF-8 text (byte {byte:#04x} near offset {piece.start + exc.start});"
            " save it as CSV UTF-8"
        ) from None
    width = len(names)
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
            parse_options=pacsv.ParseOptions(
                delimiter=sep, newlines_in_values=True, invalid_row_handler=skip
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                check_utf8=False,
            ),
        )
    else:
        table = pa.schema([(name, pa.string()) for name in names]).empty_table()
    if not invalid and not len(piece.broken):
        return table, pa.nulls(table.num_rows, pa.string())
    parsed = table.num_rows + len(invalid)
    total = parsed + len(piece.broken)
    broken_at = piece.broken + np.arange(len(piece.broken))
    placed = np.ones(total, dtype=bool)
    placed[broken_at] = False
    order = np.flatnonzero(placed)  # where each parsed record lands
    reasons = np.full(total, None, dtype=object)
    reasons[broken_at] = piece.why
    good = np.ones(parsed, dtype=bool)
    for row, fields in invalid:
        good[row] = False
        reasons[order[row]] = f"{fields} fields where the header has {width}"
    take, unread = np.zeros(total, dtype=np.int64), np.ones(total, dtype=bool)
    take[order[good]], unread[order[good]] = np.arange(table.num_rows), False
    return table.take(pa.array(take, mask=unread)), pa.array(reasons, type=pa.string())
