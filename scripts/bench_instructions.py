"""Instructions per call of one request, counted by valgrind's callgrind: a repeatable ratio.

Wall-clock ratios on a small shared machine swing with whatever else runs; instruction counts
do not. Counts schema validation alone (marshmallow's own `Schema.load`, the baseline, and the
schema's quick check that serving runs in front of it) and the whole request
(`Recommender.recommend`) each at 0 and N calls in fresh processes, so start-up cancels out, and
prints the ratios to marshmallow's validation (goal: at most 2x, as for
scripts/bench_recommend.py). Needs valgrind (`apt-get install -y valgrind`); takes a
couple of minutes. Uses the registry's champion (HEELDROP_MODELS_DIR), training one if none.

With --api it counts HTTP requests instead, through the WSGI app in-process (a temporary
database, key and metrics folder; logs on): `GET /livez` against `POST /v1/recommendations`
with the same request. scripts/bench_api.sh measures the same two routes under gunicorn, where
each request also pays the server and the kernel, which these counts leave out. Unlike the
core counts, these moved by a few per cent between runs (perhaps the app's timers, which run
as long as the slow run lasts).

    python scripts/bench_instructions.py [--calls 1000] [--api]
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
from service.core.recommend import Recommender
from service.registry import Registry
from marshmallow import Schema
from service.core.schema import load_request, request_schema
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

API_CHILD = """
import io, os, sys, tempfile
work = tempfile.mkdtemp()
os.environ.update(
    HEELDROP_MODELS_DIR={models!r}, HEELDROP_DATABASE_URL="sqlite:///" + work + "/bench.db",
    HEELDROP_RATE_LIMIT="100000000/minute", PROMETHEUS_MULTIPROC_DIR=work,
)
from service.db import keys
from service.api.app import create_app
from service.db import engine_for
app = create_app()
key = keys.create(engine_for(os.environ["HEELDROP_DATABASE_URL"]), "bench")
routes = {{"GET /livez": ("/livez", b""), "POST /v1/recommendations": ("/v1/recommendations",
          {body!r})}}
def call(path, data):
    environ = {{
        "REQUEST_METHOD": "POST" if data else "GET", "PATH_INFO": path,
        "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1",
        "HTTP_AUTHORIZATION": "Bearer " + key, "wsgi.input": io.BytesIO(data),
    }}
    if data:
        environ.update(CONTENT_TYPE="application/json", CONTENT_LENGTH=str(len(data)))
    status = []
    for _ in app(environ, lambda s, h, e=None: status.append(s)):
        pass
    if not status[0].startswith("200"):
        raise SystemExit(path + ": " + status[0])
for _ in range(50):  # both routes warm in every process: the 0-call run is one baseline
    for path, data in routes.values():
        call(path, data)
path, data = routes.get(sys.argv[1], ("", b""))
for _ in range(int(sys.argv[2])):
    call(path, data)
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
    parser.add_argument("--api", action="store_true", help="count HTTP requests in-process")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed: apt-get install -y valgrind")
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_recommend import REQUEST, champion

    from service.config import Config

    model = champion(Config())
    models = str(model.folder.parent.parent)  # <models>/registry/<version>
    if args.api:
        api(API_CHILD.format(models=models, body=json.dumps(REQUEST).encode()), args.calls)
        return
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


def api(code: str, calls: int) -> None:
    base = instructions(code, "", 0)
    per_call = {
        route: (instructions(code, route, calls) - base) / calls
        for route in ("GET /livez", "POST /v1/recommendations")
    }
    print(f"instructions per HTTP request in-process (callgrind, {calls} calls, start-up out)")
    for route, count in per_call.items():
        print(f"  {route:<26}{count:>12,.0f}   {count / per_call['GET /livez']:5.2f}")
    print("  (under gunicorn each also pays the server and the kernel: scripts/bench_api.sh)")


if __name__ == "__main__":
    main()
