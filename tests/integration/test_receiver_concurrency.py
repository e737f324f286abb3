"""Deliveries that race each other, with Sentry's Request-IDs, on SQLite and PostgreSQL.

On PostgreSQL the Request-ID claim and the lock of the open incident are one statement
(app/store/receiver_rows.py); these tests hold it to what separate statements promised.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import select, text
from sqlalchemy.exc import OperationalError

from app.extensions import Bridge
from app.store import receiver_rows as rows
from app.store.models import TimelineEntry
from tests.support.integrations import MadeIntegration
from tests.support.payloads import Delivery, build
from tests.support.receiver import (
    T0,
    deliver_at_once,
    deliveries,
    incidents,
    issue,
    send_issue,
)

Make = Callable[..., MadeIntegration]


def created() -> Delivery:
    """Sentry's issue.created, with a Request-ID of its own."""
    return build("integration_issue_created")


def test_racing_events_of_a_new_issue_count_once_each(
    app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()

    answers = deliver_at_once(app, integration, created, 12)

    assert [status for status, _ in answers] == [202] * 12
    [incident] = incidents(bridge)
    assert incident.event_count == 12
    assert sorted(body["incident"]["event_count"] for _, body in answers) == list(range(1, 13))


def test_racing_events_of_an_open_incident_are_in_the_timeline_in_order(
    app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    deliver_at_once(app, integration, created, 1)

    answers = deliver_at_once(app, integration, created, 12)

    assert sorted(body["incident"]["event_count"] for _, body in answers) == list(range(2, 14))
    [incident] = incidents(bridge)
    assert incident.event_count == 13
    with bridge.database.transaction() as session:
        counted = [
            entry.data["event_count"]
            for entry in session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.kind == "retriggered")
                .order_by(TimelineEntry.id)
            )
        ]
    assert counted == list(range(2, 14))


@pytest.mark.parametrize("is_open", [False, True], ids=["new issue", "open incident"])
def test_one_request_id_sent_eight_times_at_once_is_applied_once(
    app: Flask, bridge: Bridge, make_integration: Make, is_open: bool
) -> None:
    integration = make_integration()
    if is_open:
        deliver_at_once(app, integration, created, 1)
    same = created()

    answers = deliver_at_once(app, integration, lambda: same, 8)

    assert [status for status, _ in answers] == [202] * 8
    applied = "deduplicated" if is_open else "triggered"
    assert sorted(body["action"] for _, body in answers) == sorted(
        [applied] + ["duplicate_delivery"] * 7
    )
    [incident] = incidents(bridge)
    assert incident.event_count == (2 if is_open else 1)
    assert len(deliveries(bridge)) == 8 + (1 if is_open else 0)  # every one is stored


def test_racing_events_after_a_resolve_reopen_it_once(
    app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    now = int(time.time())
    send_issue(app.test_client(), integration, "created", now - 100)
    send_issue(app.test_client(), integration, "resolved", now - 50)

    def again() -> Delivery:
        # A regression: Sentry's own issue.created never reopens (it is sent once per issue).
        return build(issue("unresolved", last_seen=now - 10), resource="issue", timestamp=now - 10)

    answers = deliver_at_once(app, integration, again, 10)

    assert sorted(body["action"] for _, body in answers) == ["deduplicated"] * 9 + ["reopened"]
    [incident] = incidents(bridge)
    assert (incident.event_count, incident.reopen_count) == (11, 1)


def test_the_claimed_delivery_holds_its_incident_until_it_commits(
    app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    first = app.test_client().post(integration.url, data=created().body).get_json()
    [incident] = incidents(bridge)

    with bridge.database.transaction() as session:
        earlier, locked = rows.claim_delivery(
            session.connection(),
            integration.id,
            first["delivery_id"],
            datetime.now(UTC),
            request_id=uuid.uuid4().hex,
            lock=(incident.service_id, incident.dedup_key),
        )
        assert earlier is None
        assert locked is not None and locked.id == incident.id
        with bridge.database.engine.connect() as other:
            with pytest.raises(OperationalError):
                if bridge.database.is_postgresql:
                    other.execute(
                        text("SELECT id FROM incidents WHERE id = :id FOR UPDATE NOWAIT"),
                        {"id": incident.id},
                    )
                else:  # SQLite locks the whole database for the writer: no other one begins
                    driver = other.connection.driver_connection
                    assert driver is not None
                    driver.execute("PRAGMA busy_timeout = 0")
                    other.exec_driver_sql("SELECT 1")  # its BEGIN IMMEDIATE fails at once
            # Never back to the pool without its busy timeout: later writers would fail.
            other.invalidate()
        session.rollback()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_resolve_that_waited_on_its_request_id_finds_an_incident_opened_meanwhile(
    app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    # PostgreSQL only: SQLite lets one writer in at a time, so nothing opens "meanwhile".
    integration = make_integration(secret="s3cr3t")
    sibling = make_integration()
    other_issue = issue("created")
    other_issue["data"]["issue"]["id"] = "999"
    unrelated = build(other_issue, resource="issue", secret="s3cr3t", timestamp=T0)
    some_delivery = app.test_client().post(
        integration.url, data=unrelated.body, headers=unrelated.headers
    )
    request_id = uuid.uuid4().hex
    engine = bridge.database.engine
    holder = engine.connect()
    holder.begin()
    # Another delivery of the same Request-ID is in flight (claimed, not committed).
    rows.claim_delivery(
        holder,
        integration.id,
        some_delivery.get_json()["delivery_id"],
        datetime.now(UTC),
        request_id=request_id,
    )
    resolve = build(
        issue("resolved"),
        resource="issue",
        secret="s3cr3t",
        request_id=request_id,
        timestamp=T0 + 60,
    )
    answers: list[dict[str, Any]] = []
    waiting = threading.Thread(
        target=lambda: answers.append(
            app.test_client()
            .post(integration.url, data=resolve.body, headers=resolve.headers)
            .get_json()
        )
    )
    waiting.start()
    try:
        _until_a_backend_waits_on_a_lock(engine)
        # Opened meanwhile through another integration of the service (one through the
        # same integration would also be found by its deliveries).
        opened = send_issue(app.test_client(), sibling, "created", T0)
    finally:
        holder.rollback()  # the in-flight one fails: the resolve's claim goes through
        holder.close()
    waiting.join(timeout=30)

    [answer] = answers
    assert answer["action"] == "resolved"
    assert answer["incident"]["id"] == opened["incident"]["id"]
    assert answer["incident"]["status"] == "resolved"


def _until_a_backend_waits_on_a_lock(engine: Any) -> None:
    deadline = time.monotonic() + 10
    with engine.connect() as watcher:
        while time.monotonic() < deadline:
            count = watcher.execute(
                text(
                    "SELECT count(*) FROM pg_stat_activity "
                    "WHERE wait_event_type = 'Lock' AND datname = current_database()"
                )
            ).scalar()
            watcher.rollback()
            if count:
                return
            time.sleep(0.02)
    raise AssertionError("the second delivery never waited on the Request-ID claim")
