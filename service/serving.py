"""What a worker serves: the recommender, swapped whole on reload so requests never see half."""

import logging
import os
import signal
import threading

from service.errors import ModelRefused
from service.files import atomic_write_text
from service.recommend import Recommender
from service.registry import Registry
from service.rules import load_rules

log = logging.getLogger("heeldrop")
SERVING_FILE = ".serving"  # the last version a worker loaded, kept across restarts


class Serving:
    """Holds the current Recommender; `reload` replaces it only with a model that passes checks."""

    def __init__(self, registry: Registry):
        self.registry = registry
        self.rules = load_rules()
        self.recommender = Recommender(self.rules, None)
        self.not_ready = "no model loaded yet"
        self._lock = threading.Lock()

    def start(self) -> None:
        """Load the champion at start; if it is refused, the version served before, if any."""
        try:
            self.reload()
        except ModelRefused:
            last = self.registry.root / SERVING_FILE
            version = last.read_text(encoding="utf-8").strip() if last.is_file() else ""
            if version and version != self.registry.champion():
                self.reload(version)

    def reload(self, version: str | None = None) -> str | None:
        """Load the champion (or `version`); ModelRefused leaves the current model serving."""
        with self._lock:
            try:
                model = self.registry.load(version or self.registry.champion())
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
            atomic_write_text(self.registry.root / SERVING_FILE, model.version + "\n")
            log.info(
                "model loaded", extra={"event": "model_loaded", "model_version": model.version}
            )
            return model.version

    @staticmethod
    def restart_siblings() -> bool:
        """Under gunicorn, ask the master for a graceful restart so every worker reloads."""
        master = os.environ.get("HEELDROP_GUNICORN_MASTER")
        if not master:
            return False
        os.kill(int(master), signal.SIGHUP)
        return True
