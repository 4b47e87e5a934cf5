"""The model registry: immutable version folders and an atomically replaced champion pointer.

Each version folder holds the estimator (`model.skops`), the served evaluator's parameters
(`serving.json`, JSON floats round-trip exactly), `metadata.json` and the report. Serving reads
only the JSON and refuses a version unless every check passes, and never imports scikit-learn or
skops (about 2.5 s of start-up); the estimator loads on demand (`load_estimator`).
"""

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from datetime import UTC, datetime
from importlib import metadata as dist
from pathlib import Path
from typing import Any

from service.core.errors import HeeldropError, ModelRefused
from service.core.features import FEATURES
from service.core.model import LinearSoftmax, ServingModel
from service.files import atomic_write_text, fsync_dir

CHAMPION_FILE = "champion.json"
# A version's name, as new_version makes it: anything else (a path, "..") is refused.
VERSION = re.compile(r"\d{8}T\d{12}Z")
SHA256 = re.compile(r"[0-9a-f]{64}")
MODEL_FILE = "model.skops"
SERVING_FILE = "serving.json"
METADATA_FILE = "metadata.json"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_model(estimator: Any, folder: Path) -> dict[str, str]:
    """Write `model.skops` and `serving.json` into `folder`; their sha256s for the metadata."""
    from service.training import estimator as estimators

    estimators.save(estimator, folder / MODEL_FILE)
    text = json.dumps(estimators.served(estimator).to_json(), indent=1) + "\n"
    (folder / SERVING_FILE).write_text(text, encoding="utf-8")
    return {"sha256": sha256(folder / MODEL_FILE), "serving_sha256": sha256(folder / SERVING_FILE)}


def _checked_metadata(folder: Path, metadata_sha256: str | None = None) -> dict[str, Any]:
    """metadata.json, once it matches `metadata_sha256` (what champion.json recorded when the
    version was promoted, when it did), model.skops matches its sha256 and the code matches
    the model."""
    if metadata_sha256 is not None:
        _check_file(folder, METADATA_FILE, metadata_sha256)
    try:
        metadata = json.loads((folder / METADATA_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelRefused(f"{folder.name}: no readable metadata.json ({exc})") from None
    _check_file(folder, MODEL_FILE, metadata.get("sha256"))
    trained_with = metadata.get("versions", {}).get("scikit-learn")
    try:
        installed = dist.version("scikit-learn")
    except dist.PackageNotFoundError:
        installed = "not installed"
    if trained_with != installed:
        raise ModelRefused(
            f"{folder.name}: trained with scikit-learn {trained_with}, "
            f"this is {installed}; retrain it"
        )
    if tuple(metadata.get("features", ())) != FEATURES:
        raise ModelRefused(f"{folder.name}: trained on other features than this code builds")
    return metadata


def _check_file(folder: Path, name: str, recorded: str | None) -> None:
    path = folder / name
    if not path.is_file() or sha256(path) != recorded:
        raise ModelRefused(f"{folder.name}: {name} is missing or its sha256 does not match")


def load_model(folder: str | Path, metadata_sha256: str | None = None) -> ServingModel:
    """Load a registered version for serving, refusing it unless every check passes.

    Reads `serving.json`, not the estimator. A version registered before that file existed
    has no `serving_sha256`; it is compiled from its checked estimator instead.
    """
    folder = Path(folder)
    metadata = _checked_metadata(folder, metadata_sha256)
    if "serving_sha256" not in metadata:
        from service.training import estimator as estimators

        fast = estimators.served(estimators.load(folder / MODEL_FILE, folder.name))
    else:
        _check_file(folder, SERVING_FILE, metadata["serving_sha256"])
        try:
            data = json.loads((folder / SERVING_FILE).read_text(encoding="utf-8"))
            fast = LinearSoftmax.from_json(data)
        except (ValueError, KeyError, TypeError) as exc:
            raise ModelRefused(f"{folder.name}: {SERVING_FILE} could not be read ({exc})") from None
    return ServingModel(str(metadata["version"]), metadata, fast, folder)


def load_estimator(folder: str | Path) -> Any:
    """The scikit-learn estimator of a registered version, checked; imports scikit-learn."""
    from service.training import estimator as estimators

    folder = Path(folder)
    _checked_metadata(folder)
    return estimators.load(folder / MODEL_FILE, folder.name)


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
        """Complete versions, oldest first (names sort by time); a symbolic link is none."""
        if not self.root.is_dir():
            return []
        return sorted(
            p.name
            for p in self.root.iterdir()
            if VERSION.fullmatch(p.name) and p.is_dir() and not p.is_symlink()
            and (p / METADATA_FILE).is_file()
        )  # fmt: skip

    def folder(self, version: Any) -> Path:
        """The folder of a version named as new_version names them, inside the registry (not
        a symbolic link); RegistryError for any other name."""
        if not isinstance(version, str) or not VERSION.fullmatch(version):
            raise RegistryError(f"{version!r} is not a version name (like {self.new_version()})")
        path = self.root / version
        if path.is_symlink():
            raise RegistryError(f"version {version} is a symbolic link, not a registered folder")
        return path

    def metadata(self, version: str) -> dict[str, Any]:
        path = self.folder(version) / METADATA_FILE
        if not path.is_file():
            raise RegistryError(f"no version {version!r} in {self.root}")
        return json.loads(path.read_text(encoding="utf-8"))

    def pointer(self) -> dict[str, Any]:
        """champion.json; ModelRefused when it is not what promote writes (a malformed pointer
        is refused like a tampered model: the old model serves on)."""
        path = self.root / CHAMPION_FILE
        if not path.is_file():
            return {}
        try:
            pointer = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelRefused(f"{CHAMPION_FILE} cannot be read ({exc})") from None
        if not isinstance(pointer, dict) or not all(
            pointer.get(k) is None
            or (isinstance(pointer[k], str) and VERSION.fullmatch(pointer[k]))
            for k in ("version", "previous")
        ):
            raise ModelRefused(f"{CHAMPION_FILE} is malformed: it must name versions by name")
        digests = pointer.get("metadata_sha256", {})
        if not isinstance(digests, dict) or not all(
            isinstance(d, str) and SHA256.fullmatch(d) for d in digests.values()
        ):
            raise ModelRefused(f"{CHAMPION_FILE} is malformed: its metadata_sha256 are not digests")
        return pointer

    def champion(self) -> str | None:
        return self.pointer().get("version")

    def load_champion(self) -> ServingModel | None:
        """The champion, checked; None when none is registered, ModelRefused when it fails."""
        return self.load(self.champion())

    def load(self, version: str | None) -> ServingModel | None:
        """A registered version, checked (its metadata.json against the digest champion.json
        recorded, for the champion and the previous one); None for no version."""
        if not version:
            return None
        try:
            digest = self.pointer().get("metadata_sha256", {}).get(version)
        except ModelRefused:  # a malformed pointer records nothing to trust; the files still
            digest = None  # are checked (serving falls back to the version it served)
        try:
            return load_model(self.folder(version), digest)
        except RegistryError as exc:
            raise ModelRefused(str(exc)) from None

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
        """Make `version` the champion (after checking it loads); the old one becomes previous.
        The pointer records both versions' metadata.json digests, which serving checks, so a
        metadata.json changed after promotion (its recorded digests with it) is refused."""
        with self.lock():
            old = self.pointer()
            folder = self.folder(version)
            load_model(folder, old.get("metadata_sha256", {}).get(version))
            current = old.get("version")
            previous = current if current != version else old.get("previous")
            digests = {version: sha256(folder / METADATA_FILE)}
            recorded = old.get("metadata_sha256", {}).get(previous)
            if previous and (recorded or (self.folder(previous) / METADATA_FILE).is_file()):
                digests[previous] = recorded or sha256(self.folder(previous) / METADATA_FILE)
            pointer = {
                "version": version,
                "previous": previous,
                "promoted_at": datetime.now(UTC).isoformat(timespec="seconds"),
                "metadata_sha256": digests,
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
