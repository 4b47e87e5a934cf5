# heeldrop images, in stages (docs/deployment.md, "The image"):
#   build    the virtual environment from the lock file, heeldrop installed into it (not editable)
#   model    a champion trained on the simulated cohort (COHORT_ROWS rows), registry only
#   proxy    nginx with deploy/nginx.conf.template: the buffering proxy to put in front
#   runtime  (the last, so the default target) the venv and the registry on a slim Python: no
#            compiler, no pip or uv in the venv, no training data, no source tree; gunicorn as a
#            non-root user on :8000
#
#   docker build -t heeldrop .                        # --build-arg COHORT_ROWS=... to change
#   docker build -t heeldrop-proxy --target proxy .
#   docker compose up                                 # both, wired together (compose.yaml)
#   --build-arg PYTHON_IMAGE=... for another Debian-based Python 3.11 or newer
#
# The model: /app/models holds the one trained here. A volume mounted there wins (for example
# `-v /srv/heeldrop/models:/app/models:ro`, the registry your retraining writes; a new champion
# is picked up on POST /admin/reload or `docker kill -s HUP`). A registry with no champion is
# refused at start: `heeldrop serve` exits, unless the command says --rules-only.
# Keys and the recommendation log live in HEELDROP_DATABASE_URL: SQLite under /app/instance by
# default (mount a volume there) or PostgreSQL; create keys with
#   docker run --rm -v heeldrop-db:/app/instance heeldrop heeldrop keys create --name shop
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PYTHONDONTWRITEBYTECODE=1 UV_LINK_MODE=copy
WORKDIR /app
# The pinned uv in a venv of its own (left behind in this stage), then an empty venv for the app.
RUN python -m venv /opt/uv \
    && /opt/uv/bin/python -m pip install -q --disable-pip-version-check uv==0.13.9 \
    && python -m venv --without-pip .venv
# The lock file before the source, so a code change reuses this layer.
COPY requirements.lock pyproject.toml README.md LICENSE ./
RUN /opt/uv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python -r requirements.lock
COPY service/ service/
RUN /opt/uv/bin/uv pip install -q --compile-bytecode --python .venv/bin/python --no-deps .

FROM build AS model
ARG COHORT_ROWS=50000
RUN .venv/bin/heeldrop cohort --rows "$COHORT_ROWS" --seed 1 -o /tmp/cohort.csv \
    && HEELDROP_MODELS_DIR=/app/models .venv/bin/heeldrop retrain --data /tmp/cohort.csv \
        --promote force \
    && rm /tmp/cohort.csv

FROM ${PYTHON_IMAGE} AS proxy
RUN apt-get update -qq \
    && apt-get install -y -qq --no-install-recommends nginx-light gettext-base >/dev/null \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
    && ln -sf /dev/stdout /var/log/nginx/access.log && ln -sf /dev/stderr /var/log/nginx/error.log
COPY deploy/nginx.conf.template /etc/nginx/heeldrop.conf.template
ENV HEELDROP_LISTEN=8080 HEELDROP_UPSTREAM=heeldrop:8000
EXPOSE 8080
# Only the two HEELDROP_ variables are substituted; nginx's own $names stay as they are.
CMD ["sh", "-c", "envsubst '${HEELDROP_LISTEN} ${HEELDROP_UPSTREAM}' \
    < /etc/nginx/heeldrop.conf.template > /etc/nginx/conf.d/heeldrop.conf \
    && exec nginx -g 'daemon off;'"]

FROM ${PYTHON_IMAGE} AS runtime
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PATH=/app/.venv/bin:$PATH \
    HEELDROP_MODELS_DIR=/app/models \
    HEELDROP_DATABASE_URL=sqlite:////app/instance/heeldrop.db \
    HEELDROP_WORKERS=2
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin heeldrop
WORKDIR /app
COPY --from=build /app/.venv /app/.venv
COPY --from=model --chown=heeldrop:heeldrop /app/models /app/models
RUN mkdir -p instance && chown heeldrop:heeldrop instance
USER heeldrop
EXPOSE 8000
# /readyz: 200 once the model and rules are loaded and the database answers; 503 otherwise.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=4)" || exit 1
# `heeldrop serve` execs gunicorn (service/api/gunicorn_conf.py): the master is PID 1 and gets
# docker's TERM (graceful stop; give it `--stop-timeout 35`, gunicorn waits up to 30 s) and HUP
# (load the registry's champion). Behind the proxy stage, set HEELDROP_PROXIES=1.
CMD ["heeldrop", "serve", "--host", "0.0.0.0", "--port", "8000"]
