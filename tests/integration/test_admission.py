"""Admission control: a worker applies a bounded number of deliveries at once; one that
cannot start within its budget, or that arrived longer ago than the sender waits, is kept
in the spool and answered 202 "spooled" (app/web/admission.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import Bridge
from app.services.spooled_deliveries import drain_spool
from app.store.models import Delivery, Incident
from app.web import webhooks
from app.web.admission import (
    ADMISSIONS,
    ARRIVED_AT_KEY,
    LATE_ANSWERS,
    LISTEN_BACKLOG_KEY,
    AdmissionControl,
    listen_backlog,
)
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load, seen_at


@pytest.fixture
def control(app: Flask, bridge: Bridge) -> Iterator[AdmissionControl]:
    """One apply slot and a 100 ms budget in place of the worker's own; spool emptied."""
    made = AdmissionControl(slots=1, wait_seconds=0.1)
    previous = app.extensions.get("bridge_admission")
    app.extensions["bridge_admission"] = made
    try:
        yield made
    finally:
        if previous is None:
            app.extensions.pop("bridge_admission", None)
        else:
            app.extensions["bridge_admission"] = previous
        for path in bridge.spool.pending():
            bridge.spool.remove(path)


def _count(decision: str) -> float:
    return ADMISSIONS.labels(decision=decision)._value.get()


_SENT = iter(range(1_790_000_000, 1_800_000_000, 10))


def _post(client: FlaskClient, integration: MadeIntegration, **environ: Any) -> tuple[float, Any]:
    """A new event of the same issue (each a different body: lastSeen moves on)."""
    resource, payload = load("integration_issue_created")
    at = next(_SENT)
    delivery = build(
        seen_at(payload, at), resource=resource, secret=integration.secret, timestamp=at
    )
    started = time.monotonic()
    response = client.post(
        integration.url, data=delivery.body, headers=delivery.headers, environ_base=environ
    )
    assert response.status_code == 202, response.get_json()
    return time.monotonic() - started, response.get_json()


@pytest.mark.timing
def test_a_full_worker_spools_the_delivery_within_its_budget_and_the_drain_applies_it(
    client: FlaskClient,
    bridge: Bridge,
    control: AdmissionControl,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    busy_before = _count("spooled_busy")

    with control.slot(time.time()) as held:  # another delivery is applying
        assert held.ok
        elapsed, answer = _post(client, integration)

    assert answer["action"] == "spooled" and answer["spool_id"]
    assert "busy" in answer["reason"]
    assert 0.09 <= elapsed < 0.5  # waited for the budget, not for the database
    assert _count("spooled_busy") == busy_before + 1
    assert len(bridge.spool.pending()) == 1
    with bridge.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0

    # The slot is free again: the next delivery is applied at once.
    _elapsed, applied = _post(client, integration)
    assert applied["action"] == "triggered"
    report = drain_spool(bridge.database, bridge.secrets, bridge.spool, 64 * 1024)
    assert (report.applied, report.remaining) == (1, 0)
    with bridge.database.reading() as session:
        assert session.scalars(select(Incident.event_count)).one() == 2


@pytest.mark.timing
def test_a_request_older_than_the_senders_deadline_is_spooled_not_applied(
    client: FlaskClient,
    bridge: Bridge,
    control: AdmissionControl,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    late_before, late_answers = _count("spooled_late"), LATE_ANSWERS._value.get()

    elapsed, answer = _post(client, integration, **{ARRIVED_AT_KEY: time.time() - 1.5})

    assert answer["action"] == "spooled"
    assert elapsed < 0.1  # at once: no wait for a slot, no database
    assert _count("spooled_late") == late_before + 1
    assert LATE_ANSWERS._value.get() == late_answers  # spooled, so not a late answer
    with bridge.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0


def test_a_request_that_queued_past_the_budget_is_spooled_even_with_a_free_slot(
    client: FlaskClient,
    control: AdmissionControl,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    busy_before = _count("spooled_busy")

    _elapsed, answer = _post(client, integration, **{ARRIVED_AT_KEY: time.time() - 0.3})

    assert answer["action"] == "spooled"
    assert _count("spooled_busy") == busy_before + 1


# Applied only if the request reaches its slot within the fixture's 100 ms budget.
@pytest.mark.timing
def test_a_fresh_request_with_a_free_slot_is_applied_and_counted_admitted(
    client: FlaskClient,
    control: AdmissionControl,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    integration = make_integration(secret="s3cr3t")
    admitted_before = _count("admitted")

    _elapsed, answer = _post(client, integration, **{ARRIVED_AT_KEY: time.time()})

    assert answer["action"] == "triggered"
    assert _count("admitted") == admitted_before + 1


def test_the_slot_count_bounds_concurrent_holders() -> None:
    control = AdmissionControl(slots=2, wait_seconds=0.05)
    now = time.time()
    with control.slot(now) as first, control.slot(now) as second, control.slot(now) as third:
        assert (first.ok, second.ok, third.ok) == (True, True, False)
        assert third.decision == "spooled_busy"
    with control.slot(time.time()) as again:
        assert again.ok  # released on exit


# The waiter thread must be waiting for the slot 50 ms after it was started.
@pytest.mark.timing
def test_beyond_the_waiting_room_a_delivery_is_spooled_at_once() -> None:
    control = AdmissionControl(slots=1, wait_seconds=0.5, max_waiting=1)
    now = time.time()
    with control.slot(now) as held:
        assert held.ok
        waiter = threading.Thread(target=lambda: _hold(control, now), daemon=True)
        waiter.start()
        time.sleep(0.05)  # the waiter now waits for the slot
        started = time.monotonic()
        with control.slot(now) as third:
            assert third.decision == "spooled_busy"
        assert time.monotonic() - started < 0.05  # not the 0.5 s budget
    waiter.join(2)


def _hold(control: AdmissionControl, arrived: float) -> None:
    with control.slot(arrived):
        pass


def test_a_delivery_applied_too_late_to_commit_in_time_is_rolled_back_and_spooled(
    app: Flask,
    client: FlaskClient,
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Arrived 0.3 s ago, its transaction due 0.85 s after arrival, and (for the test) a
    # commit reserve of 0.6 s: the apply is done well within its statements' deadline but
    # after the last moment to send the COMMIT, so it is rolled back and spooled.
    monkeypatch.setattr(webhooks, "_COMMIT_RESERVE_SECONDS", 0.6)
    app.extensions["bridge_admission"] = AdmissionControl(slots=1, wait_seconds=0.95)
    integration = make_integration(secret="s3cr3t")
    spooled_before = _count("spooled_before_commit")
    late_answers = LATE_ANSWERS._value.get()
    try:
        _elapsed, answer = _post(client, integration, **{ARRIVED_AT_KEY: time.time() - 0.3})
    finally:
        app.extensions.pop("bridge_admission", None)

    assert answer["action"] == "spooled"
    assert _count("spooled_before_commit") == spooled_before + 1
    assert LATE_ANSWERS._value.get() == late_answers
    with bridge.database.reading() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == 0
    report = drain_spool(bridge.database, bridge.secrets, bridge.spool, 64 * 1024)
    assert (report.applied, report.remaining) == (1, 0)
    with bridge.database.reading() as session:
        assert session.scalars(select(Incident.event_count)).one() == 1


def test_while_connections_wait_to_be_accepted_a_delivery_is_spooled_without_a_slot(
    app: Flask,
    client: FlaskClient,
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    # Overload: more connections wait in the kernel's accept queue than the limit. The
    # delivery goes to the spool at once, though a slot is free and it is fresh.
    app.extensions["bridge_admission"] = AdmissionControl(slots=1, wait_seconds=0.95, max_backlog=8)
    integration = make_integration(secret="s3cr3t")
    backlog_before, admitted_before = _count("spooled_backlog"), _count("admitted")
    try:
        _elapsed, answer = _post(
            client,
            integration,
            **{ARRIVED_AT_KEY: time.time(), LISTEN_BACKLOG_KEY: lambda: 9},
        )
        # At the limit (8 waiting) the next one is applied as usual.
        _elapsed, applied = _post(
            client,
            integration,
            **{ARRIVED_AT_KEY: time.time(), LISTEN_BACKLOG_KEY: lambda: 8},
        )
    finally:
        app.extensions.pop("bridge_admission", None)

    assert answer["action"] == "spooled" and "busy" in answer["reason"]
    assert applied["action"] == "triggered"
    assert _count("spooled_backlog") == backlog_before + 1
    assert _count("admitted") == admitted_before + 1
    report = drain_spool(bridge.database, bridge.secrets, bridge.spool, 64 * 1024)
    assert (report.applied, report.remaining) == (1, 0)
    with bridge.database.reading() as session:
        assert session.scalars(select(Incident.event_count)).one() == 2


def test_the_backlog_decides_only_when_a_limit_is_set_and_the_worker_can_read_it() -> None:
    now = time.time()
    unlimited = AdmissionControl(slots=1, wait_seconds=0.1)
    with unlimited.slot(now, backlog=10_000) as admitted:
        assert admitted.ok
    limited = AdmissionControl(slots=1, wait_seconds=0.1, max_backlog=0)
    with limited.slot(now, backlog=None) as unknown:  # not Linux, or not TCP
        assert unknown.ok
    with limited.slot(now, backlog=1) as refused:
        assert (refused.ok, refused.decision) == (False, "spooled_backlog")
    with limited.slot(now, backlog=0) as idle:
        assert idle.ok  # the refused one took no slot


def test_listen_backlog_reads_the_workers_function_and_ignores_anything_else() -> None:
    assert listen_backlog({LISTEN_BACKLOG_KEY: lambda: 3}) == 3
    assert listen_backlog({LISTEN_BACKLOG_KEY: lambda: None}) is None
    assert listen_backlog({LISTEN_BACKLOG_KEY: "3"}) is None
    assert listen_backlog({}) is None


def test_the_workers_own_admission_waits_as_long_as_the_configured_sender(
    app: Flask, client: FlaskClient, make_integration: Callable[..., MadeIntegration]
) -> None:
    # The test app's sender waits 30 s (tests/support/databases.py), not Sentry's second:
    # a delivery that reached the worker 1.5 s ago is still applied, not spooled late.
    app.extensions.pop("bridge_admission", None)
    integration = make_integration(secret="s3cr3t")
    late_before = _count("spooled_late")

    _elapsed, answer = _post(client, integration, **{ARRIVED_AT_KEY: time.time() - 1.5})

    assert answer["action"] == "triggered"
    assert app.extensions["bridge_admission"].deadline_seconds == 30.0
    assert _count("spooled_late") == late_before
