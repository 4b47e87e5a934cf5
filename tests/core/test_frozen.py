"""The recommender gives the answers frozen in tests/core/frozen (scripts/freeze_answers.py):
20,000 simulated people, with a fixed model and with the rules alone; decisions exactly, floats
to 1e-9."""

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest

from service.core.columns import from_requests, nest
from service.core.model import LinearSoftmax, ServingModel
from service.core.recommend import Recommender

FROZEN = Path(__file__).parent / "frozen"
TOLERANCE = 1e-9
ROUNDED = 1e-4 + TOLERANCE  # answers round their floats to 4 places: a tie may round either way


@pytest.fixture(scope="module")
def frozen():
    table = pq.read_table(FROZEN / "answers.parquet")
    fields = [name for name in table.column_names if name.startswith("request.")]
    records = table.select(fields).rename_columns([f[len("request.") :] for f in fields])
    requests = [nest(record) for record in records.to_pylist()]
    params = json.loads((FROZEN / "serving.json").read_text(encoding="utf-8"))
    model = ServingModel("frozen", {}, LinearSoftmax.from_json(params), FROZEN)
    return table, requests, model


def _strip(response: dict[str, Any]) -> dict[str, Any]:
    """As the fixture stores an answer: no request id, no rule names or rationales."""
    response = {k: v for k, v in response.items() if k != "request_id"}
    for firing in response["explanation"]["rules"]:
        del firing["name"], firing["rationale"]
    return response


def _differences(got: Any, want: Any, path: str = "") -> list[str]:
    """Where two answers differ: anything but a float exactly, floats beyond rounding."""
    if isinstance(want, float) and isinstance(got, float):
        return [] if math.isclose(got, want, rel_tol=0, abs_tol=ROUNDED) else [f"{path}: {got}"]
    if isinstance(want, dict) and isinstance(got, dict) and got.keys() == want.keys():
        return [d for k in want for d in _differences(got[k], want[k], f"{path}.{k}")]
    if isinstance(want, list) and isinstance(got, list) and len(got) == len(want):
        return [
            d
            for k, (g, w) in enumerate(zip(got, want, strict=True))
            for d in _differences(g, w, f"{path}[{k}]")
        ]
    return [] if got == want else [f"{path}: {got!r} != {want!r}"]


@pytest.mark.parametrize("mode", ["model", "rules"])
def test_every_frozen_answer_is_given_again(frozen, mode):
    table, requests, model = frozen
    recommender = Recommender(model=model if mode == "model" else None)
    answers = recommender.explain(requests, ["frozen"] * len(requests))
    wrong = {}
    for k, (answer, text) in enumerate(
        zip(answers, table[f"{mode}_answer"].to_pylist(), strict=True)
    ):
        differences = _differences(_strip(answer), json.loads(text))
        if differences:
            wrong[k] = differences[:3]
    assert not wrong, f"{len(wrong)} answers differ, e.g. {list(wrong.items())[:3]}"


@pytest.mark.parametrize("mode", ["model", "rules"])
def test_the_frozen_floats_are_reproduced_to_1e_9(frozen, mode):
    table, requests, model = frozen
    recommender = Recommender(model=model if mode == "model" else None)
    d = recommender.decide(from_requests(requests), factors=True)
    frozen_confidence = table[f"{mode}_confidence"].to_numpy()
    np.testing.assert_allclose(d.confidence, frozen_confidence, rtol=0, atol=TOLERANCE)
    if mode == "model":
        probs = np.array(table["model_probs"].to_pylist())
        np.testing.assert_allclose(d.probs, probs, rtol=0, atol=TOLERANCE)
        order = np.argsort(-np.abs(d.factors), axis=1, kind="stable")[:, :4]
        top = np.take_along_axis(d.factors, order, axis=1)
        frozen_top = np.array(table["model_factors"].to_pylist())
        np.testing.assert_allclose(top, frozen_top, rtol=0, atol=TOLERANCE)
