"""Rate-limit counters for Flask-Limiter: `memory://` without a new thread every few requests.

limits' memory storage sweeps expired counters on a 10 ms timer and starts a new timer thread
whenever the last one has finished; profiling put that at 0.2 ms a request. Expiry is checked on
every read anyway, so the sweep is housekeeping: here it runs once a second. Redis URLs are
used as they are.
"""

import threading

from limits.storage import MemoryStorage

SWEEP_SECONDS = 1.0
SCHEME = "heeldrop-memory"


class SteadyMemoryStorage(MemoryStorage):
    """limits' MemoryStorage, sweeping once a second on a daemon timer."""

    STORAGE_SCHEME = [SCHEME]  # noqa: RUF012 - limits registers storages by this class attribute

    def _MemoryStorage__schedule_expiry(self) -> None:  # replaces the 10 ms timer
        if not self.timer.is_alive():
            sweep = self._MemoryStorage__expire_events  # type: ignore[attr-defined]
            self.timer = threading.Timer(SWEEP_SECONDS, sweep)
            self.timer.daemon = True
            self.timer.start()


def storage_uri(url: str) -> str:
    """The storage Flask-Limiter should use for a configured URL."""
    return f"{SCHEME}://" if url.startswith("memory://") else url
