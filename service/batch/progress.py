"""Progress of a scoring run: a bar on a terminal, a line every so often in a log.

A cron job's log has no terminal, so it gets a line (rows done, rows/s, how much of the file is
read and the time left) every `every` seconds; the share read comes from the bytes a CSV piece
reaches in the file, or the rows of a Parquet file.
"""

import sys
import time
from typing import TextIO

from tqdm import tqdm


def duration(seconds: float) -> str:
    """A duration as a person reads it: 45 s, 12 min, 2 h 5 min."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    return f"{seconds // 3600:.0f} h {seconds % 3600 / 60:.0f} min"


class Lines:
    """Progress lines on `out`, at most one every `every` seconds (0: after every chunk)."""

    def __init__(self, size: int, every: float, out: TextIO):
        self.size, self.every, self.out = size, every, out
        self.started = self.last = time.monotonic()
        self.rows = 0

    def update(self, rows: int, reached: int | None = None) -> None:
        """`rows` more rows written; `reached`: bytes of the file read so far (None: count rows)."""
        self.rows += rows
        now = time.monotonic()
        if now - self.last < self.every:
            return
        self.last = now
        elapsed = max(now - self.started, 1e-9)
        line = f"heeldrop score: {self.rows:,} rows, {self.rows / elapsed:,.0f} rows/s"
        done = (self.rows if reached is None else reached) / self.size if self.size else 0.0
        if 0 < done < 1:
            line += f", {done:.0%} read, about {duration(elapsed * (1 - done) / done)} left"
        print(line, file=self.out, flush=True)

    def __enter__(self) -> "Lines":
        return self

    def __exit__(self, *exc: object) -> None:
        pass


class Bar:
    """tqdm's bar, for a terminal."""

    def __init__(self, out: TextIO):
        self.bar = tqdm(unit=" rows", unit_scale=True, file=out)

    def update(self, rows: int, reached: int | None = None) -> None:
        self.bar.update(rows)

    def __enter__(self) -> "Bar":
        return self

    def __exit__(self, *exc: object) -> None:
        self.bar.close()


def progress(size: int, every: float) -> Bar | Lines:
    """On stderr: a bar when it is a terminal, else lines."""
    out = sys.stderr  # as it is now, not when this module was imported
    return Bar(out) if out.isatty() else Lines(size, every, out)
