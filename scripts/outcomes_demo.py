"""Learning from outcomes, end to end, in a simulated world whose truth differs from the cohort's
(service/training/world.py says how). Prints how often answers contain the drop that truly works,
for held-out people of that world, before and after retraining from the recommendation log.

    python scripts/outcomes_demo.py [--cohort 20000] [--people 5000] [--held-out 3000] [--seed 1]

1. trains a champion on the simulated cohort alone (what heeldrop ships with);
2. simulated shops (two tenants) ask the API (in-process, through the app with their own keys)
   for each of --people people, who wear a drop near the answer and report its outcome after
   six weeks through POST /v1/outcomes;
3. `heeldrop retrain --from-db --data cohort.csv` learns from the logged outcomes;
4. both models answer --held-out new people of the world.
Everything lives in a temporary folder (models, SQLite database, cohort file).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from service.api.app import create_app
from service.core.recommend import Recommender
from service.db import engine_for, keys
from service.registry import Registry
from service.training import world
from service.training.cohort import write_cohort
from service.training.retrain import retrain


def demonstrate(folder: Path, cohort: int, people: int, held_out: int, seed: int) -> dict:
    """Run the demonstration in `folder`; its figures."""
    registry = Registry(folder / "models")
    write_cohort(folder / "cohort.csv", cohort, seed)
    retrain([folder / "cohort.csv"], "force", registry, seed=seed)
    champion = registry.load_champion()
    url = f"sqlite:///{folder}/heeldrop.db"
    app = create_app({"models_dir": folder / "models", "database_url": url,
                      "rate_limit": "1000000/minute", "SECRET_KEY": "demo"})  # fmt: skip
    engine = engine_for(url)
    shops = [
        {"Authorization": f"Bearer {keys.create(engine, name)}"} for name in ("north", "south")
    ]
    client = app.test_client()
    rng = np.random.default_rng(seed)
    requests, truth = world.people(people, seed + 1)
    reported = {"better": 0, "same": 0, "worse": 0}
    for i, (request, true_drop) in enumerate(zip(requests, truth, strict=True)):
        shop = shops[i % 2]
        answer = client.post("/v1/recommendations", json=request, headers=shop)
        if answer.status_code != 200:
            continue
        drop = world.worn(answer.json, rng)
        report = world.follow_up(request, answer.json["request_id"], drop, true_drop)
        if client.post("/v1/outcomes", json=report, headers=shop).status_code == 201:
            reported[report["outcome"]] += 1
    outcome = retrain([folder / "cohort.csv"], "auto", registry, seed=seed, log=engine)
    learned = registry.load_champion() if outcome.promoted else None
    engine.dispose()
    app.extensions["heeldrop.log"].engine.dispose()
    test_requests, test_truth = world.people(held_out, seed + 2)
    group = np.array([world.differs(r) for r in test_requests])
    figures = {"reported": reported, "promoted": outcome.promoted, "reasons": outcome.reasons,
               "trained_on": outcome.metadata["trained_on"],
               "sources": outcome.metadata["training_data"]["sources"],
               "real_row_weight": outcome.metadata["real_row_weight"]}  # fmt: skip
    for name, model in (("champion", champion), ("learned", learned or champion)):
        answers = np.array(Recommender(None, model).explain(test_requests), dtype=object)
        figures[name] = {
            "all": world.contains(list(answers), test_truth),
            "group": world.contains(list(answers[group]), test_truth[group]),
            "others": world.contains(list(answers[~group]), test_truth[~group]),
        }
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohort", type=int, default=20000, help="simulated cohort rows")
    parser.add_argument("--people", type=int, default=5000, help="people who report outcomes")
    parser.add_argument(
        "--held-out", type=int, default=3000, help="people the models are tested on"
    )
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="heeldrop-demo-") as folder:
        f = demonstrate(Path(folder), args.cohort, args.people, args.held_out, args.seed)
    verdict = "promoted" if f["promoted"] else "held back: " + "; ".join(f["reasons"])
    print(f"outcomes reported: {f['reported']}; retrained on {f['trained_on']} data "
          f"{f['sources']}, each real outcome weighted {f['real_row_weight']}")  # fmt: skip
    print(f"the retrained model was {verdict}")
    print(f"{args.held_out} held-out people of the world: share of answers whose range holds the "
          "drop that truly works")  # fmt: skip
    print(f"{'':24}{'all':>8}{'heel pain':>11}{'others':>9}")
    for name in ("champion", "learned"):
        row = f[name]
        print(f"{name + (' (cohort only)' if name == 'champion' else ' (outcomes)'):24}"
              f"{row['all']:8.3f}{row['group']:11.3f}{row['others']:9.3f}")  # fmt: skip
    print(f"({time.perf_counter() - started:.0f} s)", file=sys.stderr)
    return 0 if f["learned"]["all"] > f["champion"]["all"] else 1


if __name__ == "__main__":
    sys.exit(main())
