"""gunicorn's threaded worker, stamping each request with the time it reached the worker.

A connection is handed to the thread pool when it is accepted (or, kept alive, when its
next request becomes readable); under load it may wait there for a free thread. The app's
admission control (app/web/admission.py) measures a delivery's budget from that moment,
not from when a thread finally picked it up, so that time spent queued counts. The stamp
travels to the app as the WSGI environ key `bridge.arrived_at` (epoch seconds).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

ARRIVED_AT_KEY = "bridge.arrived_at"  # the same as app.web.admission.ARRIVED_AT_KEY
_current = threading.local()


class StampedThreadWorker(ThreadWorker):  # type: ignore[misc]  # gunicorn is untyped
    """ThreadWorker whose WSGI environ carries the request's arrival time."""

    def enqueue_req(self, conn: Any) -> None:
        conn.bridge_arrived_at = time.time()
        super().enqueue_req(conn)

    def handle(self, conn: Any) -> Any:
        _current.arrived_at = getattr(conn, "bridge_arrived_at", None)
        try:
            return super().handle(conn)
        finally:
            _current.arrived_at = None

    def load_wsgi(self) -> None:
        super().load_wsgi()
        inner: Any = getattr(self, "wsgi")  # noqa: B009  # set by gunicorn, untyped

        def stamped(environ: dict[str, Any], start_response: Any) -> Any:
            arrived = getattr(_current, "arrived_at", None)
            environ[ARRIVED_AT_KEY] = arrived if arrived is not None else time.time()
            return inner(environ, start_response)

        setattr(self, "wsgi", stamped)  # noqa: B010
