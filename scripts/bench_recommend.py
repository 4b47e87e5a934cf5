"""Where the recommendation path's time goes in-process, as ratios to baselines of the same run.

One request: median and p99 of the whole path and of its steps (validation, features, model,
factors, rules, explanation), against marshmallow's own validation of the request schema
(`Schema.load`, what every refused request still costs; serving runs the schema's quick check in
front of it). 100k requests through the vectorised path against a bare scikit-learn
`predict_proba` on the same preprocessed array. Uses the registry's champion
(HEELDROP_MODELS_DIR), training one if none. The service's speed goals are measured by
scripts/bench_api.sh and scripts/bench_batch.py; this one says where to look.

    python scripts/bench_recommend.py [--rows 100000] [--repeat 2000]
"""

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from marshmallow import Schema

from service.config import Config
from service.core.columns import from_requests
from service.core.combine import decide
from service.core.errors import ModelRefused
from service.core.explain import render
from service.core.features import features
from service.core.recommend import Recommender
from service.core.schema import load_request, request_schema
from service.core.validate import check_frame
from service.registry import Registry, load_estimator
from service.training.cohort import simulate, write_cohort
from service.training.retrain import retrain

REQUEST = {
    "client_ref": "bench-1",
    "person": {"age_years": 44, "body_mass_kg": 78, "sex": "female"},
    "footwear": {
        "current_drop_mm": 0,
        "heel_insert_mm": 0,
        "current_type": "road_running",
        "weeks_in_current_drop": 10,
        "previous_drop_mm": 10,
        "years_in_heeled_shoes": 25,
    },
    "activity": {"primary": "running", "running_km_per_week": 30, "running_years": 4},
    "symptoms": {
        "calf_tightness": 5,
        "achilles_pain": 2,
        "anterior_ankle_pinch": 1,
        "started_after_shoe_change": True,
    },
    "history": {"ankle_sprains_past_2_years": 1, "can_walk_four_steps": True},
    "mobility": {
        "knee_to_wall_cm": {"left": 8.5, "right": 10.5},
        "measured_in": "barefoot",
        "restriction_felt": "back",
    },
}


def timed(fn: Callable[[], Any], repeat: int) -> list[float]:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def ms(samples: list[float], q: float = 0.5) -> float:
    return float(np.quantile(samples, q) * 1e3)


def champion(config: Config) -> Any:
    registry = Registry(config.models_dir)
    try:
        model = registry.load_champion()
    except ModelRefused:  # one this code cannot serve (trained on other inputs): train anew
        model = None
    if model is None:
        tmp = Path(tempfile.mkdtemp())
        write_cohort(tmp / "cohort.csv", 20_000, seed=1)
        registry = Registry(tmp)
        retrain([tmp / "cohort.csv"], "force", registry, config.cases_path, seed=1)
        model = registry.load_champion()
    return model


def one_request(rec: Recommender, repeat: int) -> None:
    model, book = rec.model, rec.book
    assert model is not None
    req = load_request(REQUEST)
    cols = from_requests([req])
    ctx, X = features(cols)
    probs = model.predict_proba(X)
    d = rec.decide(cols, factors=True)

    def marshmallow() -> Any:
        return Schema.load(request_schema, REQUEST)  # past the quick check

    stages = {
        "validation (marshmallow)": marshmallow,
        "validation (quick check)": lambda: load_request(REQUEST),
        "features": lambda: features(from_requests([req])),
        "model": lambda: model.predict_proba(X),
        "factors": lambda: model.fast.attributions(X, probs),
        "rules": lambda: decide(dict(ctx), book, probs),
        "explanation": lambda: render(d, model),
    }
    for fn in [*stages.values(), lambda: rec.recommend(REQUEST)]:
        timed(fn, 200)  # warm up
    parts = {name: timed(fn, repeat) for name, fn in stages.items()}
    # The ratio's two sides alternate, so a slow spell of a shared machine hits both alike.
    paired = [timed(marshmallow, 1) + timed(lambda: rec.recommend(REQUEST), 1)
              for _ in range(repeat)]  # fmt: skip
    parts["validation (marshmallow)"] = [v for v, _ in paired]
    whole = [w for _, w in paired]
    base = statistics.median(parts["validation (marshmallow)"])
    print(f"one request ({repeat} runs)        median     p99   x marshmallow validation")
    for name, samples in parts.items():
        print(
            f"  {name:<28}{ms(samples):7.3f} ms {ms(samples, 0.99):7.3f} ms"
            f"   {statistics.median(samples) / base:5.2f}"
        )
    print(
        f"  {'whole request':<28}{ms(whole):7.3f} ms {ms(whole, 0.99):7.3f} ms"
        f"   {statistics.median(whole) / base:5.2f}"
    )


def many_rows(rec: Recommender, rows: int) -> None:
    model = rec.model
    assert model is not None
    frame = simulate(rows, seed=2).drop(columns=["outcome_band", "outcome_drop_mm"])
    text = frame.astype("string").fillna("")
    cols = check_frame(text).columns
    X = features(cols)[1]
    estimator = load_estimator(model.folder)
    runs = [timed(lambda: estimator.predict_proba(X), 1) + timed(lambda: rec.decide(cols), 1)
            for _ in range(5)]  # alternating, like the single request  # fmt: skip
    bare, ours = min(b for b, _ in runs), min(o for _, o in runs)
    checked = min(timed(lambda: rec.decide(check_frame(text).columns), 1))
    print(f"\n{rows:,} requests, vectorised (best of 5)")
    print(f"  bare scikit-learn predict_proba     {bare:7.3f} s   1.00")
    print(f"  features + model + rules + combine  {ours:7.3f} s   {ours / bare:5.2f}")
    print(f"  ... plus columnar validation        {checked:7.3f} s   {checked / bare:5.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=2000)
    args = parser.parse_args()
    rec = Recommender(model=champion(Config()))
    one_request(rec, args.repeat)
    many_rows(rec, args.rows)


if __name__ == "__main__":
    main()
