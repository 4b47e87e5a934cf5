"""Every answer fits the response schema the OpenAPI document publishes."""

import json

from hypothesis import HealthCheck, given, settings

from service.api.schemas import RecommendationResponseSchema
from tests.strategies import requests

BASE = {"footwear": {"current_drop_mm": 8}}
SETTINGS = settings(
    max_examples=100, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)


@SETTINGS
@given(request=requests())
def test_every_rules_only_response_fits_the_response_schema(rules_only, request):
    response = rules_only.recommend(request)
    assert RecommendationResponseSchema().validate(response) == {}
    assert response["client_ref"] == request.get("client_ref")
    assert json.loads(json.dumps(response, allow_nan=False)) == response


@SETTINGS
@given(request=requests())
def test_every_model_response_fits_the_response_schema(recommender, request):
    response = recommender.recommend(request)
    assert RecommendationResponseSchema().validate(response) == {}
    assert response["client_ref"] == request.get("client_ref")
    assert json.loads(json.dumps(response, allow_nan=False)) == response


def test_the_response_schema_rejects_a_response_missing_its_recommendation(rules_only):
    response = rules_only.recommend(BASE)
    del response["recommendation"]
    assert "recommendation" in RecommendationResponseSchema().validate(response)
