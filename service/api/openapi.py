"""HTTP blueprints, one per resource, and the error answers every operation documents."""

from http import HTTPStatus
from typing import Any

from apispec import BasePlugin

BODY_ROUTES = "/v1/"  # POSTs here take a JSON body
ADMIN_ROUTES = "/admin"  # admin keys only
KEYED = (401, 429)  # every route behind a key: no valid key; over its rate limit
JSON_BODY = (400, 413, 415)  # a POST with a body: malformed JSON; too large; not JSON
ADMIN = (403,)  # a shop key on an admin route


class ErrorResponses(BasePlugin):
    """Adds to each operation the errors the request hooks in service/app.py answer with, as
    references to the shared error shape. A public operation says so with `security: []`.
    (A plugin rather than flask-smorest's `alt_response`, which wraps the view once per status,
    a call on every request.)"""

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        path = path or ""
        for method, operation in (operations or {}).items():
            codes = [] if operation.get("security") == [] else [*KEYED]
            if method == "post" and path.startswith(BODY_ROUTES):
                codes += JSON_BODY
            if path.startswith(ADMIN_ROUTES):
                codes += ADMIN
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, HTTPStatus(code).name)
            order = sorted(responses, key=lambda code: (str(code) == "default", str(code)))
            operation["responses"] = {code: responses[code] for code in order}
