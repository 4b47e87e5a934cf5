"""Instructions per call of one request, counted by valgrind's callgrind: a repeatable ratio.

Wall-clock ratios on a small shared machine swing with whatever else runs; instruction counts
do not. Counts schema validation alone (marshmallow's own `Schema.load`, the baseline, and the
schema's quick check that serving runs in front of it) and the whole request
(`Recommender.recommend`) each at 0 and N calls in fresh processes, so start-up cancels out, and
prints the ratios to marshmallow's validation (goal: at most 2x, as for
scripts/bench_recommend.py). Needs valgrind (`apt-get install -y valgrind`); takes a
couple of minutes. Uses the registry's champion (HEELDROP_MODELS_DIR), training one if none.

    python scripts/bench_instructions.py [--calls 1000]
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys
from service.recommend import Recommender
from service.registry import Registry
from marshmallow import Schema
from service.schemas import load_request, request_schema
request = json.loads({request!r})
rec = Recommender(model=Registry({models!r}).load({version!r}))
steps = {{
    "marshmallow": lambda r: Schema.load(request_schema, r),
    "quick check": load_request,
    "whole request": rec.recommend,
}}
call = steps[sys.argv[1]]
for _ in range(50 + int(sys.argv[2])):
    call(request)
"""


def instructions(code: str, step: str, calls: int) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null",
         sys.executable, "-c", code, step, str(calls)],
        capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    found = re.search(r"Collected : (\d+)", out.stderr)
    if not found:
        raise SystemExit(f"no count from callgrind:\n{out.stderr[-2000:]}")
    return int(found.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=1000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_recommend import REQUEST, champion

    from service.config import Config

    model = champion(Config())
    models = str(model.folder.parent.parent)  # <models>/registry/<version>
    code = CHILD.format(request=json.dumps(REQUEST), models=models, version=model.version)
    per_call = {}
    for step in ("marshmallow", "quick check", "whole request"):
        base = instructions(code, step, 0)
        per_call[step] = (instructions(code, step, args.calls) - base) / args.calls
    print(f"instructions per call (callgrind, {args.calls} calls, start-up subtracted)")
    for step, count in per_call.items():
        ratio = count / per_call["marshmallow"]
        print(f"  {step:<16}{count:>12,.0f}   {ratio:5.2f}")
    print("  (goal: whole request <= 2.00 x marshmallow's validation)")


if __name__ == "__main__":
    main()
