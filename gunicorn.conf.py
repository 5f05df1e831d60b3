"""Gunicorn settings for production (`make serve`, the Dockerfile, the benchmark).

Gunicorn treats every module global as a setting, so helpers are imported under _names.
"""

import atexit as _atexit
import gc as _gc
import multiprocessing as _multiprocessing
import os as _os
import shutil as _shutil
import tempfile as _tempfile
from pathlib import Path as _Path
from typing import Any as _Any


def _remove_own_metrics_dir(path: str, owner: int) -> None:
    if _os.getpid() == owner:  # not in a worker: they are forked from the master and exit through atexit too
        _shutil.rmtree(path, ignore_errors=True)


# Every worker writes its metric samples here and /metrics sums them. It must be in the
# environment before prometheus_client is imported, which the preloaded app does: hence here.
# One made here is this process's own, removed when the process that made it exits (the master, or a
# `--print-config` / `--check-config` run, which exits before any server hook); one given in the
# environment is left as it is.
_OWN_METRICS_DIR = None
if not _os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
    _OWN_METRICS_DIR = _tempfile.mkdtemp(prefix="storefront-metrics-")
    _os.environ["PROMETHEUS_MULTIPROC_DIR"] = _OWN_METRICS_DIR
    _atexit.register(_remove_own_metrics_dir, _OWN_METRICS_DIR, _os.getpid())

# Imported only now: prometheus_client picks single- or multi-process mode when first imported.
from prometheus_client import multiprocess as _multiprocess  # noqa: E402 - after the directory is set, above

wsgi_app = "api.app:create_app()"
# uvicorn-worker's UvicornWorker (uvicorn.workers is deprecated), plus a readiness drain on SIGTERM
# and graceful recycling (memory ceiling, max_requests).
worker_class = "api.worker.StorefrontWorker"
bind = _os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(_os.environ.get("WEB_CONCURRENCY", 2 * _multiprocessing.cpu_count() + 1))
timeout = int(_os.environ.get("GUNICORN_TIMEOUT", "120"))
graceful_timeout = int(_os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "30"))
keepalive = int(_os.environ.get("GUNICORN_KEEPALIVE", "5"))  # 65 behind an AWS ALB
# One listening socket per worker (SO_REUSEPORT), bound by the worker itself (gunicorn 27's
# arbiter binds nothing then: arbiter.py spawn_worker calls sock.create_sockets in the child), so
# the kernel spreads new connections over the workers by a hash of their addresses. With the one
# shared socket, whichever worker woke first accepted a whole burst of keep-alive connections
# (the benchmark at c=50: one worker at a full core, the other mostly idle). GUNICORN_REUSE_PORT=0
# goes back to the shared socket (tests that steer connections by pausing a worker need it).
reuse_port = _os.environ.get("GUNICORN_REUSE_PORT", "1").strip().lower() not in {"0", "false", "no", "off"}
# X-Forwarded-For/-Proto are believed by the app itself, from TRUSTED_PROXIES only (api/app.py);
# the worker turns uvicorn's own proxy-header handling off (api/worker.py).
# Recycling by request count is off: at benchmark rates 1000 requests recycled a worker every
# second, for no gain. Memory is the real reason to recycle: a worker whose resident set passes
# GUNICORN_MAX_WORKER_MEMORY_MB (default 512) recycles itself (api/worker.py reads it; gunicorn
# has no such setting). Either way the worker hands its connections over without losing a request.
max_requests = int(_os.environ.get("GUNICORN_MAX_REQUESTS", "0"))
max_requests_jitter = int(_os.environ.get("GUNICORN_MAX_REQUESTS_JITTER", "100"))
# Import the app once in the master: a recycled worker forks ready instead of
# spending seconds of CPU re-importing while it should serve. Engines are still created per
# worker, in the lifespan, so no connection is ever shared across a fork.
preload_app = True
accesslog = None  # the app writes one structured access line per request
# Gunicorn 27's runtime control socket defaults to one path per user, which two instances on one
# host would fight over; nothing here uses it.
control_socket_disable = True

# Freeze what the preloaded app imported: those objects are then never walked again by the
# workers' collections, and their pages stay shared after the fork.
#
# A request leaves nothing for the cyclic collector (schema.ReleasingExecutor): what it allocated is
# freed by reference counting when it ends. So the collector's only work is to walk the objects of the
# requests in flight, which are all alive: at CPython's default gen-0 threshold (700) a TopProducts
# request set off about four collections and a tenth of its CPU went to them. The threshold must stay
# above what the requests in flight hold together: with 25 TopProducts in flight per worker (c=50 on
# two workers) 10,000 was crossed all the time (1.0 ms of collector per request, in process), 25,000
# rarely (0.11 ms), with pauses no longer than at 10,000 (about 40 ms on this machine); 50,000 paused
# up to 90 ms. Peak RSS did not move in the benchmark (no cycles pile up in between).
# GUNICORN_GC_THRESHOLDS overrides the three thresholds; "700,10,10" is CPython's default.
_GC_THRESHOLDS = _os.environ.get("GUNICORN_GC_THRESHOLDS", "25000,10,10")


def on_starting(server: _Any) -> None:
    # A reused directory (a volume) still holds the last run's samples: start from zero.
    for stale in _Path(_os.environ["PROMETHEUS_MULTIPROC_DIR"]).glob("*.db"):
        stale.unlink()


def child_exit(server: _Any, worker: _Any) -> None:
    _multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]  # prometheus_client leaves it unannotated


def when_ready(server: _Any) -> None:
    _gc.collect()
    _gc.freeze()


def post_fork(server: _Any, worker: _Any) -> None:
    if _GC_THRESHOLDS:
        _gc.set_threshold(*(int(n) for n in _GC_THRESHOLDS.split(",")))
