"""Batch input files, read in pieces: CSV (as text, malformed records kept) and Parquet (typed).

Columns are named by position (c0, c1, ...), so odd or repeated header names cannot collide
while scoring; MALFORMED beside them says why a record could not be read (null when it could).
A piece is what one worker scores; `parts` and `read` let Dask workers read pieces themselves.
"""

from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from service.batch.records import Piece, header, parse, split
from service.core.errors import InvalidInput
from service.core.fields import BY_PATH

PARQUET = (".parquet", ".pq")
MALFORMED = "__malformed"  # beside the input columns until written
HEAD_BYTES = 1 << 20  # the header must end within this much


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
        self.names, header_end = header(head[bom:], len(head) < HEAD_BYTES, path)
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
        table, reasons = parse(piece, self.schema.names)
        return table.append_column(MALFORMED, reasons)

    def read(self, part: tuple[str, int, int]) -> pa.Table:
        """The table of one of `parts()`, read and split again where it lives."""
        path, start, stop = part
        with open(path, "rb") as fh:
            fh.seek(start)
            buf = fh.read(stop - start)
        piece = split(buf, True, len(self.names))[1]
        piece.start, piece.stop = start, stop
        return self.table(piece)


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
