"""The threaded worker's reading of the accept queue (config/gunicorn_worker.py), against
real listening sockets on loopback."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from config.gunicorn_worker import accept_queue_reader

_LINUX = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="TCP_INFO's accept queue is Linux's"
)


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    yield sock
    sock.close()


def _waiting_for(read: Callable[[], int | None], expected: int) -> int | None:
    """The reader's answer once the kernel has completed the handshakes (loopback: at once,
    but give it a moment rather than race it)."""
    deadline = time.monotonic() + 2
    seen = read()
    while seen != expected and time.monotonic() < deadline:
        time.sleep(0.01)
        seen = read()
    return seen


@_LINUX
def test_the_reader_counts_connections_not_yet_accepted(listener: socket.socket) -> None:
    read = accept_queue_reader([listener])
    assert read() == 0
    clients = [socket.create_connection(listener.getsockname()) for _ in range(5)]
    try:
        assert _waiting_for(read, 5) == 5
        accepted, _address = listener.accept()
        accepted.close()
        assert _waiting_for(read, 4) == 4
    finally:
        for client in clients:
            client.close()


@_LINUX
def test_the_reader_sums_every_listener(listener: socket.socket) -> None:
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.bind(("127.0.0.1", 0))
    other.listen(8)
    clients = [
        socket.create_connection(listener.getsockname()),
        socket.create_connection(other.getsockname()),
        socket.create_connection(other.getsockname()),
    ]
    try:
        assert _waiting_for(accept_queue_reader([listener, other]), 3) == 3
    finally:
        for client in clients:
            client.close()
        other.close()


def test_a_unix_socket_listener_reads_as_unknown(tmp_path: Path) -> None:
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(str(tmp_path / "bridge.sock"))
    unix.listen(8)
    try:
        assert accept_queue_reader([unix])() is None
    finally:
        unix.close()


def test_a_closed_listener_reads_as_unknown_not_an_error(listener: socket.socket) -> None:
    read = accept_queue_reader([listener])
    listener.close()
    assert read() is None
