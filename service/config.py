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
    cases_path: Path = field(
        default_factory=lambda: Path(_env("HEELDROP_CASES", "tests/cases/article_cases.json"))
    )
