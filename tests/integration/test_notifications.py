"""Notifications end to end through the receiver, the outbox and the sender, on SQLite and
PostgreSQL. The channel adapters are replaced by a recording `send` (tests/support/notify):
what is sent, when, how often, and what each attempt leaves behind."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.channels.base import SendResult
from app.domain.errors import Conflict
from app.domain.lifecycle import HumanAction
from app.extensions import Bridge
from app.jobs.notify import NotificationSender
from app.services import notification_outbox
from app.services.incidents import act_on_incident
from app.store.models import TimelineEntry
from app.store.notify_models import Notification
from tests.support.integrations import MadeIntegration
from tests.support.notify import Clock, FakeSend, attempts, make_channel, outbox, send_sentry

Make = Callable[..., MadeIntegration]
T0 = 1_790_000_000


def sender(bridge: Bridge, send: FakeSend, clock: Clock, worker: str = "w1") -> NotificationSender:
    # jitter 0: the backoff is exactly half its nominal value, so the tests can say when.
    return NotificationSender(bridge, send, clock=clock, worker=worker, jitter=lambda: 0.0)


def timeline(bridge: Bridge, incident_id: int) -> list[TimelineEntry]:
    with bridge.database.reading() as session:
        return list(
            session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident_id)
                .order_by(TimelineEntry.id)
            )
        )


# ---------------------------------------------------------------- what is sent


def test_many_deliveries_of_one_issue_send_one_triggered_per_channel(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    webhook = make_channel(bridge, integration.service, name="webhook")
    pager = make_channel(bridge, integration.service, name="pager")
    for number in range(200):
        send_sentry(client, integration, at=T0 + number)
    send = FakeSend()

    sender(bridge, send, Clock()).drain()

    assert sorted((t.name, m.type) for t, m in send.calls) == [
        ("pager", "incident.triggered"),
        ("webhook", "incident.triggered"),
    ]
    [(_target, message), _other] = send.calls
    incident = message.document["incident"]
    assert incident["event_count"] == 1  # the state when it was triggered
    assert incident["dedup_key"] == "sentry-4512345678"
    assert incident["url"].endswith(f"/incidents/{incident['id']}")
    assert message.document["id"] == message.notification_id
    assert message.ack_url is not None and "/ack/" in message.ack_url
    assert {n.channel_id for n in outbox(bridge)} == {webhook, pager}
    assert all(n.status == "sent" for n in outbox(bridge))


def test_a_reopen_sends_reopened_and_a_resolve_resolved(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(reopen_window_minutes=30)
    make_channel(bridge, integration.service)
    send_sentry(client, integration, "created", at=T0)
    send_sentry(client, integration, "resolved", at=T0 + 60)
    answer = send_sentry(client, integration, "unresolved", at=T0 + 600)
    send = FakeSend()

    sender(bridge, send, Clock()).drain()

    assert answer["action"] == "reopened"
    assert send.types() == ["incident.triggered", "incident.resolved", "incident.reopened"]


def test_a_severity_rise_is_sent_and_a_fall_is_not(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service, min_severity="info")
    send_sentry(client, integration, level="warning", at=T0)
    send_sentry(client, integration, level="fatal", at=T0 + 60)
    send_sentry(client, integration, level="warning", at=T0 + 120)
    send = FakeSend()

    sender(bridge, send, Clock()).drain()

    assert send.types() == ["incident.triggered", "incident.severity_raised"]
    assert send.calls[1][1].document["incident"]["severity"] == "critical"


def test_channels_get_only_their_events_at_their_minimum_severity(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service, name="critical-only", min_severity="critical")
    make_channel(bridge, integration.service, name="resolves", events="resolved")
    send_sentry(client, integration, "created", level="error", at=T0)
    send_sentry(client, integration, "resolved", at=T0 + 60)
    send = FakeSend()

    sender(bridge, send, Clock()).drain()

    assert [(t.name, m.type) for t, m in send.calls] == [("resolves", "incident.resolved")]


def test_people_acknowledging_and_resolving_send_their_events(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service, events="triggered,acknowledged,resolved")
    incident_id = send_sentry(client, integration, at=T0)["incident"]["id"]
    clock = Clock()
    for action in (HumanAction.ACKNOWLEDGE, HumanAction.RESOLVE):
        with bridge.database.transaction() as session:
            act_on_incident(
                session, incident_id, action, "ana@example.com", clock.advance(seconds=1)
            )
    send = FakeSend()

    sender(bridge, send, clock).drain()

    assert send.types() == ["incident.triggered", "incident.acknowledged", "incident.resolved"]
    assert send.calls[1][1].document["incident"]["status"] == "acknowledged"
    # Nobody needs the acknowledge link of an incident that is already acknowledged.
    assert send.calls[1][1].ack_url is None


def test_the_outbox_row_commits_with_the_change_and_not_without_it(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service, events="acknowledged")
    incident_id = send_sentry(client, integration, at=T0)["incident"]["id"]

    with pytest.raises(RuntimeError), bridge.database.transaction() as session:
        act_on_incident(session, incident_id, HumanAction.ACKNOWLEDGE, "ana", Clock()())
        assert [n.type for n in session.scalars(select(Notification))] == ["incident.acknowledged"]
        raise RuntimeError("the edge fails after the change")

    assert outbox(bridge) == []
    with bridge.database.transaction() as session:
        act_on_incident(session, incident_id, HumanAction.ACKNOWLEDGE, "ana", Clock()())
    assert [n.type for n in outbox(bridge)] == ["incident.acknowledged"]


def test_each_sent_notification_is_in_the_incidents_timeline(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service, name="ops")
    incident_id = send_sentry(client, integration, at=T0)["incident"]["id"]

    sender(bridge, FakeSend(), Clock()).drain()

    entry = timeline(bridge, incident_id)[-1]
    assert entry.kind == "notified"
    assert entry.message == "Sent incident.triggered to ops (webhook)"


# ---------------------------------------------------------------- retries and failures


def test_a_transient_failure_is_retried_with_backoff_under_the_same_id(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    send_sentry(client, integration, at=T0)
    clock = Clock()
    send = FakeSend([SendResult("retry", status_code=503, error="HTTP 503")])
    work = sender(bridge, send, clock)

    assert work.run_once() == 1
    [waiting] = outbox(bridge)
    assert waiting.status == "queued"
    assert waiting.next_attempt_at == clock() + timedelta(seconds=1)  # 2 s, jitter 0: half
    assert work.run_once() == 0  # not due yet
    clock.advance(seconds=1)
    assert work.run_once() == 1

    [sent] = outbox(bridge)
    assert sent.status == "sent"
    assert [m.notification_id for _t, m in send.calls] == [sent.id, sent.id]
    assert [(a.outcome, a.status_code) for a in attempts(bridge, sent.id)] == [
        ("retry", 503),
        ("sent", 200),
    ]


def test_retry_after_is_honoured(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    send_sentry(client, integration, at=T0)
    clock = Clock()
    send = FakeSend([SendResult("retry", status_code=429, retry_after_seconds=120)])

    sender(bridge, send, clock).run_once()

    [waiting] = outbox(bridge)
    assert waiting.next_attempt_at == clock() + timedelta(seconds=120)


def test_transient_failures_give_up_after_the_retry_window(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    incident_id = send_sentry(client, integration, at=T0)["incident"]["id"]
    clock = Clock()
    clock.advance(minutes=59, seconds=59)
    send = FakeSend([SendResult("retry", error="timed out")])

    sender(bridge, send, clock).run_once()

    [failed] = outbox(bridge)
    assert failed.status == "failed"
    assert timeline(bridge, incident_id)[-1].message.endswith("gave up after 1 attempts: timed out")


def test_a_permanent_failure_fails_at_once_and_an_admin_can_retry_it(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    incident_id = send_sentry(client, integration, at=T0)["incident"]["id"]
    clock = Clock()
    send = FakeSend([SendResult("failed", status_code=410, error="HTTP 410 Gone")])
    work = sender(bridge, send, clock)

    work.run_once()

    [failed] = outbox(bridge)
    assert (failed.status, failed.last_error) == ("failed", "HTTP 410 Gone")
    assert timeline(bridge, incident_id)[-1].kind == "notification_failed"
    with bridge.database.transaction() as session:
        assert [n.id for n in notification_outbox.list_notifications(session, "failed")] == [
            failed.id
        ]
        notification_outbox.retry_failed(session, failed.id, clock())
    with pytest.raises(Conflict), bridge.database.transaction() as session:
        notification_outbox.retry_failed(session, failed.id, clock())
    work.run_once()
    assert [n.status for n in outbox(bridge)] == ["sent"]
    assert [m.notification_id for _t, m in send.calls] == [failed.id, failed.id]


def test_a_sender_that_died_mid_send_is_taken_over_with_the_same_id(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    send_sentry(client, integration, at=T0)
    clock = Clock()
    lease = timedelta(seconds=bridge.settings.notify_lease_seconds)
    # The first jobs process claims, (maybe) sends, and dies before recording.
    with bridge.database.transaction() as session:
        [lost] = notification_outbox.claim_due(session, clock(), 10, lease, "dead")
    send = FakeSend()
    survivor = sender(bridge, send, clock, worker="alive")

    assert survivor.run_once() == 0  # the lease still holds
    clock.advance(seconds=lease.total_seconds() + 1)
    assert survivor.run_once() == 1

    assert [m.notification_id for _t, m in send.calls] == [lost.id]
    [sent] = outbox(bridge)
    assert (sent.status, sent.attempts) == ("sent", 2)
    # The dead one's late record (had it come back) changes nothing.
    with bridge.database.transaction() as session:
        status = notification_outbox.record_attempt(
            session, lost, SendResult("failed"), clock(), "dead", 0.0, timedelta(hours=1)
        )
    assert status == "superseded"
    assert outbox(bridge)[0].status == "sent"


def test_the_delay_from_commit_to_first_attempt_is_recorded(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    send_sentry(client, integration, at=T0)
    clock = Clock()
    clock.advance(seconds=2)

    sender(bridge, FakeSend(), clock).run_once()

    [sent] = outbox(bridge)
    assert sent.first_attempt_delay_ms is not None
    assert 2000 <= sent.first_attempt_delay_ms < 4000


def test_a_channel_test_is_sent_without_an_incident(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    channel_id = make_channel(bridge, integration.service, name="ops")
    clock = Clock()
    with bridge.database.transaction() as session:
        from app.services.channels import get_channel

        notification_outbox.queue_test(session, get_channel(session, channel_id), clock())
    send = FakeSend()

    sender(bridge, send, clock).drain()

    [(target, message)] = send.calls
    assert (target.name, message.type, message.ack_url) == ("ops", "test", None)
    assert message.document["service"]["name"] == integration.service


# ---------------------------------------------------------------- operations


def test_metrics_count_attempts_by_kind_and_outcome_and_the_delay(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    send_sentry(client, integration, at=T0)
    clock = Clock()
    send = FakeSend([SendResult("retry", status_code=503)])
    work = sender(bridge, send, clock)
    work.run_once()
    work.run_once()
    clock.advance(seconds=5)
    work.run_once()

    text = client.get("/metrics").get_data(as_text=True)

    assert 'bridge_notifications_total{kind="webhook",outcome="retry"} 1.0' in text
    assert 'bridge_notifications_total{kind="webhook",outcome="sent"} 1.0' in text
    assert "bridge_notification_delay_seconds_count 1.0" in text
    assert 'bridge_notification_delay_seconds_bucket{le="+Inf"} 1.0' in text
    assert "bridge_notifications_failed 0.0" in text


def test_readyz_reports_the_outbox_backlog_and_its_age(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    assert client.get("/readyz").get_json()["checks"]["notifications_pending"] == 0
    send_sentry(client, integration, at=T0)

    checks = client.get("/readyz").get_json()["checks"]

    assert checks["notifications_pending"] == 1
    assert checks["notifications_oldest_seconds"] >= 0
