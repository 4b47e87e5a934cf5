"""GET /v1/model: what model is serving, and how it was made."""

from typing import Any

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api.schemas import ModelInfoSchema
from service.core.explain import trained_on

blp = Blueprint("model", __name__, url_prefix="/v1/model", description="The serving model")


@blp.route("")
class Model(MethodView):
    @blp.response(200, ModelInfoSchema)
    def get(self) -> dict[str, Any]:
        """The serving model: version, training date, metrics, library and data provenance"""
        model = current_app.extensions["heeldrop"].recommender.model
        meta = model.metadata if model else {}
        g.model_version = model.version if model else None
        metrics = {k: v for k, v in meta.get("metrics", {}).items() if k != "confusion_matrix"}
        return {
            "version": meta.get("version"),
            "trained_at": meta.get("trained_at"),
            "family": meta.get("family"),
            "metrics": metrics,
            "scikit_learn_version": meta.get("versions", {}).get("scikit-learn"),
            "training_data_digest": meta.get("training_data", {}).get("digest"),
            "training_data_origin": meta.get("training_data", {}).get("origin"),
            "trained_on": trained_on(model),
            "training_rows": meta.get("training_data", {}).get("sources", {}),
            "degraded": model is None,
        }
