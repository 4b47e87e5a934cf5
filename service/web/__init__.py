"""The fitter's page: staff sign in and get a recommendation where they stand, on the same app
and the same core as the API, logged under their tenant like an API key's answers."""

import os
import secrets
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from flask import Flask
from flask_babel import Babel

from service.web import views

SESSION_HOURS = 12  # a shop day; then sign in again
SECRET_FILE = Path("instance") / "secret_key"


def secret_key(path: Path = SECRET_FILE) -> str:
    """HEELDROP_SECRET_KEY, else the key in `path`, made once (every worker reads the same)."""
    given = os.environ.get("HEELDROP_SECRET_KEY")
    if given:
        return given
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
        draft.write_text(secrets.token_urlsafe(48), encoding="utf-8")
        draft.chmod(0o600)
        try:
            os.link(draft, path)  # atomic, and refused when another worker made it first
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    return path.read_text(encoding="utf-8").strip()


def init_pages(app: Flask, sign_in_limit: Callable[[Any], Any], secure_cookies: bool) -> None:
    """Sessions with secure cookie settings, one message catalogue (English shipped), sign-in
    attempts rate-limited by the decorator `sign_in_limit`; then the pages, whose every form
    carries a CSRF token (Flask-WTF)."""
    app.config["SECRET_KEY"] = app.config.get("SECRET_KEY") or secret_key()
    app.config.update(
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        PERMANENT_SESSION_LIFETIME=timedelta(hours=SESSION_HOURS),
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).parent / "translations"),
    )
    Babel(app)
    app.register_blueprint(views.blueprint(sign_in_limit))
