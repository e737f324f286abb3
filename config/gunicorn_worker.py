"""gunicorn's threaded worker, stamping each request with the time it reached the worker.

A connection is handed to the thread pool when it is accepted (or, kept alive, when its
next request becomes readable); under load it may wait there for a free thread. The app's
admission control (app/web/admission.py) measures a delivery's budget from that moment,
not from when a thread finally picked it up, so that time spent queued counts. The stamp
travels to the app as the WSGI environ key `bridge.arrived_at` (epoch seconds).

The stamp cannot see the time a connection waits in the kernel's accept queue before any
worker takes it, and under overload that is where the queue is: every worker at its
connection cap, or too starved of CPU to accept. So the environ also carries
`bridge.listen_backlog`, a function that says how many connections wait there now
(Linux's TCP_INFO of a listening socket: `tcpi_unacked` is its accept queue), or None
where that cannot be read. Admission control spools at once while it is long.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from gunicorn.workers.gthread import ThreadWorker

ARRIVED_AT_KEY = "bridge.arrived_at"  # the same as app.web.admission.ARRIVED_AT_KEY
LISTEN_BACKLOG_KEY = "bridge.listen_backlog"  # the same as app.web.admission's
_current = threading.local()
# struct tcp_info: eight one-byte fields, then u32 rto, ato, snd_mss, rcv_mss, unacked.
_TCP_INFO_BYTES = 104
_UNACKED_OFFSET = 24


def accept_queue_reader(sockets: list[socket.socket]) -> Callable[[], int | None]:
    """A function returning how many connections wait to be accepted on `sockets` (their
    sum), or None where the platform does not say (not Linux, not TCP)."""
    tcp = [sock for sock in sockets if sock.family in (socket.AF_INET, socket.AF_INET6)]
    tcp_info = getattr(socket, "TCP_INFO", None)
    if not tcp or tcp_info is None or len(tcp) != len(sockets):
        return lambda: None

    def waiting() -> int | None:
        total = 0
        try:
            for sock in tcp:
                info = sock.getsockopt(socket.IPPROTO_TCP, tcp_info, _TCP_INFO_BYTES)
                total += struct.unpack_from("I", info, _UNACKED_OFFSET)[0]
        except OSError:
            return None
        return total

    return waiting


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
        backlog = accept_queue_reader([listener.sock for listener in self.sockets])

        def stamped(environ: dict[str, Any], start_response: Any) -> Any:
            arrived = getattr(_current, "arrived_at", None)
            environ[ARRIVED_AT_KEY] = arrived if arrived is not None else time.time()
            environ[LISTEN_BACKLOG_KEY] = backlog
            return inner(environ, start_response)

        setattr(self, "wsgi", stamped)  # noqa: B010
