"""One error shape for every answer that is not a success, mapped from exceptions in one place."""

import logging
import traceback
from typing import Any, cast

from flask import Flask, Response, current_app, g
from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

from service.core.errors import error_body
from service.core.schema import flatten_errors
from service.db import Unavailable

log = logging.getLogger("heeldrop")


def error(code: int, message: str, errors: dict[str, Any] | None = None) -> Response:
    """An answer in the one error shape: {code, status, message, errors}."""
    body = error_body(code, HTTP_STATUS_CODES.get(code, "Error"), message, errors)
    response = cast(Response, current_app.json.response(body))
    response.status_code = code
    return response


RETRY_SECONDS = "5"  # how long a caller should wait after the database failed


def register(app: Flask) -> None:
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Unavailable, _database_unavailable)
    app.register_error_handler(Exception, _unexpected)
    app.log_exception = lambda exc_info: None  # type: ignore[method-assign]  # see _unexpected


def _http_error(exc: HTTPException) -> Response:
    code = exc.code or 500
    data = getattr(exc, "data", None) or {}
    errors = data.get("errors") or data.get("messages") or {}
    if isinstance(errors, dict) and errors:
        # webargs nests by location ({"json": {...}}); callers want field paths.
        inner = errors.get("json", errors)
        errors = flatten_errors(inner, "" if isinstance(inner, dict) else "_json")
    message = data.get("message") or (exc.description if code != 422 else "invalid fields")
    response = error(code, str(message), errors)
    for name, value in exc.get_headers():  # such as 405's Allow and 429's Retry-After
        if name.lower() != "content-type":
            response.headers[name] = value
    for name, value in (data.get("headers") or {}).items():
        response.headers[name] = value
    return response


def _database_unavailable(exc: Unavailable) -> Response:
    """The database failed: nothing was stored, so nothing is answered. Logged by the error's
    type only: a database error's text can hold the values it was writing."""
    log.warning(
        "database unavailable",
        extra={"event": "database_unavailable", "request_id": g.get("request_id"),
               "reason": str(exc)},
    )  # fmt: skip
    response = error(503, "the database is unavailable, so nothing was answered or stored; "
                          "try again shortly")  # fmt: skip
    response.headers["Retry-After"] = RETRY_SECONDS
    return response


def _unexpected(exc: Exception) -> Response:
    """A bug: log its type and where it happened (never its message, which may hold data)."""
    if isinstance(exc, HTTPException):
        return _http_error(exc)
    frame = traceback.extract_tb(exc.__traceback__)[-1] if exc.__traceback__ else None
    where = f"{frame.filename}:{frame.lineno}" if frame else "?"
    log.error(
        "unhandled error",
        extra={"event": "error", "request_id": g.get("request_id"),
               "reason": f"{type(exc).__name__} at {where}"},
    )  # fmt: skip
    return error(500, "internal error; quote the request id when reporting it")
