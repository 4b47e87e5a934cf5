"""POST /admin/reload: load the registry's champion, refusing one that fails its checks."""

from typing import Any

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint, abort

from service.api.schemas import ErrorSchema, ReloadSchema
from service.core.errors import ModelRefused

blp = Blueprint("admin", __name__, url_prefix="/admin", description="Operations (admin keys)")


@blp.route("/reload")
class Reload(MethodView):
    @blp.response(200, ReloadSchema)
    @blp.alt_response(
        409, schema=ErrorSchema, description="the champion failed its checks; the old one serves on"
    )
    def post(self) -> dict[str, Any]:
        """Load the registry's champion now; 409 and no change if it fails its checks"""
        serving = current_app.extensions["heeldrop"]
        previous = serving.recommender.model
        try:
            version = serving.reload()
        except ModelRefused as exc:
            abort(409, message=str(exc))
        g.model_version = version
        return {
            "version": version,
            "previous": previous.version if previous else None,
            "all_workers": serving.restart_siblings(),
        }
