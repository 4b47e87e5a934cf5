"""HTTP blueprints, one per resource, and the error answers their routes document."""

from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from flask_smorest import Blueprint

KEYED = (401, 429)  # every route behind a key: no valid key; over its rate limit
JSON_BODY = (400, 413, 415)  # a POST with a body: malformed JSON; too large; not JSON
ADMIN = (403,)  # a shop key on an admin route


def documents(blp: Blueprint, *codes: int) -> Callable[[Any], Any]:
    """Document the shared error shape for the statuses a view's route can answer with
    (the request hooks in service/app.py give them; tests/test_api.py checks both agree)."""

    def decorate(view: Any) -> Any:
        for code in codes:
            view = blp.alt_response(code, response=HTTPStatus(code).name)(view)
        return view

    return decorate
