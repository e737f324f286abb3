"""A database outage during a burst: every delivery answered 2xx and applied exactly once.

gunicorn (four workers) and the jobs process reach PostgreSQL through a loopback TCP proxy.
The proxy is cut in the middle of a burst and restored; deliveries that could not reach
the database wait in the fsync'd spool and are applied, in order, when it returns.
"""

from __future__ import annotations

import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from tests.support.payloads import build, load, seen_at
from tests.support.stack import BIN, ROOT, Stack, post, stop, wait_until_healthy
from tests.support.tcp_proxy import TcpProxy

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("four_workers")]
T_EVENTS = 1_790_000_000  # the events' own times (lastSeen), in the past
ISSUES = 10
PER_ISSUE = 6


@pytest.fixture
def proxied(stack: Stack, tmp_path: Path) -> Iterator[tuple[Stack, TcpProxy]]:
    """gunicorn and the jobs process, both talking to PostgreSQL through the proxy."""
    direct = make_url(stack.env["DATABASE_URL"])
    proxy = TcpProxy(direct.host or "127.0.0.1", direct.port or 5432)
    proxy.start()
    env = {
        **stack.env,
        "DATABASE_URL": direct.set(port=proxy.port).render_as_string(hide_password=False),
        "BRIDGE_SPOOL_DRAIN_SECONDS": "1",
        "BRIDGE_DB_CONNECT_TIMEOUT_SECONDS": "2",
    }
    log_path = tmp_path / "servers.log"
    stack.logs.append(log_path)
    with log_path.open("wb") as log:
        web = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        jobs = subprocess.Popen(
            [str(BIN / "bridge"), "jobs", "run"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_until_healthy(stack.base_url, web)
            yield stack, proxy
        finally:
            stop(web)
            stop(jobs)
            proxy.close()


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_outage_during_a_burst_loses_nothing_and_applies_each_delivery_once(
    proxied: tuple[Stack, TcpProxy],
) -> None:
    stack, proxy = proxied
    stack.bridge_json("service", "create", "Payments")
    created = stack.bridge_json(
        "integration", "create", "--service", "payments", "--secret", "s3cr3t"
    )
    url = f"{stack.base_url}/api/integrations/sentry?integrationId={created['id']}"
    deliveries = []
    for number in range(ISSUES * PER_ISSUE):
        _resource, payload = load("integration_issue_created")
        payload["data"]["issue"]["id"] = f"77{number % ISSUES}"
        seen_at(payload, T_EVENTS + number)  # each a distinct event: distinct signed bytes
        deliveries.append(
            build(payload, resource="issue", secret="s3cr3t", request_id=uuid.uuid4().hex)
        )

    answers: list[tuple[int, str]] = []
    lock = threading.Lock()
    cursor = iter(range(len(deliveries)))

    def worker() -> None:
        while True:
            with lock:
                index = next(cursor, None)
            if index is None:
                return
            status, answer = post(url, deliveries[index].body, deliveries[index].headers)
            with lock:
                answers.append((status, answer.get("action", "")))
            time.sleep(0.05)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    while len(answers) < 15:
        time.sleep(0.01)
    proxy.cut()
    while len(answers) < 40:
        time.sleep(0.01)
    proxy.restore()
    for thread in threads:
        thread.join(timeout=120)

    assert len(answers) == len(deliveries)
    assert {status for status, _ in answers} == {202}, answers
    spooled = sum(1 for _, action in answers if action == "spooled")
    assert spooled >= 10, f"the cut should have sent deliveries to the spool: {answers}"

    deadline = time.monotonic() + 90
    while True:
        pending = stack.bridge_json("spool", "status")["pending"]
        listed = stack.bridge_json("incident", "list", "--json")
        total = sum(incident["event_count"] for incident in listed)
        if pending == 0 and total >= len(deliveries):
            break
        assert time.monotonic() < deadline, f"spool pending {pending}, events applied {total}"
        time.sleep(0.5)

    assert len(listed) == ISSUES
    assert sorted(incident["event_count"] for incident in listed) == [PER_ISSUE] * ISSUES
    assert "spool: applied" in stack.log_text()
