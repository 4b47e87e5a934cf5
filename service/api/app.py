"""The application factory: configuration, the serving model, keys, hooks, limits, blueprints."""

import dataclasses
from typing import Any

from flask import Flask
from flask_smorest import Api
from werkzeug.middleware.proxy_fix import ProxyFix

from service.api import (
    admin,
    docs,
    errors,
    health,
    hooks,
    model_info,
    outcomes,
    recommendations,
    rules,
)
from service.api.jsonprovider import JsonProvider
from service.api.limits import RateLimits
from service.api.openapi import Document, api_version, document_public_routes
from service.api.serving import Serving
from service.config import Config
from service.db import engine_for, upgrade
from service.db.keys import KeyStore
from service.db.log import RecommendationLog
from service.logs import configure as configure_logs
from service.registry import Registry
from service.web import init_pages

api = Api()


def create_app(test_config: dict[str, Any] | None = None) -> Flask:
    """Build the app; `test_config` overrides Config fields (and Flask settings in upper case)."""
    overrides = test_config or {}
    config = dataclasses.replace(
        Config(), **{k: v for k, v in overrides.items() if not k.isupper()}
    )
    app = Flask(__name__)
    app.json = JsonProvider(app)
    app.config.update(
        API_TITLE="heeldrop",
        API_VERSION=api_version(),
        OPENAPI_VERSION="3.0.3",
        OPENAPI_URL_PREFIX="/",
        OPENAPI_JSON_PATH="openapi.json",
        MAX_CONTENT_LENGTH=config.max_batch_body_bytes,
        API_SPEC_OPTIONS={"security": [{"bearerAuth": []}]},
        HEELDROP=config,
    )
    app.config.update({k: v for k, v in overrides.items() if k.isupper()})
    configure_logs()
    upgrade(config.database_url)
    serving = Serving(Registry(config.models_dir))
    serving.start()
    app.extensions["heeldrop"] = serving
    engine = engine_for(config.database_url)
    app.extensions["heeldrop.keys"] = KeyStore(engine, config.key_cache_seconds)
    app.extensions["heeldrop.log"] = RecommendationLog(engine, serving.rules_version)
    app.extensions["heeldrop.limits"] = limits = RateLimits(
        config.rate_limit, config.failed_key_limit, config.ratelimit_storage_url,
        app.config.get("RATELIMIT_KEY_PREFIX", ""),
    )  # fmt: skip
    api.init_app(app, spec_kwargs={"extra_plugins": [Document()]})
    for module in (recommendations, outcomes, rules, model_info, admin):
        api.register_blueprint(module.blp)
    for module in (health, docs):
        app.register_blueprint(module.blp)
    document_public_routes(api, app)
    hooks.register(app)
    init_pages(app, limits.sign_in, config.secure_cookies)
    errors.register(app)
    if config.proxies:  # the client's address and scheme as the proxy saw them
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=config.proxies, x_proto=config.proxies
        )
    return app
