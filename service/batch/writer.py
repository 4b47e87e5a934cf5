"""The scored file: CSV or Parquet by its extension, written chunk by chunk in order.

CSV opens in spreadsheets, so a cell a spreadsheet would run as a formula is defused there
(OWASP, CSV injection) and numbers and phone numbers are left as they are (docs/batch.md, "Safe
to open in a spreadsheet"); it keeps the input's separator and decimal mark, and `excel` adds
what Excel needs to read UTF-8 and line ends as written. Parquet keeps every value as read. Error
rows get their row number here, where the rows written so far are counted.
"""

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from service.batch.columns import OUTPUT
from service.batch.reader import PARQUET

BOM = b"\xef\xbb\xbf"
_FORMULA = np.zeros(256, dtype=bool)  # OWASP: a cell starting with these may run as a formula
_FORMULA[[ord(c) for c in "=+-@\t\r"]] = True
# Data, not formulas, though they start with + or -: a number (decimal point or comma) and a
# phone number in international form. Without a letter they can name no function, cell, sheet
# or program: the most a spreadsheet can do is read them as a number.
DATA = (
    r"^[+-]?([0-9]+[.,]?[0-9]*|[.,][0-9]+)([eE][+-]?[0-9]+)?$"
    r"|^\+[0-9]+([ ./-]?(\([0-9]+\)|[0-9]+))*$"
)


def defuse(values: pa.Array) -> pa.Array:
    """Prefix ' to text a spreadsheet would run as a formula (OWASP); data stays as it is."""
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
    plain = pc.fill_null(pc.match_substring_regex(values.take(pa.array(risky)), DATA), True)
    formula = np.zeros(n, dtype=bool)
    formula[risky] = ~plain.to_numpy(zero_copy_only=False)
    quote, nothing = pa.scalar("'", values.type), pa.scalar("", values.type)
    escaped = pc.binary_join_element_wise(quote, values, nothing)
    return pc.if_else(pa.array(formula), escaped, values)


def _defuse_name(name: str) -> str:
    return str(defuse(pa.array([name]))[0].as_py())


class Sink:
    """The output file, CSV or Parquet by its extension.

    A CSV is written with `sep` and `decimal` (the input's) and, for `excel`, a UTF-8 byte-order
    mark and CRLF line ends. `prepare` (any thread) defuses formulas in CSV text; `write` (in
    order) numbers error rows.
    """

    def __init__(
        self, path: Path, target: Path, names: list[str], schema: pa.Schema,
        sep: str = ",", decimal: str = ".", excel: bool = False,
    ):  # fmt: skip
        self.parquet = target.suffix.lower() in PARQUET
        self.comma = decimal == "," and not self.parquet
        self.file: Any = None
        output = OUTPUT
        if self.comma:  # the one decimal output column, as text with the input's mark
            at = OUTPUT.get_field_index("rec_confidence")
            output = OUTPUT.set(at, pa.field("rec_confidence", pa.string()))
        if not self.parquet:  # CSV opens in spreadsheets: defuse formulas, header included
            names = [_defuse_name(name) for name in names]
        fields = [pa.field(name, f.type) for name, f in zip(names, schema, strict=True)]
        self.schema = pa.schema([*fields, *output])
        if self.parquet:
            self.writer: Any = pq.ParquetWriter(path, self.schema)
        else:
            self.file = pa.OSFile(str(path), "wb")
            if excel:
                self.file.write(BOM)
            options = pacsv.WriteOptions(delimiter=sep, eol="\r\n" if excel else "\n")
            self.writer = pacsv.CSVWriter(self.file, self.schema, write_options=options)
        self.rows = self.ok = 0

    def prepare(self, table: pa.Table) -> pa.Table:
        columns = [c.chunk(0) if c.num_chunks == 1 else c.combine_chunks() for c in table.columns]
        if self.comma:
            at = table.schema.get_field_index("rec_confidence")
            columns[at] = pc.replace_substring(pc.cast(columns[at], pa.string()), ".", ",")
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
        if self.file is not None:
            self.file.close()
