"""A CSV file's separator and decimal mark, as spreadsheets write them: detected, or given.

Excel writes `,` and decimal points where the decimal mark is a point, `;` and decimal commas
where it is a comma (most of Europe); tab-separated text comes from copying cells. The header
line says the separator (field names hold none); the numbers of the first records say the mark.
"""

import csv
import re
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from service.batch import headers

SEPARATORS = (",", ";", "\t")  # by preference when a header holds as many of two
DECIMALS = (".", ",")
SHOWN = {",": "','", ";": "';'", "\t": "tab"}
_COMMA_NUMBER = r"^\s*[+-]?[0-9]*,[0-9]+\s*$"
_POINT_NUMBER = r"^\s*[+-]?[0-9]*\.[0-9]+\s*$"


@dataclass(frozen=True)
class Dialect:
    """How a file's cells are separated and its numbers written, and whether it was asked."""

    sep: str = ","
    decimal: str = "."
    sep_given: bool = True
    decimal_given: bool = True

    def describe(self) -> str:
        """What was used, for stderr: "separator ';' (detected), decimal comma (detected)"."""
        sep = f"separator {SHOWN[self.sep]} ({'given' if self.sep_given else 'detected'})"
        mark = "comma" if self.decimal == "," else "point"
        return f"{sep}, decimal {mark} ({'given' if self.decimal_given else 'detected'})"


def separator(head: bytes) -> str:
    """The separator of the header line at the start of `head`: the one that splits it into the
    most names of fields (labels may hold a comma: "Knee to wall, left"), then into the most
    names; `,` for a header of one name."""
    text = head.decode("utf-8", "replace").lstrip("\r\n")
    line = re.match(r'(?:[^"\r\n]|"[^"]*")*', text)
    line_text = line[0] if line else ""

    def score(sep: str) -> tuple[int, int, int]:
        try:
            names = next(csv.reader([line_text], delimiter=sep), [])
        except csv.Error:
            names = []
        known = sum(1 for name in names if headers.field_of(name))
        return known, len(names), -SEPARATORS.index(sep)

    return max(SEPARATORS, key=score)


def decimal_mark(cells: list[pa.Array]) -> str:
    """`,` when the numbers in `cells` (text columns) are written with decimal commas, else `.`.

    A cell such as 7,5 or 0,25 counts for the comma, 7.5 for the point; the mark of the most
    cells wins, and whole numbers say nothing.
    """
    commas = points = 0
    for column in cells:
        text = pc.cast(column, pa.string()) if not pa.types.is_string(column.type) else column
        commas += pc.sum(pc.match_substring_regex(text, _COMMA_NUMBER)).as_py() or 0
        points += pc.sum(pc.match_substring_regex(text, _POINT_NUMBER)).as_py() or 0
    return "," if commas > points else "."


def points(column: pa.Array) -> pa.Array:
    """A text column of numbers written with decimal commas, with points instead."""
    return pc.replace_substring(column, ",", ".")
