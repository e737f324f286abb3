"""Replays of a captured signed body (issue 13): Sentry signs the body only, so the
unsigned headers (`Request-ID`, `Sentry-Hook-Timestamp`) must never make it act as new.

Payloads are the Sentry fixtures of tests/fixtures/sentry (integration-platform issue
webhooks), signed over their raw bytes; the attacker re-sends those exact bytes with
headers of their choosing.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import Bridge
from app.services.replays import replay_delivery
from app.services.retention import prune_deliveries
from app.store.models import DeliveryBodyClaim
from tests.support.integrations import MadeIntegration
from tests.support.payloads import Delivery, build
from tests.support.receiver import deliver_at_once, deliveries, incidents, issue, post

Make = Callable[..., MadeIntegration]
SECRET = "s3cr3t-for-replays"


def resent(captured: Delivery, timestamp: int) -> Delivery:
    """The captured bytes and signature under a new Request-ID and hook timestamp."""
    headers = dict(captured.headers)
    headers["Request-ID"] = uuid.uuid4().hex
    headers["Sentry-Hook-Timestamp"] = str(timestamp)
    return Delivery(body=captured.body, headers=headers)


def test_a_captured_signed_body_resent_with_new_headers_is_a_duplicate_of_the_first(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    now = int(time.time())
    captured = build(
        issue("created", last_seen=now - 60), resource="issue", secret=SECRET, timestamp=now - 60
    )
    first = post(client, integration, captured).get_json()

    answer = post(client, integration, resent(captured, now)).get_json()

    assert answer["action"] == "duplicate_delivery"
    assert f"delivery {first['delivery_id']}" in answer["reason"]
    [incident] = incidents(bridge)
    assert incident.event_count == 1
    assert [d.decision for d in deliveries(bridge)] == ["triggered", "duplicate_delivery"]


def test_a_captured_resolve_cannot_resolve_the_issue_again_after_a_regression(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    now = int(time.time())
    post(
        client,
        integration,
        build(issue("created", last_seen=now - 300), resource="issue", secret=SECRET,
              timestamp=now - 300),
    )  # fmt: skip
    resolve = build(issue("resolved"), resource="issue", secret=SECRET, timestamp=now - 200)
    assert post(client, integration, resolve).get_json()["action"] == "resolved"
    regression = build(
        issue("unresolved", last_seen=now - 100), resource="issue", secret=SECRET,
        timestamp=now - 100,
    )  # fmt: skip
    assert post(client, integration, regression).get_json()["action"] == "reopened"

    answer = post(client, integration, resent(resolve, now)).get_json()

    assert answer["action"] == "duplicate_delivery"
    [incident] = incidents(bridge)
    assert incident.status == "triggered"


def test_an_event_body_resent_after_its_hash_was_pruned_is_as_old_as_its_event(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    now = int(time.time())
    event_at = now - 7200
    captured = build(
        issue("created", last_seen=event_at), resource="issue", secret=SECRET, timestamp=event_at
    )
    post(client, integration, captured)
    resolve = build(issue("resolved"), resource="issue", secret=SECRET, timestamp=event_at + 60)
    assert post(client, integration, resolve).get_json()["action"] == "resolved"
    with bridge.database.transaction() as session:  # the retention period has passed
        prune_deliveries(session, datetime.now(UTC) + timedelta(seconds=1))
    with bridge.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(DeliveryBodyClaim)) == 0

    # A fresh Sentry-Hook-Timestamp would make the two-hour-old event newer than the
    # resolution; the signed lastSeen says when it happened.
    answer = post(client, integration, resent(captured, now)).get_json()

    assert answer["action"] == "ignored"
    assert "stale delivery" in answer["reason"]
    assert [incident.status for incident in incidents(bridge)] == ["resolved"]


def test_concurrent_resends_of_one_signed_body_apply_once(
    app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    now = int(time.time())
    captured = build(
        issue("created", last_seen=now - 10), resource="issue", secret=SECRET, timestamp=now - 10
    )

    answers = deliver_at_once(app, integration, lambda: resent(captured, now), 8)

    assert sorted(body["action"] for _, body in answers) == ["duplicate_delivery"] * 7 + [
        "triggered"
    ]
    [incident] = incidents(bridge)
    assert incident.event_count == 1


def test_a_person_can_still_replay_a_signed_delivery_from_the_inspector(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    now = int(time.time())
    captured = build(
        issue("created", last_seen=now - 60), resource="issue", secret=SECRET, timestamp=now - 60
    )
    first = post(client, integration, captured).get_json()

    with bridge.database.transaction() as session:
        outcome = replay_delivery(
            session,
            first["delivery_id"],
            "admin@example.com",
            bridge.secrets,
            bridge.settings.max_body_bytes,
            datetime.now(UTC),
        )

    assert outcome.action == "deduplicated"
    [incident] = incidents(bridge)
    assert incident.event_count == 2


def test_an_unsigned_integration_counts_a_repeated_body_as_another_event(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    # Without a secret nothing is signed: the integration id is the credential, and
    # whoever holds it can send any body, so the body claim would protect nothing and
    # would turn a hand-written `curl` sent twice into a duplicate.
    integration = make_integration()
    body = build(issue("created"), resource="issue")

    post(client, integration, body)
    answer = post(client, integration, resent(body, int(time.time()))).get_json()

    assert answer["action"] == "deduplicated"
