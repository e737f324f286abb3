"""Loopback ports for servers a test must name before they listen (gunicorn's PORT, the
SMTP fake, the database proxy) and for "connection refused".

The kernel's answer to bind(("127.0.0.1", 0)) comes from the ephemeral range, where every
outgoing connection takes its local port too: between the probe and the server's own
bind, another client (a database connection, the other pytest-xdist worker's requests)
may be given that port, and gunicorn then fails to bind. These ports come from below the
range instead, and each xdist worker takes them from a slice of its own, in turn, so two
workers never name the same port and one worker never names a port twice in a run.
"""

from __future__ import annotations

import itertools
import os
import random
import socket

# Below Linux's ephemeral range (32768-60999) and macOS's (49152-65535).
LOWEST, BEYOND = 20_000, 32_768


def _worker_slice() -> range:
    """This process's share of the ports: all of them outside a parallel run."""
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    index = int(worker[2:]) if worker.startswith("gw") else 0
    size = (BEYOND - LOWEST) // max(count, 1)
    return range(LOWEST + index * size, LOWEST + (index + 1) * size)


_PORTS = _worker_slice()
# From a random place in the slice: another run on the same machine likely starts elsewhere.
_TURN = itertools.count(random.randrange(len(_PORTS)))


def free_port() -> int:
    """A loopback port nothing listens on now, not handed out before in this process."""
    for _ in range(len(_PORTS)):
        port = _PORTS[next(_TURN) % len(_PORTS)]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # something listens there (or has just left it)
            return port
    raise AssertionError(f"no free loopback port in {_PORTS}")
