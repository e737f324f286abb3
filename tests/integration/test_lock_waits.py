"""A delivery that waits on a row lock past its deadline is spooled, but it is no outage:
the gate that spools every later delivery stays open, and the next ones apply at once."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import create_engine, select, text

from app import create_app
from app.extensions import Bridge
from app.services import catalog
from app.services.spooled_deliveries import drain_spool
from app.store.models import Base, Incident
from app.web.admission import ADMISSIONS, ARRIVED_AT_KEY, LATE_ANSWERS, AdmissionControl
from tests.support.databases import make_settings
from tests.support.payloads import build, load, seen_at

# Each test times a cancelled wait against the deadline that cancelled it.
pytestmark = pytest.mark.timing


@pytest.fixture
def pg_app(postgres_url: str, tmp_path: Path, encryption_key: str) -> Iterator[Flask]:
    application = create_app(
        make_settings(postgres_url, tmp_path, encryption_key, database_delivery_timeout_ms=300)
    )
    try:
        yield application
    finally:
        application.extensions["bridge"].database.dispose()
        cleaner = create_engine(postgres_url)
        with cleaner.begin() as connection:
            for table in reversed(Base.metadata.sorted_tables):
                connection.execute(table.delete())
        cleaner.dispose()


def _event(secret: str, at: int) -> Any:
    resource, payload = load("integration_issue_created")
    return build(seen_at(payload, at), resource=resource, secret=secret, timestamp=at)


def test_a_lock_wait_past_the_deadline_spools_one_delivery_without_tripping_the_gate(
    pg_app: Flask, postgres_url: str
) -> None:
    bridge: Bridge = pg_app.extensions["bridge"]
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        service = catalog.create_service(session, "Payments", now)
        made = catalog.create_integration(session, bridge.secrets, service, now, secret="s3cr3t")
    url = f"/api/integrations/sentry?integrationId={made.integration.id}"
    client = pg_app.test_client()
    first = _event("s3cr3t", 1_790_000_000)
    assert client.post(url, data=first.body, headers=first.headers).get_json()["action"] == (
        "triggered"
    )
    lock_waits = ADMISSIONS.labels(decision="spooled_lock_wait")._value.get()

    holder = create_engine(postgres_url)
    try:
        with holder.connect() as connection, connection.begin():
            # Another delivery of the same issue holds its incident's row lock.
            connection.execute(text("SELECT id FROM incidents FOR UPDATE"))
            waiting = _event("s3cr3t", 1_790_000_010)
            started = time.monotonic()
            answer = client.post(url, data=waiting.body, headers=waiting.headers)
            elapsed = time.monotonic() - started
    finally:
        holder.dispose()

    assert answer.status_code == 202
    assert answer.get_json()["action"] == "spooled"
    assert 0.3 <= elapsed < 1.0  # the deadline, then the server's own cancel: no cut
    assert bridge.database.outage.is_tripped is False
    assert ADMISSIONS.labels(decision="spooled_lock_wait")._value.get() == lock_waits + 1

    # The database was never down: the next delivery is applied, not spooled.
    after = _event("s3cr3t", 1_790_000_020)
    assert client.post(url, data=after.body, headers=after.headers).get_json()["action"] == (
        "deduplicated"
    )
    report = drain_spool(bridge.database, bridge.secrets, bridge.spool, 1024 * 1024)
    assert (report.applied, report.remaining) == (1, 0)
    with bridge.database.reading() as session:
        assert session.scalars(select(Incident.event_count)).one() == 3


@pytest.fixture
def sqlite_app(sqlite_url: str, tmp_path: Path, encryption_key: str) -> Iterator[Flask]:
    application = create_app(
        make_settings(sqlite_url, tmp_path, encryption_key, database_delivery_timeout_ms=200)
    )
    try:
        yield application
    finally:
        bridge: Bridge = application.extensions["bridge"]
        with bridge.database.transaction() as session:
            for table in reversed(Base.metadata.sorted_tables):
                session.execute(table.delete())
        bridge.database.dispose()


def test_sqlites_write_lock_held_past_the_deadline_spools_without_tripping_the_gate(
    sqlite_app: Flask, sqlite_url: str
) -> None:
    bridge: Bridge = sqlite_app.extensions["bridge"]
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        service = catalog.create_service(session, "Payments", now)
        made = catalog.create_integration(session, bridge.secrets, service, now, secret="s3cr3t")
    url = f"/api/integrations/sentry?integrationId={made.integration.id}"
    client = sqlite_app.test_client()

    holder = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")  # another process writes (a drain batch, a job)
        waiting = _event("s3cr3t", 1_790_000_000)
        started = time.monotonic()
        answer = client.post(url, data=waiting.body, headers=waiting.headers)
        elapsed = time.monotonic() - started
        holder.execute("ROLLBACK")
    finally:
        holder.close()

    assert answer.status_code == 202, answer.get_json()
    assert answer.get_json()["action"] == "spooled"
    assert 0.2 <= elapsed < 1.0  # the lock wait's bound, not SQLite's 30 s busy timeout
    assert bridge.database.outage.is_tripped is False
    after = _event("s3cr3t", 1_790_000_010)
    assert client.post(url, data=after.body, headers=after.headers).get_json()["action"] == (
        "triggered"
    )
    report = drain_spool(bridge.database, bridge.secrets, bridge.spool, 1024 * 1024)
    assert (report.applied, report.remaining) == (1, 0)
    with bridge.database.reading() as session:
        assert session.scalars(select(Incident.event_count)).one() == 2


def test_an_admitted_delivery_never_runs_past_its_senders_second(
    pg_app: Flask, postgres_url: str
) -> None:
    bridge: Bridge = pg_app.extensions["bridge"]
    # A generous admission budget, so that a delivery 0.8 s old is still admitted.
    pg_app.extensions["bridge_admission"] = AdmissionControl(slots=4, wait_seconds=1.0)
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        service = catalog.create_service(session, "Payments", now)
        made = catalog.create_integration(session, bridge.secrets, service, now, secret="s3cr3t")
    url = f"/api/integrations/sentry?integrationId={made.integration.id}"
    client = pg_app.test_client()
    first = _event("s3cr3t", 1_790_000_000)
    assert client.post(url, data=first.body, headers=first.headers).status_code == 202
    late_before = LATE_ANSWERS._value.get()

    holder = create_engine(postgres_url)
    try:
        with holder.connect() as connection, connection.begin():
            connection.execute(text("SELECT id FROM incidents FOR UPDATE"))
            waiting = _event("s3cr3t", 1_790_000_010)
            started = time.monotonic()
            answer = client.post(
                url,
                data=waiting.body,
                headers=waiting.headers,
                environ_base={ARRIVED_AT_KEY: time.time() - 0.8},
            )
            elapsed = time.monotonic() - started
    finally:
        holder.dispose()

    assert answer.get_json()["action"] == "spooled"
    # Cancelled at what was left of the second (0.05 s), not at the 300 ms statement deadline.
    assert elapsed < 0.29
    assert LATE_ANSWERS._value.get() == late_before
    assert bridge.database.outage.is_tripped is False
