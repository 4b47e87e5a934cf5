"""POST /v1/recommendations and /v1/recommendations/batch."""

import json
from typing import Any

import orjson
from flask import Request, current_app, g
from flask.views import MethodView
from flask_smorest import Blueprint
from marshmallow import Schema, fields, validate
from webargs.core import _UNKNOWN_DEFAULT_PARAM
from webargs.flaskparser import FlaskParser

from service.api.metrics import count_answers
from service.core.errors import InvalidInput
from service.core.schema import (
    Declined,
    QuickLoad,
    RecommendationResponseSchema,
    load_request,
    request_schema,
)

blp = Blueprint(
    "recommendations", __name__, url_prefix="/v1/recommendations",
    description="Heel-drop recommendations with their reasoning",
)  # fmt: skip
MAX_ITEMS = 1000


class JsonParser(FlaskParser):
    """webargs' parser, with two changes.

    - A JSON body for a QuickLoad schema (the recommendation request) is decoded by orjson and
      loaded by the schema's quick check: ~3 us where webargs' steps and json.loads took ~20 us
      in a request. Whatever orjson refuses (NaN, integers past 64 bits, lone surrogates, ...)
      or the check declines goes through webargs as before, which decides and words the error;
      tests/test_api.py checks both paths give the same result.
    - Bodies json.loads refuses otherwise (too deep, over-long integers) are answered 400 like
      any other malformed JSON instead of escaping as a 500.
    """

    def parse(
        self, argmap: Any, req: Request | None = None, *, location: str | None = None,
        unknown: str | None = _UNKNOWN_DEFAULT_PARAM, validate: Any = None, **kwargs: Any,
    ) -> Any:  # fmt: skip
        body = req if req is not None else self.get_default_request()
        if (
            isinstance(argmap, QuickLoad) and location == "json" and validate is None
            and unknown in (_UNKNOWN_DEFAULT_PARAM, None) and body.is_json
        ):  # fmt: skip
            try:
                return argmap.quick(orjson.loads(body.get_data(cache=True)))
            except (orjson.JSONDecodeError, Declined):
                pass
        return super().parse(
            argmap, req, location=location, unknown=unknown, validate=validate, **kwargs
        )

    def _raw_load_json(self, req: Request) -> Any:
        try:
            return super()._raw_load_json(req)
        except json.JSONDecodeError:
            raise
        except (RecursionError, ValueError) as exc:
            raise json.JSONDecodeError(type(exc).__name__, "-", 0) from None


blp.ARGUMENTS_PARSER = JsonParser()  # before the views below are decorated with it


class BatchRequestSchema(Schema):
    items = fields.List(
        fields.Raw(allow_none=True, metadata={"description": "a recommendation request"}),
        required=True, validate=validate.Length(1, MAX_ITEMS),
    )  # fmt: skip


batch_request_schema = BatchRequestSchema()  # instances: webargs would rebuild a class per call


class BatchItemErrorSchema(Schema):
    index = fields.Integer(required=True)
    error = fields.Dict(required=True)


class BatchResponseSchema(Schema):
    results = fields.List(fields.Raw(), required=True, metadata={
        "description": "per item, in order: a recommendation, or {index, error} for an invalid item"
    })  # fmt: skip


def _answer(requests: list[dict[str, Any]], ids: list[str]) -> list[dict[str, Any]]:
    recommender = current_app.extensions["heeldrop"].recommender
    g.model_version = recommender.model.version if recommender.model else None
    responses = recommender.explain(requests, ids)
    count_answers(responses)
    return responses


@blp.route("")
class Recommendations(MethodView):
    init_every_request = False  # no state: one instance serves every request

    @blp.arguments(request_schema)
    @blp.response(200, RecommendationResponseSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Recommend a heel-drop range for one person, with its reasoning"""
        return current_app.json.response(_answer([data], [g.request_id])[0])


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
                ids.append(f"{g.request_id}-{index}")
            except InvalidInput as exc:
                error = {"code": 422, "status": "Unprocessable Entity", "message": str(exc),
                         "errors": exc.errors}  # fmt: skip
                results[index] = {"index": index, "error": error}
        if valid:
            answers = _answer([req for _, req in valid], ids)
            for (index, _), answer in zip(valid, answers, strict=True):
                results[index] = answer
        g.items = len(results)
        return current_app.json.response({"results": results})
