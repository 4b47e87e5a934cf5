"""The OpenAPI document's additions: the key each operation needs and the errors it answers
with, words and units for every field, an example of every body, types a client generator can
use, and the public routes that are plain Flask views.

The document's version is the package's, then the rule table's digest (`0.1.0+rules.` and 12
hex digits): either changing can change an answer. Generators meet three shapes written for
them: a nullable object or enum is `anyOf: [the type, {nullable, enum: [null]}]` (apispec's own
form puts an empty object first, which a generated client takes for the answer); a batch result
is `oneOf` an answer or an item error; the error shape has every field required and its
`errors` typed.
"""

from http import HTTPStatus
from typing import Any

from apispec import APISpec, BasePlugin
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import make_schema_key, resolve_schema_instance
from flask import Flask
from flask_smorest import Api
from flask_smorest.error_handler import ErrorSchema as LibraryErrorSchema
from marshmallow import Schema, fields

from service import __version__
from service.api import examples, schemas
from service.api.hooks import ADMIN_ROUTES, BODY_ROUTES
from service.core.fields import BY_PATH
from service.core.rules import rules_version
from service.core.schema import RequestSchema
from service.reference import GROUPS, describe

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

KEY, ADMIN_KEY = "bearerAuth", "adminAuth"  # the security schemes
SECURITY_SCHEMES = {
    KEY: {"type": "http", "scheme": "bearer", "description":
          "A key made by `heeldrop keys create --name NAME`, sent as `Authorization: Bearer "
          "<key>`. Shop keys call `/v1/*`; admin keys also `/admin/*`."},
    ADMIN_KEY: {"type": "http", "scheme": "bearer", "description":
                "An admin key (`heeldrop keys create --name NAME --admin`); a shop key gets 403."},
}  # fmt: skip
INFO = (
    "Heel-drop recommendations with their reasoning. JSON in and out. Every operation says the "
    "key it needs; errors are always `Error`. The version is the package's, then `+rules.` and "
    "the digest of the rule table in force (as `GET /v1/rules` gives it). Request fields: "
    "docs/fields.md; rules: docs/rules.md."
)
NULL = {"nullable": True, "enum": [None]}  # the null alternative of a nullable value
# A component's example, by the schema it is made from.
EXAMPLES: dict[type[Schema], Any] = {
    RequestSchema: examples.REQUEST,
    schemas.RecommendationResponseSchema: examples.RESPONSE,
    schemas.BatchRequestSchema: examples.BATCH_REQUEST,
    schemas.BatchResponseSchema: examples.BATCH_RESPONSE,
    schemas.BatchItemErrorSchema: examples.BATCH_ITEM_ERROR,
    schemas.ErrorSchema: examples.ERROR,
    schemas.OutcomeSchema: examples.OUTCOME,
    schemas.OutcomeReceiptSchema: examples.OUTCOME_RECEIPT,
    schemas.CatalogueSchema: examples.CATALOGUE,
    schemas.ModelInfoSchema: examples.MODEL_INFO,
    schemas.ReloadSchema: examples.RELOAD,
}


def api_version() -> str:
    """The document's version: the package's and the rule table's."""
    return f"{__version__}+rules.{rules_version()}"


def _groups(schema: type[Schema], prefix: str = "") -> dict[type[Schema], str]:
    """The request's schema classes by the path of the group each describes."""
    found = {schema: prefix}
    for name, field in schema().fields.items():
        if isinstance(field, fields.Nested) and isinstance(field.nested, type):
            found |= _groups(field.nested, f"{prefix}.{name}" if prefix else name)
    return found


REQUEST_GROUPS = _groups(RequestSchema)


def _nullable(prop: dict[str, Any]) -> dict[str, Any]:
    """A nullable property as an `anyOf` whose null alternative generators read as None."""
    alternatives = prop.get("anyOf", [])
    empty = {"type": "object", "nullable": True}
    if empty in alternatives:
        rest = {k: v for k, v in prop.items() if k != "anyOf"}
        return {"anyOf": [a for a in alternatives if a != empty] + [NULL], **rest}
    if prop.get("nullable") and "enum" in prop:
        rest = {k: v for k, v in prop.items() if k not in ("type", "enum", "nullable")}
        kind = {"type": prop["type"], "enum": [v for v in prop["enum"] if v is not None]}
        return {"anyOf": [kind, NULL], **rest}
    return prop


def _one_of(converter: Any, field: fields.Field, **kwargs: Any) -> dict[str, Any]:
    """A marshmallow attribute function: schemas.OneOf as `oneOf` references."""
    if isinstance(field, schemas.OneOf):
        return {"oneOf": [converter.resolve_nested_schema(s) for s in field.schemas]}
    return {}


class Document(BasePlugin):
    """Completes what flask-smorest and apispec write, as each part is registered."""

    def init_spec(self, spec: APISpec) -> None:
        spec.version = api_version()
        spec.options.setdefault("info", {})["description"] = INFO
        for name, scheme in SECURITY_SCHEMES.items():
            spec.components.security_scheme(name, scheme)
        # The marshmallow plugin comes first in flask-smorest's list: its converter exists.
        ma = next(p for p in spec.plugins if isinstance(p, MarshmallowPlugin))
        converter = ma.converter
        if converter is None:
            raise RuntimeError("the Document plugin must follow the marshmallow plugin")
        self.converter = converter
        converter.add_attribute_function(_one_of)
        # One error shape, ours: flask-smorest's error schema (which its default responses and
        # our alt_responses name) is documented as our typed one.
        spec.components.schema("Error", schema=schemas.ErrorSchema)
        converter.refs[make_schema_key(resolve_schema_instance(LibraryErrorSchema))] = "Error"

    def schema_helper(
        self, name: str, definition: dict[str, Any], schema: Any = None, **kwargs: Any
    ) -> dict[str, Any]:
        if schema is None:
            return {}
        cls = schema if isinstance(schema, type) else type(schema)
        added: dict[str, Any] = {}
        given = definition.get("properties", {})
        properties = {key: _nullable(prop) for key, prop in given.items()}
        if cls in REQUEST_GROUPS:
            prefix = REQUEST_GROUPS[cls]
            if prefix in GROUPS:
                added["description"] = GROUPS[prefix]
            for key, prop in properties.items():
                path = f"{prefix}.{key}" if prefix else key
                field = BY_PATH.get(path)
                if field is not None:
                    prop["description"] = describe(field)
                    if field.unit:
                        prop["x-unit"] = field.unit
                elif "$ref" in prop:  # a group: a reference has no words of its own in 3.0
                    properties[key] = {"allOf": [prop], "description": GROUPS[path]}
        if cls in EXAMPLES:
            added["example"] = EXAMPLES[cls]
        return {**definition, "properties": properties, **added}

    def operation_helper(
        self, path: str | None = None, operations: dict[str, Any] | None = None, **kwargs: Any
    ) -> None:
        """Adds to each operation the key it needs and the errors the request hooks
        (api/hooks.py) answer with, as references to the shared error shape; a public operation
        says so with `security: []`. (A plugin rather than flask-smorest's `alt_response`, which
        wraps the view once per status, a call on every request.)"""
        path = path or ""
        for method, operation in (operations or {}).items():
            public = operation.get("security") == []
            codes = [] if public else [*KEYED]
            if not public:
                key = ADMIN_KEY if path.startswith(ADMIN_ROUTES) else KEY
                operation["security"] = [{key: []}]
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
    """Add the public plain-Flask routes to the document, with `security: []`; then drop the
    schemas nothing refers to (flask-smorest registers its pagination schema regardless)."""
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
    drop_unused_schemas(api.spec)


def references(node: Any) -> set[str]:
    """The names of the schemas `node` refers to, directly."""
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        found = {ref.rsplit("/", 1)[1]} if ref.startswith("#/components/schemas/") else set()
        return found.union(*(references(v) for v in node.values()))
    if isinstance(node, list):
        return set().union(*(references(v) for v in node))
    return set()


def drop_unused_schemas(spec: APISpec) -> None:
    """Remove the schemas no operation reaches, directly or through other schemas."""
    document = spec.to_dict()
    schemas_ = spec.components.schemas
    used = references({k: v for k, v in document.items() if k != "components"})
    used |= references(document.get("components", {}).get("responses", {}))
    todo = set(used)
    while todo:
        name = todo.pop()
        new = references(schemas_.get(name, {})) - used
        used |= new
        todo |= new
    for name in set(schemas_) - used:
        del schemas_[name]
