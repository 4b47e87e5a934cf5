"""Every answer fits the response schema the OpenAPI document publishes, and the document
describes every field, gives each body an example, and types what client generators need."""

import json

import pytest
from hypothesis import HealthCheck, given, settings

from service import __version__
from service.api import examples
from service.api.openapi import ADMIN_KEY, EXAMPLES, KEY, NULL, PUBLIC_ROUTES, REQUEST_GROUPS
from service.api.schemas import BatchResponseSchema, RecommendationResponseSchema
from service.core.fields import BY_PATH, FIELDS
from service.core.rules import rules_version
from service.core.schema import RequestSchema, load_request
from service.reference import describe
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


# --- the OpenAPI document ------------------------------------------------------------------


def _walk(node):
    """Every dict inside `node`, itself included."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


@pytest.fixture
def document(client):
    return client.get("/openapi.json").json


def test_every_request_field_has_its_words_and_unit_from_the_field_table(document):
    schemas = document["components"]["schemas"]
    seen = set()
    for cls, prefix in REQUEST_GROUPS.items():
        name = cls.__name__.removesuffix("Schema")
        for key, prop in schemas[name]["properties"].items():
            path = f"{prefix}.{key}" if prefix else key
            if path in BY_PATH:
                f = BY_PATH[path]
                seen.add(path)
                assert prop["description"] == describe(f), path
                assert f.about in prop["description"] and f.label in prop["description"]
                assert prop.get("x-unit") == f.unit, path
    assert seen == {f.path for f in FIELDS}
    assert describe(BY_PATH["footwear.current_drop_mm"]).startswith("Current drop (mm). ")


def test_every_property_of_every_schema_is_described(document):
    undescribed = [
        f"{name}.{key}"
        for name, schema in document["components"]["schemas"].items()
        for key, prop in schema.get("properties", {}).items()
        if not prop.get("description")
    ]
    assert undescribed == []


def test_every_body_has_one_example_that_fits_its_schema(document):
    schemas = document["components"]["schemas"]
    bodies = {
        ref.rsplit("/", 1)[1]
        for node in _walk(document["paths"])
        for ref in [node.get("$ref", "")]
        if ref.startswith("#/components/schemas/")
    }
    assert bodies >= {"RecommendationRequest", "RecommendationResponse", "BatchRequest",
                      "BatchResponse", "Error", "Outcome", "OutcomeReceipt", "Catalogue",
                      "ModelInfo", "Reload"}  # fmt: skip
    for name in bodies:
        assert "example" in schemas[name], name
    assert schemas["RecommendationRequest"]["example"] == examples.REQUEST
    load_request(examples.REQUEST)
    assert schemas["RecommendationResponse"]["example"] == examples.RESPONSE
    assert schemas["BatchItemError"]["example"] == examples.BATCH_ITEM_ERROR
    for schema, example in EXAMPLES.items():
        if schema is not RequestSchema:
            assert schema().validate(example) == {}, schema.__name__


def test_the_example_answer_is_what_the_rules_answer_to_the_example_request(rules_only):
    answer = rules_only.recommend(examples.REQUEST)
    given = examples.RESPONSE["recommendation"]
    assert {**answer["recommendation"], "confidence": 0} == {**given, "confidence": 0}
    firings = {r["id"]: r for r in answer["explanation"]["rules"]}
    for rule in examples.RESPONSE["explanation"]["rules"]:
        assert firings[rule["id"]] == rule
    assert answer["advice"] == examples.RESPONSE["advice"]


def test_the_example_catalogue_rule_is_the_catalogue_s(client, shop):
    served = {r["id"]: r for r in client.get("/v1/rules", headers=shop).json["rules"]}
    for rule in examples.CATALOGUE["rules"]:
        assert served[rule["id"]] == rule


def test_nullable_values_are_typed_for_client_generators(document):
    nodes = list(_walk(document))
    # apispec's own form puts an empty object first, which a generated client takes for the value
    assert {"type": "object", "nullable": True} not in nodes
    assert not [n for n in nodes if n.get("nullable") and None in n.get("enum", []) and "type" in n]
    referral = document["components"]["schemas"]["Recommendation"]["properties"]["referral"]
    assert referral["anyOf"] == [{"$ref": "#/components/schemas/Referral"}, NULL]


def test_a_batch_result_is_an_answer_or_an_item_error(document):
    schemas = document["components"]["schemas"]
    items = schemas["BatchResponse"]["properties"]["results"]["items"]
    assert items == {"oneOf": [{"$ref": "#/components/schemas/RecommendationResponse"},
                               {"$ref": "#/components/schemas/BatchItemError"}]}  # fmt: skip
    schema = BatchResponseSchema()
    assert schema.validate(examples.BATCH_RESPONSE) == {}
    assert "results" in schema.validate({"results": [{"index": 0}]})
    no_id = {k: v for k, v in examples.RESPONSE.items() if k != "request_id"}
    assert "results" in schema.validate({"results": [no_id]})


def test_the_error_shape_has_every_field_required_and_its_messages_typed(document):
    error = document["components"]["schemas"]["Error"]
    assert sorted(error["required"]) == ["code", "errors", "message", "status"]
    assert error["properties"]["errors"]["additionalProperties"] == {
        "type": "array", "items": {"type": "string"}
    }  # fmt: skip
    # the library's error schema, which some responses name, is documented as this one
    assert [n for n in document["components"]["schemas"] if n.startswith("Error")] == ["Error"]


def test_every_schema_is_used_and_the_version_names_the_rules(document):
    text = json.dumps({k: v for k, v in document.items() if k != "components"})
    text += json.dumps(document["components"].get("responses", {}))
    schemas = document["components"]["schemas"]
    reached = {n for n in schemas if f'"#/components/schemas/{n}"' in text}
    while True:
        more = {n for n in schemas if f'"#/components/schemas/{n}"' in json.dumps(
            [schemas[r] for r in reached])} - reached  # fmt: skip
        if not more:
            break
        reached |= more
    assert set(schemas) == reached
    assert "PaginationMetadata" not in schemas
    assert document["info"]["version"] == f"{__version__}+rules.{rules_version()}"


def test_each_operation_names_the_key_it_needs(document, client):
    page = client.get("/docs").get_data(as_text=True)
    for path, ops in document["paths"].items():
        for op in ops.values():
            if path in PUBLIC_ROUTES:
                assert op["security"] == [], path
            elif path.startswith("/admin"):
                assert op["security"] == [{ADMIN_KEY: []}], path
                assert "403" in op["responses"]
            else:
                assert op["security"] == [{KEY: []}], path
    assert set(document["components"]["securitySchemes"]) == {KEY, ADMIN_KEY}
    reload_section = page.split("<code>/admin/reload</code>", 1)[1]
    assert reload_section.split("<p>")[2].startswith("Needs an admin key.")
    rules_section = page.split("<code>/v1/rules</code>", 1)[1]
    assert rules_section.split("<p>")[2].startswith("Needs a key.")
