"""Liveness, readiness and metrics: public, unauthenticated, not rate limited."""

from flask import Blueprint, Response, current_app, jsonify

from service.api import metrics as prom
from service.db import Unavailable, ping

blp = Blueprint("health", __name__)


@blp.get("/livez")
def livez() -> Response:
    return jsonify(status="ok")


@blp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when the model and rules are loaded and the database answers; 503 with the reason
    otherwise, so a load balancer stops sending what would fail."""
    serving = current_app.extensions["heeldrop"]
    model = serving.recommender.model
    if serving.not_ready or model is None:
        return jsonify(code=503, status="Service Unavailable", message=serving.not_ready,
                       errors={}), 503  # fmt: skip
    try:
        ping(current_app.extensions["heeldrop.log"].engine)
    except Unavailable as exc:
        message = f"the database does not answer ({exc}); recommendations cannot be logged"
        return jsonify(code=503, status="Service Unavailable", message=message, errors={}), 503
    return jsonify(status="ready", model_version=model.version, rules=len(serving.rules)), 200


@blp.get("/metrics")
def metrics() -> Response | tuple[Response, int]:
    serving = current_app.extensions["heeldrop"]
    model = serving.recommender.model
    prom.show_model(model.version if model else "none")
    try:
        body, content_type = prom.render()
    except prom.FilesChanging:  # workers kept starting or exiting while their files were read
        message = "the workers' metrics changed while being read; try again"
        return jsonify(code=503, status="Service Unavailable", message=message, errors={}), 503
    return Response(body, content_type=content_type)
