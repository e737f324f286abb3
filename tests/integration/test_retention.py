"""Old deliveries are pruned; incidents and their timelines stay."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from app.extensions import Bridge
from app.jobs.prune import run_prune
from app.store.models import Delivery, DeliveryClaim, Incident, TimelineEntry
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build


def count(bridge: Bridge, model: type) -> int:
    with bridge.database.transaction() as session:
        return int(session.scalar(select(func.count()).select_from(model)) or 0)


def test_prune_removes_only_deliveries_older_than_the_retention(
    client: FlaskClient, bridge: Bridge, make_integration: Callable[..., MadeIntegration]
) -> None:
    integration = make_integration()
    for _ in range(3):
        delivery = build("integration_issue_created")
        client.post(integration.url, data=delivery.body, headers=delivery.headers)
    old = datetime.now(UTC) - timedelta(days=bridge.settings.delivery_retention_days + 1)
    with bridge.database.transaction() as session:
        first_two = list(session.scalars(select(Delivery.id).order_by(Delivery.id).limit(2)))
        session.execute(update(Delivery).where(Delivery.id.in_(first_two)).values(received_at=old))

    removed = run_prune(bridge)

    assert removed == 2
    assert count(bridge, Delivery) == 1
    assert count(bridge, DeliveryClaim) == 1  # claims of pruned deliveries go with them
    assert count(bridge, Incident) == 1
    with bridge.database.transaction() as session:
        entries = list(session.scalars(select(TimelineEntry).order_by(TimelineEntry.id)))
    assert len(entries) == 3
    assert [entry.delivery_id is None for entry in entries] == [True, True, False]


def test_prune_works_in_batches_until_nothing_old_is_left(
    client: FlaskClient, bridge: Bridge, make_integration: Callable[..., MadeIntegration]
) -> None:
    from app.services.retention import prune_deliveries

    integration = make_integration()
    for _ in range(5):
        delivery = build("integration_issue_created")
        client.post(integration.url, data=delivery.body, headers=delivery.headers)
    future = datetime.now(UTC) + timedelta(seconds=5)
    with bridge.database.transaction() as session:
        assert prune_deliveries(session, future, batch_size=2) == 2
    short_retention = replace(bridge.settings, delivery_retention_days=0)
    original = bridge.settings
    bridge.settings = short_retention
    try:
        assert run_prune(bridge) == 3
    finally:
        bridge.settings = original
    assert count(bridge, Delivery) == 0


def test_prune_removes_finished_jobs_but_never_pending_ones(bridge: Bridge) -> None:
    from app.store.models import SentryJob

    now = datetime.now(UTC)
    old = now - timedelta(days=bridge.settings.delivery_retention_days + 1)
    with bridge.database.transaction() as session:
        for status, when in [("done", old), ("failed", old), ("pending", old), ("done", now)]:
            session.add(
                SentryJob(
                    kind="enrich",
                    status=status,
                    attempts=0,
                    run_after=when,
                    created_at=when,
                    updated_at=when,
                )
            )

    run_prune(bridge)

    with bridge.database.transaction() as session:
        left = sorted(
            (job.status, job.updated_at == now) for job in session.scalars(select(SentryJob))
        )
    assert left == [("done", True), ("pending", False)]
