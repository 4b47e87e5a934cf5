"""gunicorn settings for `heeldrop serve` (and the Dockerfile).

- sync workers: PERF-NOTES measured gthread keep-alive pinning every connection to one worker
  (throughput swinging 1,050-4,300 req/s); sync workers varied +-3%.
- the model is loaded per worker, after fork (no preload_app): it is small (a numpy evaluator of
  a logistic model, ~100 kB), loads in milliseconds, and a HUP then simply starts workers that
  load the current champion, while old workers finish their requests (graceful).
- the *modules* are imported once in the master (on_starting), not the app: a worker then boots
  in ~0.2 s (create_app: database check, rules, model) instead of re-importing scikit-learn,
  skops, SQLAlchemy and alembic (~7-12 s on 2 busy cores). That matters because a HUP stops the
  old workers as soon as the new ones are forked: with slow boots, requests sat in the listen
  backlog for 20 s during /admin/reload (tests/test_live.py measures it). The cost: a HUP does
  not pick up changed *code* (restart the master for a deploy), only the registry's champion.
- max_requests with jitter recycles workers so slow leaks cannot grow without bound, without
  every worker restarting at once.
- Prometheus multiprocess mode: each worker writes samples to a shared folder; dead workers'
  live gauges are removed in child_exit.
"""

import os
import shutil
import tempfile

bind = os.environ.get("HEELDROP_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("HEELDROP_WORKERS", "2"))
worker_class = "sync"
timeout = 30
graceful_timeout = 30
keepalive = 2
# Worker heartbeats are file timestamps; on a container's overlay /tmp they can stall, so use
# the memory-backed /dev/shm where there is one (gunicorn's advice for Docker).
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
max_requests = 20000
max_requests_jitter = 2000
accesslog = None  # the app writes one structured JSON line per request
errorlog = "-"
loglevel = "warning"

_owned = not os.environ.get("PROMETHEUS_MULTIPROC_DIR")  # a folder we made is ours to remove
_metrics_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR") or tempfile.mkdtemp(prefix="heeldrop-")
os.environ["PROMETHEUS_MULTIPROC_DIR"] = _metrics_dir


def on_starting(server):
    """Migrate the database once, in the master, before any worker serves."""
    from service.config import Config
    from service.db import upgrade

    for name in os.listdir(_metrics_dir):
        os.unlink(os.path.join(_metrics_dir, name))
    upgrade(Config().database_url)
    # Import (not create) the app so forked workers boot fast; no thread or connection is left
    # open by these imports, so forking after them is safe.
    import service.api.app  # noqa: F401


def post_fork(server, worker):
    """Tell the worker its master, so /admin/reload can ask for a graceful restart of all."""
    os.environ["HEELDROP_GUNICORN_MASTER"] = str(server.pid)


def child_exit(server, worker):
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(worker.pid)


def on_exit(server):
    if _owned:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
