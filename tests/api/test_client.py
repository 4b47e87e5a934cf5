"""A client generated from /openapi.json by openapi-python-client works: it parses a referral with
its urgency, a batch's item error as an item error, and a 422 as the typed error shape.

The client is generated once per module, offline (no post hooks), into a temporary package, and
driven over httpx's WSGI transport against the app itself: no server, no network.
"""

import importlib
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import httpx
import pytest

PACKAGE = "heeldrop_generated_client"
CONFIG = "post_hooks: []\n"  # no formatter run: offline, and nothing the test needs
REFERRED = {
    "footwear": {"current_drop_mm": 8},
    "symptoms": {"calf_swelling_one_side": True},
}
VALID = {"footwear": {"current_drop_mm": 10}, "symptoms": {"knee_pain": 4}}
OUT_OF_RANGE = {"footwear": {"current_drop_mm": 40}}


def generator() -> str:
    exe = Path(sys.executable).with_name("openapi-python-client")
    if not exe.is_file():
        pytest.skip("openapi-python-client is not installed (requirements-dev.lock has it)")
    return str(exe)


@pytest.fixture(scope="module")
def generated(registry, tmp_path_factory) -> ModuleType:
    from service.api.app import create_app

    root = tmp_path_factory.mktemp("client")
    app = create_app({"models_dir": registry.root.parent, "SECRET_KEY": "test-only-secret",
                      "database_url": f"sqlite:///{root}/heeldrop.db"})  # fmt: skip
    document = app.test_client().get("/openapi.json").get_json()
    app.extensions["heeldrop.log"].engine.dispose()
    (root / "openapi.json").write_text(json.dumps(document), encoding="utf-8")
    (root / "config.yaml").write_text(CONFIG, encoding="utf-8")
    run = subprocess.run(
        [generator(), "generate", "--path", "openapi.json", "--output-path", PACKAGE,
         "--meta", "none", "--config", "config.yaml", "--fail-on-warning"],
        cwd=root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    sys.path.insert(0, str(root))
    yield importlib.import_module(PACKAGE)
    sys.path.remove(str(root))
    for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def part(generated: ModuleType, name: str) -> ModuleType:
    return importlib.import_module(f"{generated.__name__}.{name}")


@pytest.fixture
def api_client(generated, app, shop_key):
    transport = httpx.WSGITransport(app=app)
    client = generated.AuthenticatedClient(
        base_url="http://heeldrop.test", token=shop_key, httpx_args={"transport": transport}
    )
    with client as open_client:
        yield open_client


def test_a_referral_parses_with_its_urgency(generated, api_client):
    models = part(generated, "models")
    post = part(generated, "api.recommendations.post_v1_recommendations")
    body = models.RecommendationRequest.from_dict(REFERRED)
    response = post.sync_detailed(client=api_client, body=body)
    answer = response.parsed
    assert isinstance(answer, models.RecommendationResponse), response.content
    referral = answer.recommendation.referral
    assert isinstance(referral, models.Referral)
    assert referral.urgency == models.ReferralUrgency.TODAY
    assert referral.reasons and all(isinstance(r, str) for r in referral.reasons)
    assert answer.recommendation.refer_to_clinician is True
    # `min` and `max` are Python names `min_` and `max_`, and go back to JSON as min and max
    sent = json.loads(response.content)["recommendation"]
    drop = answer.recommendation.drop_mm
    assert (drop.min_, drop.max_) == (sent["drop_mm"]["min"], sent["drop_mm"]["max"])
    assert answer.to_dict()["recommendation"] == sent


def test_an_answer_without_a_referral_parses_it_as_none(generated, api_client):
    models = part(generated, "models")
    post = part(generated, "api.recommendations.post_v1_recommendations")
    answer = post.sync(client=api_client, body=models.RecommendationRequest.from_dict(VALID))
    assert isinstance(answer, models.RecommendationResponse)
    assert answer.recommendation.referral is None
    assert answer.recommendation.refer_to_clinician is False


def test_a_batch_gives_a_typed_item_error_in_place_of_the_bad_item(generated, api_client):
    models = part(generated, "models")
    post = part(generated, "api.recommendations.post_v1_recommendations_batch")
    body = models.BatchRequest(items=[VALID, OUT_OF_RANGE, REFERRED])
    answer = post.sync(client=api_client, body=body)
    assert isinstance(answer, models.BatchResponse)
    first, bad, last = answer.results
    assert isinstance(first, models.RecommendationResponse)
    assert isinstance(last, models.RecommendationResponse)
    assert last.recommendation.referral.urgency == models.ReferralUrgency.TODAY
    assert isinstance(bad, models.BatchItemError)
    assert bad.index == 1
    assert bad.error.code == 422
    assert list(bad.error.errors.additional_properties) == ["footwear.current_drop_mm"]


def test_a_422_is_the_typed_error_with_its_field_messages(generated, api_client):
    models = part(generated, "models")
    post = part(generated, "api.recommendations.post_v1_recommendations")
    response = post.sync_detailed(
        client=api_client, body=models.RecommendationRequest.from_dict(OUT_OF_RANGE)
    )
    assert response.status_code == 422
    error = response.parsed
    assert isinstance(error, models.Error)
    assert (error.code, error.status) == (422, "Unprocessable Entity")
    messages = error.errors.additional_properties
    assert set(messages) == {"footwear.current_drop_mm"}
    assert all(isinstance(m, str) for m in messages["footwear.current_drop_mm"])
