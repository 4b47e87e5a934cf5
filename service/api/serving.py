"""What a worker serves: the recommender, swapped whole on reload so requests never see half."""

import logging
import os
import signal
import threading

from service.core.errors import ModelRefused
from service.core.model import ServingModel
from service.core.recommend import Recommender
from service.core.rules import load_rules, rules_version
from service.files import atomic_write_text
from service.registry import Registry

log = logging.getLogger("heeldrop")
SERVING_FILE = ".serving"  # the last version a worker loaded, kept across restarts


class Serving:
    """Holds the current Recommender; `reload` replaces it only with a model that passes checks."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.rules = load_rules()
        self.rules_version = rules_version()
        self.recommender = Recommender(self.rules, None)
        self.not_ready = "no model loaded yet"
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load the champion at start; if it is refused, the version served before, if any.

        Never raises: a worker that cannot load any model answers with the rules (degraded,
        /readyz 503 with the reason) instead of failing to boot, because gunicorn stops the
        whole server when a worker fails to boot (a HUP over a bad registry would take the
        service down).
        """
        try:
            self.reload()
            return
        except ModelRefused:
            reason = self.not_ready
        last = self.registry.root / SERVING_FILE
        try:
            version = last.read_text(encoding="utf-8").strip() if last.is_file() else ""
            if version:  # (the champion itself again when it was the one served before)
                self.reload(version)
        except (ModelRefused, OSError, ValueError) as exc:
            self.not_ready = reason  # the champion's reason, not the fallback's
            log.warning(
                "fallback model refused",
                extra={"event": "model_refused", "reason": f"{type(exc).__name__}: {exc}"},
            )

    def reload(self, version: str | None = None) -> str | None:
        """Load the champion (or `version`); ModelRefused leaves the current model serving."""
        with self._lock:
            try:
                model = self._load(version)
            except ModelRefused as exc:
                if self.recommender.model is None:
                    self.not_ready = f"champion refused: {exc}"
                log.warning("model refused", extra={"event": "model_refused", "reason": str(exc)})
                raise
            if model is None:
                self.not_ready = "no champion is registered; answering with the rules only"
                return None
            self.recommender = Recommender(self.rules, model)
            self.not_ready = ""
            try:
                atomic_write_text(self.registry.root / SERVING_FILE, model.version + "\n")
            except OSError as exc:  # a read-only models volume: serve on, without the note
                log.warning("cannot record the served version",
                            extra={"event": "serving_note", "reason": str(exc)})  # fmt: skip
            log.info(
                "model loaded", extra={"event": "model_loaded", "model_version": model.version}
            )
            return model.version

    def _load(self, version: str | None) -> ServingModel | None:
        try:
            return self.registry.load(version or self.registry.champion())
        except (OSError, ValueError) as exc:  # e.g. a hand-edited champion.json
            raise ModelRefused(f"the registry could not be read: {exc}") from None

    @staticmethod
    def restart_siblings() -> bool:
        """Under gunicorn, ask the master for a graceful restart so every worker reloads."""
        master = os.environ.get("HEELDROP_GUNICORN_MASTER")
        if not master or int(master) != os.getppid():  # not (or no longer) under that master
            return False
        try:
            os.kill(int(master), signal.SIGHUP)
        except OSError:
            return False
        return True
