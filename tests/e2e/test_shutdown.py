"""SIGTERM to gunicorn in the middle of a burst: every delivery answered 2xx is applied."""

from __future__ import annotations

import signal
import subprocess
import threading
import time
import urllib.error
import uuid
from pathlib import Path

import pytest

from tests.support.payloads import build, load
from tests.support.stack import BIN, ROOT, Stack, drain_spool, post, wait_until_healthy

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_sigterm_during_a_burst_loses_no_answered_delivery(stack: Stack, tmp_path: Path) -> None:
    stack.bridge_json("service", "create", "Payments")
    created = stack.bridge_json("integration", "create", "--service", "payments")
    url = f"{stack.base_url}/api/integrations/sentry?integrationId={created['id']}"
    log_path = tmp_path / "gunicorn.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=stack.env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        wait_until_healthy(stack.base_url, server)
        answered: list[int] = []
        failed: list[str] = []
        lock = threading.Lock()

        def sender(worker: int) -> None:
            for number in range(15):
                _resource, payload = load("integration_issue_created")
                payload["data"]["issue"]["id"] = f"9{worker}"
                delivery = build(payload, resource="issue", request_id=uuid.uuid4().hex)
                try:
                    status, _answer = post(url, delivery.body, delivery.headers)
                except (urllib.error.URLError, ConnectionError, TimeoutError) as error:
                    with lock:
                        failed.append(type(error).__name__)
                    return  # the server is gone: a real sender would see this failure
                with lock:
                    answered.append(status)
                time.sleep(0.01 * (number % 3))

        threads = [threading.Thread(target=sender, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        while len(answered) < 30:
            time.sleep(0.005)
        server.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(timeout=60)
        exit_code = server.wait(timeout=60)
    # Deliveries spooled behind a row lock (answered 202) are applied by the jobs process.
    drain_spool(stack)

    assert exit_code == 0
    assert answered, "some deliveries were answered before the shutdown"
    assert set(answered) == {202}, answered
    listed = stack.bridge_json("incident", "list", "--json")
    applied = sum(incident["event_count"] for incident in listed)
    # Every 2xx was committed before it was sent: nothing answered was dropped. A request
    # cut off by the shutdown may still have been applied before its answer was lost.
    assert len(answered) <= applied <= len(answered) + len(failed)
    assert "Handling signal: term" in log_path.read_text(errors="replace")
