"""POST /v1/outcomes: what happened after a recommendation, from the tenant that got it."""

from typing import Any

from flask import current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from flask_smorest.error_handler import ErrorSchema

from service.api.metrics import count_outcome
from service.api.recommendations import JsonParser
from service.api.schemas import OutcomeReceiptSchema, OutcomeSchema
from service.db.log import DuplicateOutcome, UnknownRequest

blp = Blueprint(
    "outcomes", __name__, url_prefix="/v1/outcomes",
    description="Follow-ups: how a recommendation worked out",
)  # fmt: skip
blp.ARGUMENTS_PARSER = JsonParser()
UNKNOWN = "no recommendation with this request_id was given to your keys"


@blp.route("")
class Outcomes(MethodView):
    init_every_request = False

    @blp.arguments(OutcomeSchema())
    @blp.response(201, OutcomeReceiptSchema)
    @blp.alt_response(404, schema=ErrorSchema, description=UNKNOWN)
    @blp.alt_response(409, schema=ErrorSchema, description="these weeks worn are already reported")
    def post(self, report: dict[str, Any]) -> Any:
        """Report how a recommendation worked out, weeks later; once per weeks worn"""
        log = current_app.extensions["heeldrop.log"]
        try:
            receipt = log.record_outcome(g.tenant, report)
        except UnknownRequest:
            abort(404, message=UNKNOWN)
        except DuplicateOutcome:
            abort(409, message=f"an outcome after {report['weeks_worn']} weeks is already "
                               "recorded for this recommendation")  # fmt: skip
        count_outcome(report["outcome"])
        return receipt
