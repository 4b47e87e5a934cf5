"""Batch input files, read in pieces: CSV (as text, malformed records kept) and Parquet (typed).

Columns are named by position (c0, c1, ...), so odd or repeated header names cannot collide
while scoring; MALFORMED beside them says why a record could not be read (null when it could).
A piece is what one worker scores; `parts` and `read` let Dask workers read pieces themselves.
`size` (bytes of a CSV file, rows of a Parquet one) and `reached` (a piece's end, in bytes, or
None to count rows) say how far through the file a piece goes, for progress.
"""

import os
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from service.batch.dialect import separator
from service.batch.records import MAX_RECORD_BYTES, Piece, header, parse, split, too_long
from service.core.errors import InvalidInput

PARQUET = (".parquet", ".pq")
MALFORMED = "__malformed"  # beside the input columns until written
HEAD_BYTES = 1 << 20  # the header must end within this much
MAX_BLOCK_BYTES = 1 << 25  # what one read takes from the file: memory stays flat in line length


def internal(n: int) -> list[str]:
    """Positional column names, so odd or repeated header names cannot collide while scoring."""
    return [f"c{i}" for i in range(n)]


class CsvInput:
    """A CSV file: its header, then its records in pieces that start and end on a record."""

    def __init__(self, path: Path, chunk_rows: int, sep: str | None = None):
        self.path = path
        try:
            with open(path, "rb") as fh:
                head = fh.read(HEAD_BYTES)
                self.size = os.fstat(fh.fileno()).st_size
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc.strerror}") from None
        if b"\x00" in head:
            raise InvalidInput(f"{path} is not a CSV file: it holds binary data")
        bom = 3 if head.startswith(b"\xef\xbb\xbf") else 0
        self.sep_given = sep is not None
        self.sep = sep or separator(head[bom:])
        self.names, header_end = header(head[bom:], len(head) < HEAD_BYTES, path, self.sep)
        self.start = bom + header_end
        per_record = min(len(head) / max(head.count(b"\n"), 1), 1 << 12)
        self.block = int(min(max(chunk_rows * per_record, 1 << 16), MAX_BLOCK_BYTES))
        self.schema = pa.schema([(name, pa.string()) for name in internal(len(self.names))])

    def pieces(self) -> Iterator[Piece]:
        """Read block by block; a record cut by a block's end waits for the next block. One that
        grows past MAX_RECORD_BYTES is skipped to its line's end and becomes that row's error,
        so memory stays bounded whatever a line holds."""
        width = len(self.names)
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            offset, carry = self.start, b""
            while True:
                block = fh.read(self.block)
                eof = len(block) < self.block
                buf = carry + block
                end, piece = split(buf, eof, width, self.sep)
                piece.start, piece.stop = offset, offset + end
                yield piece
                offset, carry = offset + end, buf[end:]
                if not eof and len(carry) > MAX_RECORD_BYTES:
                    begin, carry, eof = offset, *_past_line(fh, carry, self.block)
                    offset = fh.tell() - len(carry)
                    yield too_long(begin, offset)
                if eof:
                    return

    def parts(self) -> list[tuple[str, int, int]]:
        """(path, start, stop) of each piece, for workers that read the file themselves."""
        return [(str(self.path), p.start, p.stop) for p in self.pieces()]

    def table(self, piece: Piece) -> pa.Table:
        """Parse a piece: every record in order; malformed ones empty, with their reason."""
        table, reasons = parse(piece, self.schema.names, self.sep)
        return table.append_column(MALFORMED, reasons)

    def first(self) -> pa.Table:
        """The records at the start of the file (up to HEAD_BYTES), to see how it is written."""
        with open(self.path, "rb") as fh:
            fh.seek(self.start)
            head = fh.read(HEAD_BYTES)
        eof = self.start + len(head) >= self.size
        return self.table(split(head, eof, len(self.names), self.sep)[1])

    def reached(self, piece: Piece) -> int:
        """How far into the file (bytes) a piece ends."""
        return piece.stop

    def read(self, part: tuple[str, int, int]) -> pa.Table:
        """The table of one of `parts()`, read and split again where it lives."""
        path, start, stop = part
        with open(path, "rb") as fh:
            fh.seek(start)
            buf = fh.read(min(stop - start, MAX_RECORD_BYTES + 1))
            if len(buf) > MAX_RECORD_BYTES and not (b"\n" in buf or b"\r" in buf):
                return self.table(too_long(start, stop))  # what pieces() skipped
            buf += fh.read(stop - start - len(buf))
        piece = split(buf, True, len(self.names), self.sep)[1]
        piece.start, piece.stop = start, stop
        return self.table(piece)


def _past_line(fh: BinaryIO, carry: bytes, block: int) -> tuple[bytes, bool]:
    """Read on past the end of the line `carry` begins, keeping nothing of it: what follows
    the line break, and whether the file ended."""
    while True:
        cut = min((k for k in (carry.find(b"\n"), carry.find(b"\r")) if k >= 0), default=-1)
        if cut >= 0:
            if carry[cut : cut + 2] == b"\r\n":
                cut += 1
            return carry[cut + 1 :], False
        carry = fh.read(block)
        if not carry:
            return b"", True


class ParquetInput:
    """A Parquet file: typed columns, read in record batches."""

    def __init__(self, path: Path, chunk_rows: int):
        self.path, self.chunk_rows = path, chunk_rows
        try:
            metadata = pq.read_metadata(path)
        except OSError as exc:
            raise InvalidInput(f"cannot read {path}: {exc}") from None
        except pa.ArrowInvalid as exc:
            raise InvalidInput(f"{path} is not a Parquet file ({exc})") from None
        schema = metadata.schema.to_arrow_schema()
        self.names = schema.names
        self.size = metadata.num_rows  # progress counts rows here
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

    def reached(self, batch: pa.RecordBatch) -> None:
        """None: progress counts a Parquet file's rows (`size`)."""
        return None

    def read(self, part: tuple[str, int, int]) -> pa.Table:
        """The table of one of `parts()`."""
        path, group, _ = part
        return self.table(pq.ParquetFile(path).read_row_group(group))


Input = CsvInput | ParquetInput


def open_input(path: Path, chunk_rows: int, sep: str | None = None) -> Input:
    """The input by its extension (`sep`: a CSV's separator, else detected); InvalidInput
    when it is missing or unusable."""
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file")
    if path.suffix.lower() in PARQUET:
        if sep is not None:
            raise InvalidInput("--sep is for CSV input; a Parquet file has no separator")
        return ParquetInput(path, chunk_rows)
    return CsvInput(path, chunk_rows, sep)
