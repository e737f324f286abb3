"""Several nodes: two gunicorn nodes (own instance folders and spools, the same
encryption keys, secret key and database) and two jobs processes, one beside each node,
on one PostgreSQL schema and one Redis.

- the rate limit is shared: a low limit, deliveries split across the nodes, the total
  admitted is the limit (and unknown ids are limited per address across nodes too);
- an alert storm split across both nodes gives exact incidents and event counts, while
  one node is stopped (SIGTERM) and one jobs process killed (SIGKILL) in the middle of
  it: a sender that loses its node sends the same delivery (same Request-ID) to the
  other, as it would through a load balancer; spools are drained afterwards;
- each periodic job ran once per interval (a one-second "minute"), by either process.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import subprocess
import threading
import time
import urllib.error
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from app.extensions import Bridge
from app.services import catalog
from config.settings import load_settings
from tests.support.payloads import build, load
from tests.support.ports import free_port
from tests.support.stack import (
    BIN,
    ROOT,
    Stack,
    drain_spool,
    post,
    stop,
    wait_until_healthy,
)

pytestmark = pytest.mark.e2e

LIMIT = 120  # deliveries a minute per integration, for the whole cluster (> the storm)
UNKNOWN_LIMIT = 6
ISSUES = 8
PER_ISSUE = 12
FAILED_OVER = (urllib.error.URLError, ConnectionError, TimeoutError, http.client.HTTPException)


@dataclass
class Node:
    stack: Stack
    web: subprocess.Popen[bytes]
    jobs: subprocess.Popen[bytes]
    jobs_log: Path

    @property
    def url(self) -> str:
        return self.stack.base_url


def _start(stack: Stack, tmp_path: Path, index: int, shared: dict[str, str]) -> Node:
    env = {
        **stack.env,
        **shared,
        "BRIDGE_INSTANCE_PATH": str(tmp_path / f"node{index}"),  # its own spool, too
        "PORT": str(free_port()),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)  # each node its own metrics folder
    node_stack = Stack(env=env)
    web_log = tmp_path / f"web{index}.log"
    jobs_log = tmp_path / f"jobs{index}.log"
    node_stack.logs += [web_log, jobs_log]
    with web_log.open("wb") as web_out, jobs_log.open("wb") as jobs_out:
        web = subprocess.Popen(
            [str(BIN / "gunicorn"), "-c", "config/gunicorn.conf.py", "wsgi:app"],
            cwd=ROOT,
            env=env,
            stdout=web_out,
            stderr=subprocess.STDOUT,
        )
        jobs = subprocess.Popen(
            [str(BIN / "bridge"), "jobs", "run"],
            cwd=ROOT,
            env=env,
            stdout=jobs_out,
            stderr=subprocess.STDOUT,
        )
    return Node(node_stack, web, jobs, jobs_log)


@pytest.fixture
def cluster(
    stack: Stack, tmp_path: Path, redis_url: str, redis_prefix: str
) -> Iterator[list[Node]]:
    shared = {
        "WEB_CONCURRENCY": "2",
        "BRIDGE_SECRET_KEY": uuid.uuid4().hex,
        "BRIDGE_RATE_LIMIT_URL": redis_url,
        "BRIDGE_RATE_LIMIT_PREFIX": redis_prefix,
        "BRIDGE_RATE_LIMIT_PER_MINUTE": str(LIMIT),
        "BRIDGE_UNKNOWN_RATE_LIMIT_PER_MINUTE": str(UNKNOWN_LIMIT),
        # Periodic jobs every second (prune) and every 2 s (token refresh).
        "BRIDGE_JOB_MINUTE_SECONDS": "1",
        "BRIDGE_PRUNE_INTERVAL_MINUTES": "1",
        "SENTRY_TOKEN_REFRESH_INTERVAL_MINUTES": "2",
    }
    nodes = [_start(stack, tmp_path, index, shared) for index in (0, 1)]
    try:
        for node in nodes:
            wait_until_healthy(node.url, node.web)
        yield nodes
    finally:
        for node in nodes:
            stop(node.web)
            stop(node.jobs)


def _issue_delivery(issue: int) -> tuple[bytes, dict[str, str]]:
    _resource, payload = load("integration_issue_created")
    payload["data"]["issue"]["id"] = f"77{issue}"
    delivery = build(payload, resource="issue", request_id=uuid.uuid4().hex)
    return delivery.body, delivery.headers


def _send_everywhere(
    nodes: list[Node],
    path: str,
    deliveries: list[tuple[bytes, dict[str, str]]],
    senders: int,
    failed_over: list[int] | None = None,
    into: list[tuple[int, str]] | None = None,
    pause: float = 0.0,
) -> list[tuple[int, str]]:
    """Send the deliveries from `senders` threads, delivery n to node n % 2; a delivery
    whose node is gone goes to the other (same bytes, same Request-ID). The answers:
    status, and the action of a 2xx (or the error code)."""
    statuses: list[tuple[int, str]] = [] if into is None else into
    lock = threading.Lock()
    work = list(enumerate(deliveries))

    def sender() -> None:
        while True:
            with lock:
                if not work:
                    return
                number, (body, headers) = work.pop(0)
            for attempt in range(2):
                url = nodes[(number + attempt) % 2].url + path
                try:
                    status, answer = post(url, body, headers)
                except FAILED_OVER:
                    if failed_over is not None:
                        with lock:
                            failed_over.append(number)
                    continue
                outcome = answer.get("action") or answer.get("error", {}).get("code", "")
                with lock:
                    statuses.append((status, str(outcome)))
                time.sleep(pause)  # a steady stream, so the stop lands in its middle
                break
            else:
                raise AssertionError(f"delivery {number} reached neither node")

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return statuses


def _assert_limited(
    answers: list[tuple[int, str]],
    limit: int,
    sent: int,
    admitted: tuple[int, str],
    is_spooled_limited: bool = True,
) -> None:
    counted = Counter(answers)
    # A delivery spooled on a loaded host spent the integration's budget before it was
    # spooled, like one applied at once: both count against the limit. (Not so for an
    # unknown integration id: no worker has a copy of it to say it is unknown.)
    spooled = counted.pop((202, "spooled"), 0)
    limited = counted.pop((429, "rate_limited"), 0)
    live = counted.pop(admitted, 0)
    assert not counted, f"unexpected answers: {counted}"
    assert live + spooled + limited == sent
    # The two nodes together never admitted more than the limit; each alone would have.
    counted_in = spooled if is_spooled_limited else 0
    assert live + counted_in <= limit
    assert limited >= sent - limit - (spooled - counted_in)
    assert limited > 0


def _bridge(stack: Stack) -> Bridge:
    return Bridge(load_settings(stack.env))


def _integrations(stack: Stack, *services: str) -> list[str]:
    """A service with an unsigned integration for each name; the integrations' ids (made
    in-process: a `bridge` command costs a start-up each)."""
    made = _bridge(stack)
    now = datetime.now(UTC)
    try:
        with made.database.transaction() as session:
            return [
                catalog.create_integration(
                    session, made.secrets, catalog.create_service(session, name, now), now
                ).integration.id
                for name in services
            ]
    finally:
        made.database.dispose()


def _event_counts(stack: Stack, service: str) -> list[int]:
    made = _bridge(stack)
    try:
        with made.database.transaction() as session:
            found = catalog.find_service(session, service)
            return [i.event_count for i in catalog.all_incidents(session, found)]
    finally:
        made.database.dispose()


def _runs(stack: Stack) -> tuple[dict[str, list[int]], Counter[str]]:
    """The slots each periodic job ran in, and how many prune runs each node claimed."""
    engine = create_engine(stack.env["DATABASE_URL"])
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT job, slot, node FROM job_runs ORDER BY job, slot")
            ).all()
    finally:
        engine.dispose()
    slots: dict[str, list[int]] = {}
    for job, slot, _node in rows:
        slots.setdefault(job, []).append(slot)
    return slots, Counter(node for job, _slot, node in rows if job == "prune_deliveries")


# Step 3 allows no skipped one-second interval: a loaded host's late scheduler fails it.
@pytest.mark.timing
@pytest.mark.parametrize("stack", ["postgres"], indirect=True)
def test_two_nodes_and_two_jobs_processes_behave_as_one_bridge(
    stack: Stack, cluster: list[Node]
) -> None:
    started = time.time()
    limited, stormed = _integrations(stack, "Payments", "Checkout")

    # 1. The limit holds across nodes: LIMIT + 20 deliveries, half to each node. On a
    # loaded machine some wait past the webhook's database deadline and are spooled (202):
    # they spent the shared budget first, so they count in.
    limited_path = f"/api/integrations/sentry?integrationId={limited}"
    answers = _send_everywhere(
        cluster, limited_path, [_issue_delivery(100 + n) for n in range(LIMIT + 20)], senders=4
    )
    _assert_limited(answers, LIMIT, LIMIT + 20, (202, "triggered"))
    unknown = _send_everywhere(
        cluster,
        "/api/integrations/sentry?integrationId=not-a-known-id",
        [_issue_delivery(n) for n in range(UNKNOWN_LIMIT + 4)],
        senders=2,
    )
    _assert_limited(
        unknown,
        UNKNOWN_LIMIT,
        UNKNOWN_LIMIT + 4,
        (404, "integration_not_found"),
        is_spooled_limited=False,
    )

    # 2. The storm, with node 1 stopped and node 0's jobs process killed in the middle.
    storm_path = f"/api/integrations/sentry?integrationId={stormed}"
    storm = [_issue_delivery(n % ISSUES) for n in range(ISSUES * PER_ISSUE)]
    answered: list[tuple[int, str]] = []
    failed_over: list[int] = []
    sending = threading.Thread(
        target=_send_everywhere,
        args=(cluster, storm_path, storm, 8, failed_over, answered, 0.03),
    )
    sending.start()
    deadline = time.monotonic() + 30
    while len(answered) < len(storm) // 4 and time.monotonic() < deadline:
        time.sleep(0.005)
    cluster[1].web.send_signal(signal.SIGTERM)
    os.kill(cluster[0].jobs.pid, signal.SIGKILL)
    sending.join(timeout=120)
    assert cluster[1].web.wait(timeout=30) == 0
    assert cluster[0].jobs.wait(timeout=10) == -signal.SIGKILL
    storm_done = time.time()
    assert failed_over, "node 1 stopped while the storm was still being sent"

    # Every delivery was answered 202 by one node or the other (a cut-off answer's
    # resend to the other node is a duplicate of the same Request-ID, applied once).
    assert len(answered) == len(storm)
    assert {status for status, _action in answered} == {202}, Counter(answered)
    for node in cluster:
        drain_spool(node.stack)
    counts = _event_counts(stack, "Checkout")
    assert len(counts) == ISSUES
    assert sorted(counts) == [PER_ISSUE] * ISSUES

    # 3. Periodic jobs: one run per interval, whichever process claimed it. Node 1's jobs
    # process ran throughout, so no interval from the first to the last run was skipped.
    # On a fast host the storm may be over within a token-refresh interval or two: the
    # check covers at least six seconds (three of them), waited out if need be.
    checked_until = max(storm_done, started + 6)
    time.sleep(max(0.0, checked_until + 2.5 - time.time()))
    # The survivor stopped first, so that no run falls between the table and its log.
    cluster[1].jobs.send_signal(signal.SIGTERM)
    assert cluster[1].jobs.wait(timeout=30) == 0
    runs, nodes = _runs(stack)
    for job, interval in (("prune_deliveries", 1), ("sentry_token_refresh", 2)):
        slots = runs.get(job, [])
        assert len(slots) == len(set(slots)), f"{job} ran twice in one interval: {slots}"
        span = range(int(started) // interval + 1, int(checked_until) // interval)
        assert set(span) <= set(slots), f"{job} missed an interval: {slots}"
    # Whoever ran one recorded it (the drains' jobs processes take part too); the
    # survivor logged each run it recorded (the killed one may have died between its
    # claim and its log line).
    survivor = f"{socket.gethostname()}:{cluster[1].jobs.pid}"[:64]
    logged = cluster[1].jobs_log.read_text(errors="replace")
    assert logged.count("periodic job prune_deliveries started") == nodes.get(survivor, 0)
