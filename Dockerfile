# heeldrop API image: gunicorn (through `heeldrop serve`) on 0.0.0.0:8000, as a non-root user.
#
# No Docker engine runs where this file was written, so it has not been built there. To keep it
# honest, every step is the Makefile's, command for command, on the same lock file:
#   make install  ->  python -m venv .venv; pip install uv==0.13.9;
#                     uv pip install -r requirements.lock; uv pip install --no-deps -e .
#   make model    ->  `heeldrop models show champion` or else `heeldrop cohort` + `heeldrop retrain
#                     --promote force` (COHORT_ROWS, default 50000, as in the Makefile)
#   make run      ->  heeldrop serve --host H --port P
# so a `make test` / `make run` on a fresh machine exercises what this image runs. Change the
# Makefile and this file together.
#
# The model: one is trained at build time into /app/models (HEELDROP_MODELS_DIR), so the image
# serves on its own. A volume mounted at /app/models WINS: it hides the built-in model entirely,
# e.g. `-v /srv/heeldrop/models:/app/models:ro` to serve the registry your retraining writes
# (a read-only mount is fine; a champion is picked up on POST /admin/reload or
# `docker kill -s HUP <container>`). An empty or champion-less volume means rules-only answers
# ("degraded": true) and /readyz 503, which the HEALTHCHECK reports as unhealthy.
# Or mount it elsewhere and set HEELDROP_MODELS_DIR to that path.
#
# Keys live in HEELDROP_DATABASE_URL: by default SQLite under /app/instance; mount a volume there
# (`-v heeldrop-db:/app/instance`) or point it at PostgreSQL, then create keys with
#   docker run --rm -v heeldrop-db:/app/instance IMAGE heeldrop keys create --name shop
#
#   docker build -t heeldrop .                       # --build-arg COHORT_ROWS=... to change
#   docker run -p 8000:8000 -v heeldrop-db:/app/instance --stop-timeout 35 heeldrop
# (--stop-timeout: gunicorn's graceful_timeout is 30 s; Docker's default 10 s would cut it short.)
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    HEELDROP_MODELS_DIR=/app/models \
    HEELDROP_DATABASE_URL=sqlite:////app/instance/heeldrop.db \
    HEELDROP_WORKERS=2

RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin heeldrop
WORKDIR /app

# make install, step 1 ($(BIN)/uv): the virtual environment and the pinned uv.
RUN python -m venv .venv \
    && .venv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9

# make install, step 2 ($(VENV)/.installed): the lock file, then the package without deps.
# The lock file is installed before the source is copied so code changes reuse this layer.
COPY requirements.lock pyproject.toml README.md ./
RUN .venv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -r requirements.lock
COPY service/ service/
COPY scripts/ scripts/
RUN .venv/bin/uv pip install -q --python .venv/bin/python --no-deps -e .

RUN mkdir -p models data instance && chown heeldrop:heeldrop models data instance
USER heeldrop
ARG COHORT_ROWS=50000
RUN heeldrop models show champion >/dev/null 2>&1 || { \
        heeldrop cohort --rows "$COHORT_ROWS" --seed 1 -o data/cohort.csv && \
        heeldrop retrain --data data/cohort.csv --promote force; }

EXPOSE 8000
# /readyz: 200 once the model and rules are loaded; 503 (unhealthy) when serving rules only.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)" || exit 1

# make run. `heeldrop serve` execs gunicorn (config: service/gunicorn_conf.py), so the gunicorn
# master is PID 1 and gets docker's TERM (graceful stop) and HUP (reload the champion) itself.
CMD ["heeldrop", "serve", "--host", "0.0.0.0", "--port", "8000"]
