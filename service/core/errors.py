"""One exception root for the core; each door maps these to its own answer in one place."""

from typing import Any


def error_body(code: int, status: str, message: str, errors: dict[str, Any] | None = None) -> dict:
    """The one error shape of every door: {code, status, message, errors}."""
    return {"code": code, "status": status, "message": message, "errors": errors or {}}


class HeeldropError(Exception):
    """Base of every error the core raises on purpose."""


class InvalidInput(HeeldropError):
    """Input that fails validation; `errors` maps field paths to messages."""

    def __init__(self, message: str, errors: dict[str, list[str]] | None = None):
        super().__init__(message)
        self.errors = errors or {}


class ModelRefused(HeeldropError):
    """A model file that fails its checks (digest, versions, features, trusted types)."""
