"""Configuration from the environment; every variable is documented in the README's table.

The models folder and the database are resolved here, once: a relative path (the defaults
`models` and `instance/heeldrop.db` are) is taken against the current directory and made
absolute, and every command that uses them says which it used (`sources`), so a command run
from another directory cannot quietly read an empty registry or create a second database.
"""

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

MODELS_DEFAULT = "models"
DATABASE_DEFAULT = "sqlite:///instance/heeldrop.db"
_SQLITE_FILE = re.compile(r"^(sqlite(?:\+\w+)?):///([^?]*)(\?.*)?$")
_PASSWORD = re.compile(r"^([\w+.-]+://[^/:@]*):[^/]*@")  # up to the last @ of the netloc


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default) or default


def _models_dir() -> Path:
    return Path(_env("HEELDROP_MODELS_DIR", MODELS_DEFAULT)).absolute()


def absolute_url(url: str) -> str:
    """A SQLite URL whose file path is relative, made absolute; any other URL as it is."""
    match = _SQLITE_FILE.match(url)
    if not match or not match[2] or match[2] == ":memory:" or match[2].startswith("/"):
        return url
    return f"{match[1]}:///{Path(match[2]).absolute()}{match[3] or ''}"


def shown_url(url: str) -> str:
    """A database URL fit to print: its password replaced by ***."""
    return _PASSWORD.sub(r"\1:***@", url)


def sqlite_file(url: str) -> Path | None:
    """The file of a SQLite URL (None for any other database, or one in memory)."""
    match = _SQLITE_FILE.match(url)
    if not match or not match[2] or match[2] == ":memory:":
        return None
    return Path(match[2])


@dataclass(frozen=True)
class Config:
    """Paths and settings, read once from the environment."""

    models_dir: Path = field(default_factory=_models_dir)
    database_url: str = field(
        default_factory=lambda: absolute_url(_env("HEELDROP_DATABASE_URL", DATABASE_DEFAULT))
    )
    cases_path: Path | None = field(
        default_factory=lambda: (
            Path(os.environ["HEELDROP_CASES"]) if os.environ.get("HEELDROP_CASES") else None
        )
    )
    ratelimit_storage_url: str = field(
        default_factory=lambda: _env("HEELDROP_RATELIMIT_STORAGE_URL", "memory://")
    )
    rate_limit: str = field(default_factory=lambda: _env("HEELDROP_RATE_LIMIT", "1200/minute"))
    failed_key_limit: str = field(
        default_factory=lambda: _env("HEELDROP_FAILED_KEY_LIMIT", "60/minute")
    )
    max_body_bytes: int = field(
        default_factory=lambda: int(_env("HEELDROP_MAX_BODY_BYTES", str(64 * 1024)))
    )
    max_batch_body_bytes: int = field(
        default_factory=lambda: int(_env("HEELDROP_MAX_BATCH_BODY_BYTES", str(8 * 1024 * 1024)))
    )
    log_retention_days: int = field(
        default_factory=lambda: int(_env("HEELDROP_LOG_RETENTION_DAYS", "730"))
    )
    # How many proxies in front set X-Forwarded-For and -Proto (docs/deployment.md); 0 trusts none.
    proxies: int = field(default_factory=lambda: int(_env("HEELDROP_PROXIES", "0")))
    secure_cookies: bool = field(
        default_factory=lambda: _env("HEELDROP_SECURE_COOKIES", "1") not in ("0", "false", "no")
    )
    key_cache_seconds: float = field(
        default_factory=lambda: float(_env("HEELDROP_KEY_CACHE_SECONDS", "5"))
    )

    def sources(self, models: bool, database: bool) -> list[str]:
        """Which models folder and database a command uses, one line each, for its stderr."""
        lines = []
        if models:
            origin = (
                "the default, models/ in the current directory; HEELDROP_MODELS_DIR sets another"
                if self.models_dir == Path(MODELS_DEFAULT).absolute()
                and not os.environ.get("HEELDROP_MODELS_DIR")
                else "HEELDROP_MODELS_DIR"
            )
            lines.append(f"models folder {self.models_dir} ({origin})")
        if database:
            notes = [
                "the default, instance/heeldrop.db in the current directory; "
                "HEELDROP_DATABASE_URL sets another"
                if self.database_url == absolute_url(DATABASE_DEFAULT)
                and not os.environ.get("HEELDROP_DATABASE_URL")
                else "HEELDROP_DATABASE_URL"
            ]
            file = sqlite_file(self.database_url)
            if file is not None and not file.exists():
                notes.append("a new file")
            lines.append(f"database {shown_url(self.database_url)} ({'; '.join(notes)})")
        return lines
