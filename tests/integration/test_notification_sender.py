"""The sender thread of the jobs process: the first attempt within a second of the commit,
woken by LISTEN/NOTIFY on PostgreSQL and by a 200 ms poll on SQLite."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest
from flask.testing import FlaskClient

from app.extensions import Bridge
from app.jobs.notify import NotificationSender
from tests.support.integrations import MadeIntegration
from tests.support.notify import FakeSend, make_channel, outbox, send_sentry

Make = Callable[..., MadeIntegration]
T0 = 1_790_000_000
# Each first attempt within a second of its commit.
pytestmark = pytest.mark.timing


def _wait_for(send: FakeSend, count: int, limit: float) -> float:
    started = time.monotonic()
    while len(send.calls) < count and time.monotonic() - started < limit:
        time.sleep(0.005)
    return time.monotonic() - started


def test_the_first_attempt_starts_within_a_second_of_the_commit(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    send = FakeSend()
    # Without a NOTIFY, the PostgreSQL sender would look only every 30 s here: each
    # quick attempt below was woken by the commit of its delivery.
    sender = NotificationSender(bridge, send, listen_idle_seconds=30.0)
    stop = threading.Event()
    thread = threading.Thread(target=sender.run_forever, args=(stop,), daemon=True)
    thread.start()
    try:
        time.sleep(0.3)  # the LISTEN is in place
        delays = []
        for number in range(3):
            send_sentry(client, integration, issue_id=str(500 + number), at=T0)
            delays.append(_wait_for(send, number + 1, 5.0))
    finally:
        stop.set()
        thread.join(timeout=5)

    assert not thread.is_alive()
    assert len(send.calls) == 3
    assert max(delays) < 1.0, delays
    assert all(n.status == "sent" for n in outbox(bridge))
