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
- Prometheus multiprocess mode: each worker writes samples to files in a shared folder, named
  by the worker's *slot*, not its pid: a worker takes the lowest slot no live worker holds and
  goes on counting in the files of the dead worker it replaces. Counts are kept, and the folder
  holds files for at most as many workers as ever ran at once (2 x workers during a HUP),
  however many have come and gone, so /metrics stays fast. This is prometheus_client's own
  `MultiProcessValue(process_identifier)`, whose one rule (processes running at the same time
  get distinct identifiers) the slots keep. A dead worker's live gauges are removed in
  child_exit.
"""

import os
import shutil
import tempfile

from prometheus_client import multiprocess, values

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

SLOT = "HEELDROP_WORKER_SLOT"  # set in each worker after fork
_busy: set[str] = set()  # the slots of live workers (kept by the master)


def _process_identifier() -> str:
    return os.environ.get(SLOT) or str(os.getpid())


# Before any metric exists: the app's modules are imported in on_starting, below.
values.ValueClass = values.MultiProcessValue(process_identifier=_process_identifier)


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


def pre_fork(server, worker):
    """Give the worker the lowest slot no live worker holds (in the master)."""
    worker.heeldrop_slot = next(f"w{k}" for k in range(len(_busy) + 1) if f"w{k}" not in _busy)
    _busy.add(worker.heeldrop_slot)


def post_fork(server, worker):
    """Tell the worker its master, so /admin/reload can ask for a graceful restart of all, and
    its slot, which names its metrics files."""
    os.environ["HEELDROP_GUNICORN_MASTER"] = str(server.pid)
    os.environ[SLOT] = worker.heeldrop_slot


def child_exit(server, worker):
    multiprocess.mark_process_dead(worker.heeldrop_slot)
    _busy.discard(worker.heeldrop_slot)


def on_exit(server):
    if _owned:
        shutil.rmtree(_metrics_dir, ignore_errors=True)
