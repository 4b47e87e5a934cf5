"""The OpenAPI document's additions: the error answers every operation documents, and the
public routes that are plain Flask views."""

from http import HTTPStatus
from typing import Any

from apispec import BasePlugin
from flask import Flask
from flask_smorest import Api

from service.api.hooks import ADMIN_ROUTES, BODY_ROUTES

# The plain-Flask public routes, documented by hand: path -> (summary, media type, error codes).
PUBLIC_ROUTES = {
    "/livez": ("200 while the process is up", "application/json", ()),
    "/readyz": ("200 when the model and rules are loaded and the database answers; 503 with the "
                "reason otherwise",
                "application/json", (503,)),
    "/metrics": ("Prometheus text format", "text/plain", ()),
    "/openapi.json": ("This OpenAPI 3 document", "application/json", ()),
    "/docs": ("A browsable page of this document", "text/html", ()),
}  # fmt: skip
KEYED = (401, 429)  # every route behind a key: no valid key; over its rate limit
JSON_BODY = (400, 413, 415)  # a POST with a body: malformed JSON; too large; not JSON
ADMIN = (403,)  # a shop key on an admin route
STORED = ("/v1/recommendations", "/v1/outcomes")  # answers written to the database first
DATABASE = (503,)  # ... which can fail


class ErrorResponses(BasePlugin):
    """Adds to each operation the errors the request hooks (api/hooks.py) answer with, as
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
            if method == "post" and path.startswith(STORED):
                codes += DATABASE
            responses = operation.setdefault("responses", {})
            for code in codes:
                responses.setdefault(code, HTTPStatus(code).name)
            order = sorted(responses, key=lambda code: (str(code) == "default", str(code)))
            operation["responses"] = {code: responses[code] for code in order}


def document_public_routes(api: Api, app: Flask) -> None:
    """Add the public plain-Flask routes to the document, with `security: []`."""
    error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    rules = {rule.rule: rule for rule in app.url_map.iter_rules()}
    for path, (summary, media, codes) in PUBLIC_ROUTES.items():
        responses = {"200": {"description": "OK", "content": {media: {"schema": {}}}}}
        for code in codes:
            responses[str(code)] = {"description": HTTPStatus(code).phrase, "content": error}
        operation = {
            "summary": summary, "tags": ["operations"], "responses": responses, "security": [],
        }  # fmt: skip
        api.spec.path(rule=rules[path], operations={"get": operation})
