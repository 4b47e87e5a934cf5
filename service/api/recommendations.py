"""POST /v1/recommendations and /v1/recommendations/batch."""

from typing import Any

import orjson
from flask import Request, current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint, abort
from marshmallow import Schema
from webargs.flaskparser import FlaskParser

from service.api.metrics import count_answers
from service.api.schemas import (
    BatchRequestSchema,
    BatchResponseSchema,
    RecommendationResponseSchema,
)
from service.core.errors import InvalidInput
from service.core.schema import load_request, request_schema

blp = Blueprint(
    "recommendations", __name__, url_prefix="/v1/recommendations",
    description="Heel-drop recommendations with their reasoning",
)  # fmt: skip


class JsonParser(FlaskParser):
    """webargs' parser, decoding the JSON body with orjson (a tenth of json.loads' time); what
    orjson refuses goes through webargs' own decoding, which words the error, and a body that
    decoding cannot handle (nested too deep, an integer of thousands of digits) is a 400 like
    any malformed JSON, not a 500."""

    def load_json(self, req: Request, schema: Schema) -> Any:
        try:
            return orjson.loads(req.get_data(cache=True))
        except orjson.JSONDecodeError:
            pass
        try:
            return super().load_json(req, schema)
        except (RecursionError, ValueError):
            abort(400, message="The request body is not valid JSON.")


blp.ARGUMENTS_PARSER = JsonParser()  # before the views below are decorated with it


batch_request_schema = BatchRequestSchema()  # instances: webargs would rebuild a class per call


def answer(requests: list[dict[str, Any]], ids: list[str], tenant: str) -> list[dict[str, Any]]:
    """Answer validated requests for `tenant` and log the answers before they go out: an answer
    the log did not take is not given (503), since its outcome could never be used. The API and
    the fitter's page both answer through here."""
    recommender = current_app.extensions["heeldrop"].recommender
    g.model_version = recommender.model.version if recommender.model else None
    responses = recommender.explain(requests, ids)
    current_app.extensions["heeldrop.log"].write(tenant, requests, responses)
    g.logged = True
    count_answers(responses)
    return responses


@blp.route("")
class Recommendations(MethodView):
    init_every_request = False  # no state: one instance serves every request

    @blp.arguments(request_schema)
    @blp.response(200, RecommendationResponseSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Recommend a heel-drop range for one person, with its reasoning"""
        return current_app.json.response(answer([data], [g.answer_id], g.tenant)[0])


@blp.route("/batch")
class RecommendationsBatch(MethodView):
    init_every_request = False  # no state: one instance serves every request

    @blp.arguments(batch_request_schema)
    @blp.response(200, BatchResponseSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Recommend for up to 1000 people; an invalid item gets an error in its place"""
        results: list[Any] = [None] * len(data["items"])
        valid, ids = [], []
        for index, item in enumerate(data["items"]):
            try:
                valid.append((index, load_request(item)))
                ids.append(f"{g.answer_id}-{index}")
            except InvalidInput as exc:
                error = {"code": 422, "status": "Unprocessable Entity", "message": str(exc),
                         "errors": exc.errors}  # fmt: skip
                results[index] = {"index": index, "error": error}
        if valid:
            answers = answer([req for _, req in valid], ids, g.tenant)
            for (index, _), given in zip(valid, answers, strict=True):
                results[index] = given
        g.items = len(results)
        return current_app.json.response({"results": results})
