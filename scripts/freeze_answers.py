"""Freeze today's answers for simulated people: the fixture tests/core/frozen/ holds.

Writes, into the folder given (default tests/core/frozen):
- `serving.json`: a model's served parameters, trained here on a separate simulated cohort, so the
  fixture does not depend on how training behaves later;
- `answers.parquet`: --rows simulated requests (typed columns `request.<field path>`) and, for
  each, the answer with that model and with the rules alone (JSON without the request id and the
  rules' static name and rationale), and the unrounded floats behind them: the band
  probabilities, the confidence and the four top factors' contributions.

The frozen-answers test checks the recommender still gives these answers (decisions exactly,
floats to 1e-9). Run this again only when the answers are meant to change, and read the diff.
With --keep-model the folder's `serving.json` is kept and only the answers are frozen again, so
a change to the rules' wording moves the texts and nothing else (training may have changed since).

    python scripts/freeze_answers.py [--rows 20000] [--seed 20261207] [-o tests/core/frozen]
                                     [--keep-model]
"""

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from service.core.columns import from_requests, nest
from service.core.model import LinearSoftmax, ServingModel
from service.core.recommend import Recommender
from service.core.rules import load_rules
from service.training.cohort import requests_table, write_cohort
from service.training.data import read_labelled
from service.training.estimator import served
from service.training.fit import fit


def strip(response: dict[str, Any]) -> dict[str, Any]:
    """A response without its request id and the rules' static name and rationale."""
    response = {k: v for k, v in response.items() if k != "request_id"}
    for firing in response["explanation"]["rules"]:
        del firing["name"], firing["rationale"]
    return response


def floats(values: np.ndarray) -> pa.Array:
    if values.ndim == 1:
        return pa.array(values, pa.float64())
    return pa.FixedSizeListArray.from_arrays(
        pa.array(values.ravel(), pa.float64()), values.shape[1]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=20261207)
    parser.add_argument("-o", "--output", type=Path, default=Path("tests/core/frozen"))
    parser.add_argument("--keep-model", action="store_true",
                        help="keep the folder's serving.json; freeze the answers only")  # fmt: skip
    args = parser.parse_args()
    out = args.output
    out.mkdir(parents=True, exist_ok=True)
    if args.keep_model:
        params = json.loads((out / "serving.json").read_text(encoding="utf-8"))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            train = Path(tmp) / "train.csv"
            write_cohort(train, 20_000, seed=args.seed + 1)
            estimator, _ = fit(read_labelled([train]), 0, load_rules())
        params = served(estimator).to_json()
        (out / "serving.json").write_text(json.dumps(params, indent=1) + "\n", encoding="utf-8")
    model = ServingModel("frozen", {}, LinearSoftmax.from_json(params), out)
    cohort = requests_table(args.rows, args.seed)
    people = [nest(record) for record in cohort.to_pylist()]
    arrays: dict[str, Any] = {f"request.{n}": cohort[n] for n in cohort.column_names}
    for mode, chosen in (("model", model), ("rules", None)):
        recommender = Recommender(model=chosen)
        answers = recommender.explain(people, ["frozen"] * len(people))
        arrays[f"{mode}_answer"] = pa.array([json.dumps(strip(a), sort_keys=True) for a in answers])
        d = recommender.decide(from_requests(people), factors=True)
        arrays[f"{mode}_confidence"] = floats(d.confidence)
        if d.probs is not None and d.factors is not None:
            arrays["model_probs"] = floats(d.probs)
            order = np.argsort(-np.abs(d.factors), axis=1, kind="stable")[:, :4]
            arrays["model_factors"] = floats(np.take_along_axis(d.factors, order, axis=1))
    pq.write_table(
        pa.table(arrays), out / "answers.parquet", compression="zstd", compression_level=19,
        data_page_size=1 << 24,
        use_byte_stream_split=["model_confidence", "rules_confidence", "model_probs",
                               "model_factors"],
    )  # fmt: skip
    print(f"froze {len(people)} answers, with the model and with the rules alone, in {out}")


if __name__ == "__main__":
    main()
