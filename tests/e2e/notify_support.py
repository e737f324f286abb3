"""What the notification end-to-end tests share: the jobs process beside gunicorn, Sentry
deliveries of distinct issues, and a look into the database the two processes share."""

from __future__ import annotations

import copy
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from app.extensions import Bridge
from app.services import catalog, channels
from config.settings import load_settings
from tests.support.payloads import build, load, parse_iso, seen_at
from tests.support.stack import BIN, ROOT, Stack, post

ISSUE_BASE = 4_800_000_000
# The environment every notification test runs gunicorn and the jobs process with: the
# ack links point at this gunicorn, a claimed row is re-sent 5 s after a crash (the
# settings' minimum), and two workers are enough for a handful of deliveries.
NOTIFY_ENV = {
    "BRIDGE_NOTIFY_LEASE_SECONDS": "5",
    "BRIDGE_NOTIFY_POLL_MS": "100",
    "BRIDGE_CHANNEL_TIMEOUT_SECONDS": "10",
    "WEB_CONCURRENCY": "2",
}


@dataclass
class JobsProcess:
    """`bridge jobs run` as its own process, with the stack's environment."""

    process: subprocess.Popen[bytes]
    log: Path

    def wait_started(self, seconds: float = 30) -> None:
        deadline = time.monotonic() + seconds
        while "scheduler started" not in self.log.read_text(errors="replace"):
            if self.process.poll() is not None:
                raise AssertionError(f"the jobs process exited: {self.log.read_text()}")
            assert time.monotonic() < deadline, "the jobs process did not start"
            time.sleep(0.1)

    def kill(self) -> None:
        """SIGKILL: no shutdown, no chance to record what is in flight."""
        self.process.kill()
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def start_jobs(stack: Stack, name: str, **extra_env: str) -> JobsProcess:
    log = Path(stack.env["BRIDGE_INSTANCE_PATH"]).parent / f"jobs-{name}.log"
    stack.logs.append(log)
    with log.open("ab") as out:
        process = subprocess.Popen(
            [str(BIN / "bridge"), "jobs", "run"],
            cwd=ROOT,
            env={**stack.env, **extra_env},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    started = JobsProcess(process, log)
    started.wait_started()
    return started


@contextmanager
def jobs_running(stack: Stack, name: str = "1", **extra_env: str) -> Iterator[JobsProcess]:
    started = start_jobs(stack, name, **extra_env)
    try:
        yield started
    finally:
        started.stop()


def setup_service(server: Stack, webhook: str | None = None) -> Setup:
    """The service Checkout, a signed integration and, given a receiver URL, a signed
    webhook channel to it.

    Made in this process through the same services the CLI calls: every `bridge` start-up
    costs 1.5 s, and the CLI itself is proven by test_server.py and by the first test here
    (which makes its channel with `bridge channel create`)."""
    bridge = Bridge(load_settings(server.env))
    now = datetime.now(UTC)
    try:
        with bridge.database.transaction() as session:
            service = catalog.create_service(session, "Checkout", now)
            made = catalog.create_integration(session, bridge.secrets, service, now, generate=True)
            hook = None
            if webhook is not None:
                hook = channels.create_channel(
                    session, bridge.secrets, service, now, kind="webhook", name="ops-hook",
                    url=webhook, generate_secret=True,
                )  # fmt: skip
            url = f"{server.base_url}/api/integrations/sentry?integrationId={made.integration.id}"
            assert made.secret is not None
            return Setup(url, made.secret, hook.secret if hook else None)
    finally:
        bridge.database.dispose()


@dataclass(frozen=True)
class Setup:
    url: str  # where Sentry delivers
    sentry_secret: str
    hook_secret: str | None  # the webhook channel's whsec_ secret


def issue_delivery(secret: str, issue: int, variant: int = 0) -> Any:
    """Sentry's `issue.created` for issue ISSUE_BASE + `issue`, its `variant`-th event
    (lastSeen moved on, so distinct signed bytes; the fixture's shape is Sentry's own)."""
    resource, template = load("integration_issue_created")
    payload = copy.deepcopy(template)
    data = payload["data"]["issue"]
    issue_id = ISSUE_BASE + issue
    data["id"] = str(issue_id)
    data["shortId"] = f"CHECKOUT-{issue:X}"
    data["title"] = f"TypeError: cart {issue} is undefined"
    data["web_url"] = f"https://acme-gmbh.sentry.io/issues/{issue_id}/"
    data["url"] = f"https://sentry.io/api/0/organizations/acme-gmbh/issues/{issue_id}/"
    seen = parse_iso(data["lastSeen"]).timestamp() + variant
    return build(seen_at(payload, seen), resource=resource, secret=secret)


def deliver(url: str, secret: str, issue: int, variant: int = 0) -> dict[str, Any]:
    delivery = issue_delivery(secret, issue, variant)
    status, answer = post(url, delivery.body, delivery.headers)
    assert status == 202, answer
    result: dict[str, Any] = answer
    return result


def deliver_many(url: str, secret: str, pairs: list[tuple[int, int]], threads: int = 8) -> None:
    """Deliver (issue, variant) pairs over `threads` concurrent connections."""
    work = list(pairs)
    lock = threading.Lock()
    failures: list[str] = []

    def worker() -> None:
        while True:
            with lock:
                if not work:
                    return
                issue, variant = work.pop(0)
            try:
                deliver(url, secret, issue, variant)
            except AssertionError as error:  # collected, so one failure names itself
                with lock:
                    failures.append(str(error))

    running = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in running:
        thread.start()
    for thread in running:
        thread.join(timeout=120)
    assert not failures, failures[:3]


def sql(stack: Stack, statement: str, **params: Any) -> list[Any]:
    """Rows of one statement on the stack's database, committed."""
    engine = create_engine(stack.env["DATABASE_URL"])
    try:
        with engine.begin() as connection:
            result = connection.execute(text(statement), params)
            return list(result.all()) if result.returns_rows else []
    finally:
        engine.dispose()


def quiet_for(seconds: float) -> None:
    """Give a wrong extra message the time to arrive before counting."""
    time.sleep(seconds)
