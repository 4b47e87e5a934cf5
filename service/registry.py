"""The model registry: immutable version folders and an atomically replaced champion pointer."""

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.core.errors import HeeldropError
from service.core.model import METADATA_FILE, ServingModel, load_model
from service.files import atomic_write_text, fsync_dir

CHAMPION_FILE = "champion.json"


class RegistryError(HeeldropError):
    """A registry operation that cannot be done (unknown version, nothing to roll back to)."""


class Registry:
    """Versions under `<models_dir>/registry/`; the champion is named in `champion.json`."""

    def __init__(self, models_dir: str | os.PathLike[str]):
        self.root = Path(models_dir) / "registry"
        self._depth = 0  # the lock is re-entrant within one Registry object

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the registry's lock so two retrains or promotions cannot interleave."""
        if self._depth:
            self._depth += 1
            try:
                yield
            finally:
                self._depth -= 1
            return
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            self._depth = 1
            try:
                self._sweep()
                yield
            finally:
                self._depth = 0

    def _sweep(self) -> None:
        """Remove staging folders a killed retrain left; safe only while holding the lock."""
        for path in self.root.glob(".*.*"):
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)

    def versions(self) -> list[str]:
        """Complete versions, oldest first (names sort by time)."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if p.is_dir() and not p.name.startswith(".") and (p / METADATA_FILE).is_file()
        )

    def metadata(self, version: str) -> dict[str, Any]:
        path = self.root / version / METADATA_FILE
        if not path.is_file():
            raise RegistryError(f"no version {version!r} in {self.root}")
        return json.loads(path.read_text(encoding="utf-8"))

    def pointer(self) -> dict[str, Any]:
        path = self.root / CHAMPION_FILE
        return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}

    def champion(self) -> str | None:
        return self.pointer().get("version")

    def load_champion(self) -> ServingModel | None:
        """The champion, checked; None when none is registered, ModelRefused when it fails."""
        return self.load(self.champion())

    def load(self, version: str | None) -> ServingModel | None:
        """A registered version, checked; None for no version."""
        return load_model(self.root / version) if version else None

    def new_version(self) -> str:
        return datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")

    @contextlib.contextmanager
    def staging(self, version: str) -> Iterator[Path]:
        """A hidden folder to fill; renamed to the version only when complete."""
        final = self.root / version
        if final.exists():
            raise RegistryError(f"version {version} exists; versions are never overwritten")
        self.root.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=self.root))
        try:
            yield tmp
            for path in tmp.iterdir():
                with open(path, "rb") as fh:
                    os.fsync(fh.fileno())
            os.chmod(tmp, 0o755)
            os.rename(tmp, final)
            fsync_dir(self.root)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def promote(self, version: str) -> None:
        """Make `version` the champion (after checking it loads); the old one becomes previous."""
        with self.lock():
            load_model(self.root / version)
            current = self.champion()
            pointer = {
                "version": version,
                "previous": current if current != version else self.pointer().get("previous"),
                "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
            }
            atomic_write_text(self.root / CHAMPION_FILE, json.dumps(pointer, indent=2) + "\n")

    def rollback(self) -> str:
        """Point the champion back at the previous version."""
        with self.lock():
            previous = self.pointer().get("previous")
            if not previous:
                raise RegistryError("there is no previous champion to roll back to")
            self.promote(previous)
            return previous
