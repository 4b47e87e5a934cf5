"""What every request goes through: its id, the caller's key, scope and rate limit and the
body's size and type before the view; its headers, metrics and one log line after it."""

import logging
import re
import secrets
import time

from flask import Flask, Response, current_app, g, request

from service.api.errors import error
from service.api.limits import RateLimits, add_headers
from service.api.metrics import count_request
from service.config import Config

log = logging.getLogger("heeldrop")
BODY_ROUTES = "/v1/"  # POSTs here take a JSON body
ADMIN_ROUTES = "/admin"  # admin keys only
PUBLIC = {"health.livez", "health.readyz", "health.metrics", "api-docs.openapi_json", "docs.docs"}
PAGES = "fit"  # the fitter's pages' blueprint
_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


def register(app: Flask) -> None:
    app.before_request(before)
    app.after_request(after)


def before() -> Response | None:
    g.start = time.perf_counter()
    # The caller's X-Request-ID (echoed) correlates the exchange; an answer's own id is always
    # issued here, unique, so no caller's choice can collide with another answer in the log.
    g.answer_id = secrets.token_hex(16)
    given = request.headers.get("X-Request-ID", "")
    g.request_id = given if _REQUEST_ID.fullmatch(given) else g.answer_id
    if request.endpoint is None or request.endpoint in PUBLIC or request.blueprint == PAGES:
        return None  # the fitter's pages sign their staff in with a session (service/web)
    address = request.remote_addr or "-"
    rate_limits: RateLimits = current_app.extensions["heeldrop.limits"]
    wait = rate_limits.blocked(address)
    if wait:
        response = error(429, "too many requests with a wrong or missing key from this address")
        response.headers["Retry-After"] = str(wait)
        return response
    scheme, _, token = request.headers.get("Authorization", "").strip().partition(" ")
    caller = None
    if scheme.lower() == "bearer":  # RFC 9110: the scheme is case-insensitive
        caller = current_app.extensions["heeldrop.keys"].verify(token.strip())
    if caller is None:
        rate_limits.failed(address)
        response = error(401, "a valid 'Authorization: Bearer <key>' header is required")
        response.headers["WWW-Authenticate"] = "Bearer"  # RFC 6750: name the scheme expected
        return response
    g.caller_key, g.tenant = caller.key_id, caller.tenant
    path = request.path
    if path.startswith(ADMIN_ROUTES) and not caller.admin:
        return error(403, "this route needs an admin key")
    if request.method == "POST" and path.startswith(BODY_ROUTES):
        if not request.is_json:
            return error(415, "send JSON with 'Content-Type: application/json'")
        config: Config = current_app.config["HEELDROP"]
        limit = config.max_batch_body_bytes if "batch" in path else config.max_body_bytes
        request.max_content_length = limit + 1  # a chunked body has no length: read 1 byte past
        if (request.content_length or 0) > limit or len(request.get_data(cache=True)) > limit:
            return error(413, f"the body is over {limit} bytes")
    g.rate_window = window = rate_limits.key(caller.key_id)  # one budget per key, for every route
    if not window.allowed:
        return error(429, f"too many requests with this key: its limit is {rate_limits.per_key}")
    return None


def after(response: Response) -> Response:
    rule = request.url_rule
    route = rule.rule if rule else "unmatched"
    elapsed = time.perf_counter() - g.get("start", time.perf_counter())
    request_id = g.get("request_id")
    headers = response.headers
    headers["X-Request-ID"] = request_id or ""
    headers["X-Content-Type-Options"] = "nosniff"
    if request.endpoint not in PUBLIC:  # an answer about a person (or a refusal): never cached
        headers["Cache-Control"] = "no-store"
    version = g.get("model_version")
    if version:
        headers["X-Model-Version"] = version
    else:  # the serving model's version on every line, errors included
        model = current_app.extensions["heeldrop"].recommender.model
        version = model.version if model else None
    window = g.get("rate_window")
    if window is not None:
        add_headers(response, window)
    status = response.status_code
    count_request(route, request.method, status, elapsed)
    log.info(
        "request",
        extra={
            "event": "request", "request_id": request_id, "method": request.method,
            "route": route, "status": status, "latency_ms": round(elapsed * 1000, 3),
            "model_version": version, "key": g.get("caller_key"), "items": g.get("items"),
            "answer_id": g.get("answer_id") if g.get("logged") else None,
        },
    )  # fmt: skip
    return response
