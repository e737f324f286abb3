"""Production gunicorn configuration; `make run` and the benchmarks both use it."""

import os
import socket
import struct
import tempfile
from typing import Any

from config.settings import load_settings

_settings = load_settings()

bind = f"{_settings.host}:{_settings.port}"
workers = _settings.workers
# Threaded workers (docs/decisions.md, "Slow clients"): with sync workers a client that
# trickles its body holds a whole worker, and four of them stopped all intake. Here one
# holds one thread of `threads`; a worker takes no more connections than it has threads
# for (plus a few kept alive), so the others' free threads take the new ones.
# config/gunicorn_worker.py: gthread, with each request stamped with its arrival time for
# the webhook's admission control (app/web/admission.py, docs/decisions.md "Overload").
worker_class = "config.gunicorn_worker.StampedThreadWorker"
threads = _settings.web_threads
worker_connections = threads + 8
# Sentry waits one second for an answer; a worker whose main loop stops for this long is
# stuck (with threads, a slow request no longer counts against it).
timeout = 30
graceful_timeout = 20
keepalive = 5
# Request-size limits, so that no header can be a memory or parsing sink: a request line of
# at most 4 KiB (URLs carry an integrationId or list filters), at most 50 header fields of
# at most 8 KiB each (a session cookie is far smaller). Beyond them gunicorn answers 400
# itself, before the app. Bodies are bounded by BRIDGE_MAX_BODY_BYTES in the app (413).
limit_request_line = 4094
limit_request_fields = 50
limit_request_field_size = 8190
accesslog = "-"
# The same access line, built from the atoms the format below uses only (gunicorn builds
# every header and environ variable into it for each request): config/gunicorn_logging.py.
logger_class = "config.gunicorn_logging.AccessLogger"
# %(U)s is the path without the query string: the integrationId in the query is the
# credential of unsigned integrations and must not reach the logs. One JSON object a line,
# with the request id the app put on the response.
access_log_format = (
    '{"time": "%(t)s", "logger": "gunicorn.access", "remote": "%(h)s", '
    '"request": "%(m)s %(U)s", "status": %(s)s, "bytes": "%(B)s", "ms": %(M)s, '
    '"request_id": "%({x-request-id}o)s", "user_agent": "%(a)s"}'
)

# Prometheus multiprocess mode: every worker writes its metrics into one folder that
# /metrics sums. Set before the workers start (they import prometheus_client after fork).
_metrics_dir = os.environ.setdefault(
    "PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bridge-metrics-")
)


def when_ready(server: Any) -> None:
    """Give every accepted connection a receive timeout (inherited from the listener).

    A client that sends nothing for BRIDGE_CLIENT_IDLE_TIMEOUT_SECONDS in the middle of its
    request line, headers or body frees its thread: the read fails, the app answers 408.
    """
    idle = struct.pack("ll", _settings.client_idle_timeout_seconds, 0)
    for listener in server.LISTENERS:
        listener.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, idle)
    _record_listening(server)


def _record_listening(server: Any) -> None:
    """Write where this server listens into the instance folder (app/served_url.py): the
    CLI in another shell, without this shell's PORT, prints webhook URLs that answer."""
    from app.served_url import record_listening

    addresses = [
        listener.sock.getsockname()[:2]
        for listener in server.LISTENERS
        if listener.sock.family in (socket.AF_INET, socket.AF_INET6)
    ]
    try:
        record_listening(_settings.instance_path, addresses, os.getpid())
    except OSError as error:  # a read-only instance folder must not stop the server
        server.log.warning("could not record the listen address: %s", error)


def post_worker_init(worker: Any) -> None:
    """Say when a worker has loaded the app and takes connections (the bench waits for
    every worker: one answering /healthz says nothing of the others, still importing)."""
    worker.log.info("Worker ready (pid: %s)", worker.pid)


def on_exit(server: Any) -> None:
    from app.served_url import forget_listening

    forget_listening(_settings.instance_path, os.getpid())


def on_starting(server: object) -> None:
    """Start from empty metric files: counters of an earlier run must not carry over."""
    for name in os.listdir(_metrics_dir):
        if name.endswith(".db"):
            os.remove(os.path.join(_metrics_dir, name))


def child_exit(server: object, worker: Any) -> None:
    from prometheus_client import multiprocess

    # prometheus_client leaves this function unannotated.
    multiprocess.mark_process_dead(worker.pid)  # type: ignore[no-untyped-call]


errorlog = "-"
loglevel = _settings.log_level.lower()
# Workers import the app after forking so that no database connection crosses a fork.
preload_app = False
