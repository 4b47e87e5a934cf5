#!/usr/bin/env bash
# HTTP throughput of the API under gunicorn (2 sync workers), measured with wrk at 16 connections:
#   GET /livez (the baseline: a bare route through the same app and server),
#   POST /v1/recommendations (one realistic request),
#   POST /v1/recommendations/batch (100 items a request; items/s).
# The three take turns in --rounds rounds (each route gets --duration seconds in all), so a
# change in the machine's load during the run falls on all of them alike. Prints, per route,
# req/s over all its rounds, the median of the rounds' p50 and the highest p99, errors and the
# workers' CPU time per request; then recommendations/livez in req/s (floor 0.35 with 0
# errors; goal 0.50) with each round's ratio beside it.
#
#   scripts/bench_api.sh [--duration SECONDS] [--rounds N] [--connections N] [--workers N]
#                        [--max-requests N] [--database-url URL]
#
# Also prints each worker's resident memory after the warm-up and at the end. A soak with worker
# recycling off, so a leak cannot hide behind it:
#   scripts/bench_api.sh --max-requests 0 --duration 600 --rounds 1
#
# Needs wrk (Debian/Ubuntu: `apt-get install -y wrk`; macOS: `brew install wrk`).
# Serves the champion of HEELDROP_MODELS_DIR (default models/); if none it can serve, trains one
# on a simulated cohort into a temporary folder. Uses a temporary SQLite database, API key, port
# and metrics folder, and stops its server on exit. Nothing outside the temporary folder is
# changed, unless --database-url names a database (PostgreSQL, say) to log to instead: it is
# migrated, and the bench's key and the recommendations it logged stay in it.
set -euo pipefail

DURATION=15
ROUNDS=3
CONNECTIONS=16
WORKERS=2
DATABASE_URL=""
while [ $# -gt 0 ]; do
    case "$1" in
        --duration) DURATION="$2"; shift 2 ;;
        --rounds) ROUNDS="$2"; shift 2 ;;
        --connections) CONNECTIONS="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --max-requests) export GUNICORN_CMD_ARGS="--max-requests $2 --max-requests-jitter 0"
            [[ "$2" =~ ^[0-9]+$ ]] || { echo "not a whole number: $2" >&2; exit 2; }; shift 2 ;;
        --database-url) DATABASE_URL="$2"; shift 2 ;;
        -h|--help) sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown argument: $1" >&2; exit 2 ;;
    esac
done

for value in "$DURATION" "$ROUNDS" "$CONNECTIONS" "$WORKERS"; do
    [[ "$value" =~ ^[1-9][0-9]*$ ]] || { echo "not a whole number >= 1: $value" >&2; exit 2; }
done

cd "$(dirname "$0")/.."
ROOT="$PWD"
if ! command -v wrk >/dev/null; then
    echo "wrk is not installed: apt-get install -y wrk (Debian/Ubuntu) or brew install wrk" >&2
    exit 2
fi
PYTHON="$ROOT/.venv/bin/python"
[ -x "$PYTHON" ] || PYTHON="$(command -v python3)"
heeldrop() { "$PYTHON" -m service.cli "$@"; }

WORK="$(mktemp -d "${TMPDIR:-/tmp}/heeldrop-bench.XXXXXX")"
SERVER_PID=""
cleanup() {
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

export HEELDROP_MODELS_DIR="${HEELDROP_MODELS_DIR:-models}"
if ! heeldrop models check champion >/dev/null 2>&1; then
    echo "no champion this code can serve in $HEELDROP_MODELS_DIR: training one into $WORK/models (a few minutes)" >&2
    export HEELDROP_MODELS_DIR="$WORK/models"
    heeldrop cohort --rows 20000 --seed 1 -o "$WORK/cohort.csv"
    heeldrop retrain --data "$WORK/cohort.csv" --promote force >/dev/null
fi
export HEELDROP_DATABASE_URL="${DATABASE_URL:-sqlite:///$WORK/bench.db}"
export HEELDROP_RATE_LIMIT="100000000/minute"  # measure the service, not the rate limiter
export PROMETHEUS_MULTIPROC_DIR="$WORK/prometheus"
mkdir -p "$PROMETHEUS_MULTIPROC_DIR"
HD_KEY="$(heeldrop keys create --name "bench-${WORK##*.}" 2>/dev/null)"  # unique: a database may be reused
export HD_KEY

PORT="$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
URL="http://127.0.0.1:$PORT"
# Not through the shell function: $! must be the process that becomes the gunicorn master.
"$PYTHON" -m service.cli serve --host 127.0.0.1 --port "$PORT" --workers "$WORKERS" \
    >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
    curl -fs "$URL/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { tail -20 "$WORK/server.log" >&2; exit 1; }
    sleep 0.2
done
curl -fs "$URL/readyz" >/dev/null || { echo "server not ready" >&2; tail -20 "$WORK/server.log" >&2; exit 1; }

# Request bodies: one person (most groups filled in), and a batch of 100 varied people.
"$PYTHON" - "$WORK" <<'EOF'
import json, random, sys
from pathlib import Path

work = Path(sys.argv[1])
rng = random.Random(7)


def person(i: int) -> dict:
    return {
        "client_ref": f"bench-{i}",
        "person": {"age_years": rng.randint(18, 80), "body_mass_kg": rng.randint(50, 110),
                   "sex": rng.choice(["female", "male", "other", "unspecified"])},
        "footwear": {"current_drop_mm": rng.choice([0, 4, 6, 8, 10, 12]),
                     "heel_insert_mm": rng.choice([0, 0, 0, 3, 6]),
                     "current_type": rng.choice(["road_running", "walking", "casual", "dress"]),
                     "weeks_in_current_drop": rng.randint(0, 200)},
        "activity": {"primary": rng.choice(["running", "walking", "general"]),
                     "running_km_per_week": rng.randint(0, 60)},
        "symptoms": {"calf_tightness": rng.randint(0, 6), "achilles_pain": rng.randint(0, 4),
                     "plantar_heel_pain": rng.randint(0, 4)},
        "history": {"ankle_sprains_past_2_years": rng.randint(0, 2)},
        "mobility": {"knee_to_wall_cm": {"left": rng.randint(4, 14), "right": rng.randint(4, 14)}},
    }


(work / "one.json").write_text(json.dumps(person(0)))
(work / "batch.json").write_text(json.dumps({"items": [person(i) for i in range(100)]}))
EOF

cat >"$WORK/bench.lua" <<'EOF'
-- BODY_FILE (optional) is POSTed as JSON with the bench key; without it, a plain GET.
local path = os.getenv("BODY_FILE")
if path and path ~= "" then
  local f = assert(io.open(path, "rb"))
  wrk.method = "POST"
  wrk.body = f:read("*a")
  f:close()
  wrk.headers["Content-Type"] = "application/json"
end
wrk.headers["Authorization"] = "Bearer " .. os.getenv("HD_KEY")

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %d %d %d %d %d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.status + e.timeout))
end
EOF

THREADS=2
TICKS="$(getconf CLK_TCK 2>/dev/null || echo 100)"
# CPU time (user + system, clock ticks) the gunicorn workers have used: the live ones' from
# /proc/PID/stat, plus the master's cutime + cstime, which holds the workers that have exited
# (max_requests replaces workers during a long run). Empty where there is no /proc.
worker_ticks() {
    [ -r "/proc/$SERVER_PID/stat" ] || return 0
    local pid total
    total="$(awk '{ print $16 + $17 }' "/proc/$SERVER_PID/stat")"
    for pid in $(cat "/proc/$SERVER_PID/task/"*/children 2>/dev/null); do
        total=$((total + $(awk '{ print $14 + $15 }' "/proc/$pid/stat" 2>/dev/null || echo 0)))
    done
    echo "$total"
}
SLICE=$((DURATION / ROUNDS > 0 ? DURATION / ROUNDS : 1))
# errors = socket errors (connect, read, write, timeout over 30 s) + non-2xx/3xx answers.
# ticks = the workers' CPU time over the slice: what a request costs them, which other load on
# the machine changes much less than req/s (a replacement worker's start-up is counted too).
run() {  # name path body-file: one slice; appends "requests duration_us p50_us p99_us errors ticks"
    local out before after used=-1
    before="$(worker_ticks)"
    out="$(BODY_FILE="$3" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${SLICE}s" --timeout 30s \
        --latency -s "$WORK/bench.lua" "$URL$2")"
    after="$(worker_ticks)"
    if [ -n "$before" ] && [ -n "$after" ]; then used=$((after - before)); fi
    echo "$out" >>"$WORK/wrk-$1.txt"
    echo "$out" | awk -v used="$used" '/^RESULT/ { print $2, $3, $4, $5, $6, used }' \
        >>"$WORK/raw-$1"
}

# Resident memory of each live worker, in MiB (from /proc; empty where there is none).
worker_rss() {
    local pid
    for pid in $(cat "/proc/$SERVER_PID/task/"*/children 2>/dev/null); do
        awk '/^VmRSS/ { printf "%.1f ", $2 / 1024 }' "/proc/$pid/status" 2>/dev/null
    done
}

echo "warming up (3 s)..." >&2
BODY_FILE="$WORK/one.json" wrk -t"$THREADS" -c"$CONNECTIONS" -d3s -s "$WORK/bench.lua" \
    "$URL/v1/recommendations" >/dev/null
RSS_START="$(worker_rss)"
for round in $(seq "$ROUNDS"); do
    echo "round $round of $ROUNDS (${SLICE} s a route)..." >&2
    run livez /livez ""
    run recommendations /v1/recommendations "$WORK/one.json"
    run batch /v1/recommendations/batch "$WORK/batch.json"
done

RSS_END="$(worker_rss)"
MODEL="$(curl -fs "$URL/readyz" | "$PYTHON" -c 'import json,sys; print(json.load(sys.stdin).get("model_version"))')"
echo
echo "heeldrop API bench: $WORKERS gunicorn workers, wrk -t$THREADS -c$CONNECTIONS," \
    "$ROUNDS rounds of ${SLICE}s a route, $(nproc 2>/dev/null || echo '?') cores, model $MODEL"
echo "worker RSS MiB after warm-up: ${RSS_START:-?}; at the end: ${RSS_END:-?}" \
    "(max_requests: ${GUNICORN_CMD_ARGS:-as configured})"
"$PYTHON" - "$WORK" "$TICKS" <<'EOF'
import statistics
import sys
from pathlib import Path

work, ticks_per_s = Path(sys.argv[1]), int(sys.argv[2])
ROUTES = {"livez": "GET /livez", "recommendations": "POST /v1/recommendations",
          "batch": "POST /v1/recommendations/batch"}
rounds = {name: [[int(x) for x in line.split()] for line in (work / f"raw-{name}").open()]
          for name in ROUTES}  # per round: requests, duration us, p50 us, p99 us, errors, ticks


def summary(rows):
    requests, seconds, ticks = sum(r[0] for r in rows), sum(r[1] for r in rows) / 1e6, [r[5] for r in rows]
    cpu = f"{sum(ticks) / ticks_per_s * 1e6 / requests:.0f}" if requests and min(ticks) >= 0 else "-"
    return (requests / seconds if seconds else 0.0, statistics.median(r[2] for r in rows) / 1000,
            max(r[3] for r in rows) / 1000, sum(r[4] for r in rows), cpu)


row = "{:<34} {:>10} {:>9} {:>9} {:>7} {:>17}"
print(row.format("route", "req/s", "p50 ms", "p99 ms", "errors", "worker CPU us/req"))
totals = {}
for name, label in ROUTES.items():
    rps, p50, p99, failed, cpu = totals[name] = summary(rounds[name])
    print(row.format(label, f"{rps:.1f}", f"{p50:.2f}", f"{p99:.2f}", failed, cpu))
print(f"batch items/s (100 a request): {totals['batch'][0] * 100:,.0f}")
livez, rec = totals["livez"][0], totals["recommendations"][0]
ratio = rec / livez if livez else 0.0
by_round = [(r[0] / r[1]) / (z[0] / z[1]) if z[0] and r[1] else 0.0
            for r, z in zip(rounds["recommendations"], rounds["livez"])]
errors = sum(t[3] for t in totals.values())
floor = "cleared" if ratio >= 0.35 and errors == 0 else "NOT cleared"
print(f"recommendations / livez: {ratio:.2f} (floor 0.35 with 0 errors: {floor}; goal 0.50);"
      f" by round: {' '.join(f'{x:.2f}' for x in by_round)}")
EOF
