"""GET /docs: the OpenAPI document as a page, with no script and nothing loaded from elsewhere.

Each operation shows its summary, whether it needs a key, its request body and its responses,
linked to the schemas below. A schema's JSON shows when a link to it is followed (CSS `:target`,
so no script is needed). The Content-Security-Policy allows the page's own inline style and
nothing else.
"""

import json
from html import escape
from typing import Any

from flask import Blueprint, Response

from service.api.openapi import ADMIN_KEY

blp = Blueprint("docs", __name__)

CSP = "; ".join((
    "default-src 'none'", "style-src 'unsafe-inline'", "img-src data:",  # the empty favicon
    "base-uri 'none'", "form-action 'none'", "frame-ancestors 'none'",
))  # fmt: skip
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<link rel="icon" href="data:,"><title>heeldrop API</title><style>
body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
h2{{border-bottom:1px solid #ddd}} code,pre{{background:#f5f5f5;padding:.1rem .3rem}}
pre{{padding:.6rem;overflow:auto;font-size:13px}} .m{{font-weight:bold;text-transform:uppercase}}
.schema h3{{margin:.2rem 0;font-size:1rem}} .schema pre{{display:none}}
.schema:target pre{{display:block}}</style></head><body>
<h1>heeldrop API {version}</h1>
<p>JSON in and out. Every route but <code>/livez</code>, <code>/readyz</code>,
<code>/metrics</code>, <code>/openapi.json</code> and <code>/docs</code> needs
<code>Authorization: Bearer &lt;key&gt;</code>; the <code>/admin</code> routes need an admin key.
Errors are always <code>{{"code", "status", "message", "errors"}}</code>.
The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.</p>
{paths}<h2>Schemas</h2>{schemas}</body></html>"""
_REF = "#/components/"


def _schema_link(content: dict[str, Any]) -> str:
    """A link to the JSON body's schema, or nothing when the body is not a named schema."""
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    if not ref.startswith(_REF + "schemas/"):
        return ""
    name = escape(ref.rsplit("/", 1)[1])
    return f' <a href="#schema-{name}"><code>{name}</code></a>'


def _responses(spec: dict[str, Any], responses: dict[str, Any]) -> str:
    named = spec.get("components", {}).get("responses", {})
    items = []
    for code, response in responses.items():
        ref = response.get("$ref", "")
        if ref.startswith(_REF + "responses/"):
            response = named.get(ref.rsplit("/", 1)[1], {})
        text = escape(response.get("description", ""))
        items.append(f"<li><code>{escape(code)}</code> {text}"
                     f"{_schema_link(response.get('content', {}))}</li>")  # fmt: skip
    return f"<ul>{''.join(items)}</ul>"


def access(spec: dict[str, Any], op: dict[str, Any]) -> str:
    """Who may call an operation, from its security requirement (or the document's)."""
    needs = op.get("security", spec.get("security", []))
    if needs == []:
        return "Public."
    return "Needs an admin key." if any(ADMIN_KEY in need for need in needs) else "Needs a key."


def _operations(spec: dict[str, Any]) -> str:
    out = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            body = _schema_link(op.get("requestBody", {}).get("content", {}))
            out.append(
                f"<h2><span class='m'>{escape(method)}</span> <code>{escape(path)}</code></h2>"
                f"<p>{escape(op.get('summary', ''))}</p>"
                f"<p>{access(spec, op)}{' Body:' + body if body else ''}</p>"
                f"{_responses(spec, op.get('responses', {}))}"
            )
    return "".join(out)


def _schemas(spec: dict[str, Any]) -> str:
    schemas = spec.get("components", {}).get("schemas", {})
    return "".join(
        f"<section class='schema' id='schema-{escape(name)}'><h3><a href='#schema-{escape(name)}'>"
        f"<code>{escape(name)}</code></a></h3><pre>{escape(json.dumps(body, indent=2))}</pre>"
        "</section>"
        for name, body in sorted(schemas.items())
    )


@blp.get("/docs")
def docs() -> Response:
    from service.api.app import api

    spec = api.spec.to_dict()
    html = PAGE.format(
        version=escape(spec["info"]["version"]), paths=_operations(spec), schemas=_schemas(spec)
    )
    response = Response(html, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = CSP
    return response
