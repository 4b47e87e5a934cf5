"""Configuration from the environment; every variable is documented in the README's table."""

import os
from dataclasses import dataclass, field
from pathlib import Path


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default) or default


@dataclass(frozen=True)
class Config:
    """Paths and settings, read once from the environment."""

    models_dir: Path = field(default_factory=lambda: Path(_env("HEELDROP_MODELS_DIR", "models")))
    database_url: str = field(
        default_factory=lambda: _env("HEELDROP_DATABASE_URL", "sqlite:///instance/heeldrop.db")
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
    secure_cookies: bool = field(
        default_factory=lambda: _env("HEELDROP_SECURE_COOKIES", "1") not in ("0", "false", "no")
    )
    key_cache_seconds: float = field(
        default_factory=lambda: float(_env("HEELDROP_KEY_CACHE_SECONDS", "5"))
    )
