"""GET /docs: the OpenAPI document as a page, served without any script or outside asset."""

import json
from html import escape
from typing import Any

from flask import Blueprint, Response

blp = Blueprint("docs", __name__)

PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>heeldrop API</title><style>
body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
h2{{border-bottom:1px solid #ddd}} code,pre{{background:#f5f5f5;padding:.1rem .3rem}}
pre{{padding:.6rem;overflow:auto;font-size:13px}} .m{{font-weight:bold;text-transform:uppercase}}
details{{margin:.3rem 0}}</style></head><body>
<h1>heeldrop API {version}</h1>
<p>JSON in and out. Every route but <code>/livez</code>, <code>/readyz</code>,
<code>/metrics</code>, <code>/openapi.json</code> and <code>/docs</code> needs
<code>Authorization: Bearer &lt;key&gt;</code>.
Errors are always <code>{{"code", "status", "message", "errors"}}</code>.
The machine-readable document is at <a href="/openapi.json">/openapi.json</a>.</p>
{paths}<h2>Schemas</h2>{schemas}</body></html>"""


def _operations(spec: dict[str, Any]) -> str:
    out = []
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            codes = ", ".join(op.get("responses", {}))
            out.append(
                f"<h2><span class='m'>{escape(method)}</span> <code>{escape(path)}</code></h2>"
                f"<p>{escape(op.get('summary', ''))}</p><p>Responses: {escape(codes)}</p>"
            )
    return "".join(out)


def _schemas(spec: dict[str, Any]) -> str:
    schemas = spec.get("components", {}).get("schemas", {})
    return "".join(
        f"<details><summary><code>{escape(name)}</code></summary>"
        f"<pre>{escape(json.dumps(body, indent=2))}</pre></details>"
        for name, body in sorted(schemas.items())
    )


@blp.get("/docs")
def docs() -> Response:
    from service.app import api

    spec = api.spec.to_dict()
    html = PAGE.format(
        version=escape(spec["info"]["version"]), paths=_operations(spec), schemas=_schemas(spec)
    )
    return Response(html, content_type="text/html; charset=utf-8")
