"""Slow clients against the real gunicorn (4 workers, config/gunicorn.conf.py): fifty
connections trickling their bodies must not stop genuine deliveries being answered."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.support.payloads import build
from tests.support.stack import Stack, post

# Genuine deliveries answered within 1 s; the idle client let go after its 2 s.
pytestmark = [pytest.mark.e2e, pytest.mark.timing, pytest.mark.usefixtures("four_workers")]
SLOW_CLIENTS = 50


def _start_slow_request(port: int, integration_id: str) -> socket.socket:
    """A POST whose headers promise 100 kB, of which almost nothing is sent yet."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(
        f"POST /api/integrations/sentry?integrationId={integration_id} HTTP/1.1\r\n"
        f"Host: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: 100000\r\n\r\n{{".encode()
    )
    return sock


@contextlib.contextmanager
def trickling(sockets: list[socket.socket], every: float) -> Iterator[None]:
    """Send one more byte on every socket each `every` seconds until the block ends."""
    done = threading.Event()

    def trickle() -> None:
        while not done.wait(every):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b" ")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join(timeout=5)
        for sock in sockets:
            sock.close()


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_fifty_slow_clients_do_not_stop_genuine_deliveries(server: Stack) -> None:
    server.bridge_json("service", "create", "Payments")
    created = server.bridge_json("integration", "create", "--service", "payments")
    url = f"{server.base_url}/api/integrations/sentry?integrationId={created['id']}"
    port = int(server.env["PORT"])
    # Half name the real integration, half an unknown id: neither may hold up intake.
    slow = [
        _start_slow_request(port, created["id"] if number % 2 else "no-such-integration")
        for number in range(SLOW_CLIENTS)
    ]

    with trickling(slow, every=0.5):
        time.sleep(1.0)  # every slow request has reached a worker and is reading its body
        timings = []
        for _ in range(10):
            delivery = build("integration_issue_created")
            started = time.monotonic()
            status, answer = post(url, delivery.body, delivery.headers)
            timings.append(time.monotonic() - started)
            assert status == 202, answer

    assert max(timings) < 1.0, timings
    listed = server.bridge_json("incident", "list", "--json")
    assert listed[0]["event_count"] == 10


@pytest.fixture
def impatient_server(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Stack]:
    stack.env["BRIDGE_CLIENT_IDLE_TIMEOUT_SECONDS"] = "2"
    started: Stack = request.getfixturevalue("server")
    yield started


@pytest.mark.parametrize("stack", ["sqlite"], indirect=True)
def test_a_client_that_stops_sending_mid_body_is_answered_408_and_let_go(
    impatient_server: Stack,
) -> None:
    server = impatient_server
    server.bridge_json("service", "create", "Payments")
    created = server.bridge_json("integration", "create", "--service", "payments")
    sock = _start_slow_request(int(server.env["PORT"]), created["id"])
    started = time.monotonic()
    try:
        answer = sock.recv(4096)
    finally:
        sock.close()

    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert 1.5 <= time.monotonic() - started < 6
