"""GET /v1/rules: the rule catalogue in force, for a clinic to review."""

from typing import Any

from flask import current_app
from flask.views import MethodView
from flask_smorest import Blueprint

from service.api.schemas import CatalogueSchema

blp = Blueprint("rules", __name__, url_prefix="/v1/rules", description="The rule catalogue")


@blp.route("")
class Rules(MethodView):
    @blp.response(200, CatalogueSchema)
    def get(self) -> dict[str, Any]:
        """The rules in force: what each does and says, its evidence grade and sources"""
        serving = current_app.extensions["heeldrop"]
        return {
            "version": serving.rules_version,
            "rules": [
                {
                    "id": rule.id,
                    "name": rule.name,
                    "stage": rule.stage,
                    "effect": rule.catalogue_effect,
                    "message": rule.message,
                    "grade": rule.grade,
                    "sources": list(rule.sources),
                    "rationale": rule.rationale,
                }
                for rule in sorted(serving.rules, key=lambda rule: rule.id)
            ],
        }
