"""Sentry deliveries through the webhook in Flask's test client, and what they left behind."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.extensions import Bridge
from app.services.ingest import IngestOutcome, ingest_delivery
from app.store.models import Delivery, Incident, TimelineEntry
from tests.support import payloads
from tests.support.inbound import inbound_from
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load

T0 = 1_790_000_000  # a fixed Sentry-Hook-Timestamp base, in the past


def post(
    client: FlaskClient, integration: MadeIntegration, delivery: payloads.Delivery
) -> TestResponse:
    return client.post(integration.url, data=delivery.body, headers=delivery.headers)


def incidents(bridge: Bridge) -> list[Incident]:
    with bridge.database.transaction() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


def deliveries(bridge: Bridge) -> list[Delivery]:
    with bridge.database.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def timeline_kinds(bridge: Bridge, incident_id: int) -> list[str]:
    with bridge.database.transaction() as session:
        return list(
            session.scalars(
                select(TimelineEntry.kind)
                .where(TimelineEntry.incident_id == incident_id)
                .order_by(TimelineEntry.id)
            )
        )


def issue(
    action: str,
    status: str | None = None,
    level: str | None = None,
    last_seen: int | None = None,
) -> dict[str, Any]:
    fixture = {
        "created": "integration_issue_created",
        "resolved": "integration_issue_resolved",
        "assigned": "integration_issue_assigned",
        "ignored": "integration_issue_archived",
        "archived": "integration_issue_archived_legacy_action",
        "unresolved": "integration_issue_unresolved",
    }[action]
    _resource, payload = load(fixture)
    if status is not None:
        payload["data"]["issue"]["status"] = status
    if level is not None:
        payload["data"]["issue"]["level"] = level
    if last_seen is not None:
        payloads.seen_at(payload, last_seen)
    return payload


def send_issue(
    client: FlaskClient, integration: MadeIntegration, action: str, at: int, **changes: Any
) -> dict[str, Any]:
    delivery = build(
        issue(action, **changes), resource="issue", secret=integration.secret, timestamp=at
    )
    response = post(client, integration, delivery)
    assert response.status_code == 202, response.get_json()
    body = response.get_json()
    assert isinstance(body, dict)
    return body


def deliver_at_once(
    app: Flask, integration: MadeIntegration, make: Callable[[], payloads.Delivery], count: int
) -> list[tuple[int, dict[str, Any]]]:
    """`count` deliveries from as many threads, released together; their answers."""
    barrier = threading.Barrier(count)
    answers: list[tuple[int, dict[str, Any]]] = []

    def deliver() -> None:
        client = app.test_client()
        delivery = make()
        barrier.wait()
        response = client.post(integration.url, data=delivery.body, headers=delivery.headers)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=deliver) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert len(answers) == count, "a delivery did not finish within 60 s"
    return answers


def ingest(
    bridge: Bridge, integration: MadeIntegration, delivery: payloads.Delivery
) -> IngestOutcome:
    """The delivery through the ingest use case itself, in the edge's one transaction (for
    tests where the HTTP layer adds nothing): what became of it."""
    with bridge.database.transaction() as session:
        return ingest_delivery(
            session,
            inbound_from(integration, delivery),
            bridge.secrets,
            bridge.settings.max_body_bytes,
        )
