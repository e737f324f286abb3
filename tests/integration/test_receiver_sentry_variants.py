"""Real Sentry, not the docs (issue 12), on SQLite and PostgreSQL: Sentry's own retries, a
re-sent issue.created, archived substatuses, Seer and activity-alert notes, old event
payloads and one name per Sentry project. Through the ingest use case where HTTP adds
nothing (tests/integration/test_receiver.py covers the webhook's answers), over HTTP
where the point is concurrent requests or a hand-written curl."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import Bridge
from app.services.ingest import IngestOutcome
from app.store.models import Delivery, IncidentEvent, TimelineEntry
from tests.support import payloads
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load
from tests.support.receiver import incidents, ingest

Make = Callable[..., MadeIntegration]
T0 = 1_790_000_000
SECRET = "client-secret-from-sentry"
ISSUE_KEY = "sentry-4512345678"


def send(
    bridge: Bridge,
    integration: MadeIntegration,
    name_or_payload: str | dict[str, Any],
    at: int,
    *,
    resource: str | None = None,
    request_id: str | None = None,
) -> IngestOutcome:
    """One delivery as Sentry makes it, signed, through the ingest use case; accepted."""
    delivery = build(
        name_or_payload,
        resource=resource,
        secret=integration.secret,
        timestamp=at,
        request_id=request_id,
    )
    outcome = ingest(bridge, integration, delivery)
    assert outcome.error is None, outcome.error
    return outcome


def timeline(bridge: Bridge, incident_id: int) -> list[TimelineEntry]:
    with bridge.database.transaction() as session:
        return list(
            session.scalars(
                select(TimelineEntry)
                .where(TimelineEntry.incident_id == incident_id)
                .order_by(TimelineEntry.id)
            )
        )


def decisions(bridge: Bridge) -> list[str]:
    with bridge.database.transaction() as session:
        return list(session.scalars(select(Delivery.decision).order_by(Delivery.id)))


def event_alert_of(issue_id: str) -> dict[str, Any]:
    """Sentry's event_alert for another issue (and another event) of the same project."""
    _, payload = load("integration_event_alert_triggered")
    event = payload["data"]["event"]
    event["issue_id"] = issue_id
    event["event_id"] = uuid.uuid4().hex
    for name in ("web_url", "issue_url"):
        event[name] = event[name].replace("4512345678", issue_id)
    return payload


# ---------------------------------------------------------------- Sentry's own retries


def test_a_retried_event_alert_counts_once_and_names_the_first_delivery(
    bridge: Bridge, make_integration: Make
) -> None:
    # Unsigned: a signed body re-sent is caught earlier, by its hash (the test below).
    integration = make_integration(secret=None)
    send(bridge, integration, "integration_issue_created", T0)
    first = send(bridge, integration, "integration_event_alert_triggered", T0 + 5)
    # Sentry's retry: minutes later, a new Request-ID and timestamp, the same body.
    retry = send(bridge, integration, "integration_event_alert_triggered", T0 + 185)

    assert first.action == "deduplicated"
    assert retry.action == "duplicate_delivery"
    assert retry.matched is True
    assert f"delivery {first.delivery.id}" in retry.reason
    assert "5f0c2b8e9a7d4c3b8e1f6a2d9c4b7e10" in retry.reason
    assert retry.incident.event_count == 2
    [incident] = incidents(bridge)
    assert incident.event_count == 2
    assert [entry.kind for entry in timeline(bridge, incident.id)] == ["triggered", "retriggered"]
    assert decisions(bridge) == ["triggered", "deduplicated", "duplicate_delivery"]


@pytest.mark.parametrize(
    "name", ["integration_error_created", "legacy_webhooks_plugin", "opsknight_event"]
)
def test_a_retried_event_that_opened_the_incident_counts_once(
    bridge: Bridge, make_integration: Make, name: str
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, name, T0)
    retry = send(bridge, integration, name, T0 + 120, request_id=uuid.uuid4().hex)

    assert retry.action == "duplicate_delivery"
    [incident] = incidents(bridge)
    assert incident.event_count == 1


def test_the_error_and_the_event_alert_of_one_event_count_once(
    bridge: Bridge, make_integration: Make
) -> None:
    """Both webhooks name the same Sentry event: one event, whichever comes first."""
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_error_created", T0)
    answer = send(bridge, integration, "integration_event_alert_triggered", T0 + 1)

    assert answer.action == "duplicate_delivery"
    assert incidents(bridge)[0].event_count == 1


def test_a_retry_after_the_incident_resolved_does_not_reopen_it(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_event_alert_triggered", T0)
    send(bridge, integration, "integration_issue_resolved", T0 + 60)
    # The retry's new Sentry-Hook-Timestamp is after the resolution: only its event id tells.
    retry = send(bridge, integration, "integration_event_alert_triggered", T0 + 240)

    assert retry.action == "duplicate_delivery"
    [incident] = incidents(bridge)
    assert (incident.status, incident.reopen_count, incident.event_count) == ("resolved", 0, 1)


@pytest.mark.parametrize("is_open", [False, True], ids=["new issue", "open incident"])
def test_retries_racing_each_other_count_once(
    app: Flask, bridge: Bridge, make_integration: Make, is_open: bool
) -> None:
    integration = make_integration(secret=SECRET)
    if is_open:
        send(bridge, integration, "integration_issue_created", T0)
    count = 6
    barrier = threading.Barrier(count)
    answers: list[tuple[int, Any]] = []

    def deliver() -> None:
        client = app.test_client()
        delivery = build("integration_event_alert_triggered", secret=SECRET, timestamp=T0 + 30)
        barrier.wait()
        response = client.post(integration.url, data=delivery.body, headers=delivery.headers)
        answers.append((response.status_code, response.get_json()))

    threads = [threading.Thread(target=deliver) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert [status for status, _ in answers] == [202] * count
    applied = "deduplicated" if is_open else "triggered"
    assert sorted(answer["action"] for _, answer in answers) == sorted(
        [applied] + ["duplicate_delivery"] * (count - 1)
    )
    [incident] = incidents(bridge)
    assert incident.event_count == (2 if is_open else 1)
    with bridge.database.transaction() as session:
        assert len(list(session.scalars(select(IncidentEvent)))) == 1


def test_a_replayed_event_delivery_counts_again(bridge: Bridge, make_integration: Make) -> None:
    from app.services.replays import replay_delivery

    integration = make_integration(secret=SECRET)
    first = send(bridge, integration, "integration_event_alert_triggered", T0)
    with bridge.database.transaction() as session:
        outcome = replay_delivery(
            session,
            first.delivery.id,
            "admin@example.com",
            bridge.secrets,
            bridge.settings.max_body_bytes,
            now=incidents(bridge)[0].created_at,
        )

    assert outcome.action == "deduplicated"  # a person asked for it to apply again
    assert incidents(bridge)[0].event_count == 2


def test_a_retried_signed_event_alert_is_a_duplicate_of_the_first_delivery(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_issue_created", T0)
    first = send(bridge, integration, "integration_event_alert_triggered", T0 + 5)
    retry = send(bridge, integration, "integration_event_alert_triggered", T0 + 185)

    assert retry.action == "duplicate_delivery"
    assert retry.matched is True
    assert f"delivery {first.delivery.id}" in retry.reason
    assert retry.incident.event_count == 2
    assert incidents(bridge)[0].event_count == 2
    assert decisions(bridge) == ["triggered", "deduplicated", "duplicate_delivery"]


# ---------------------------------------------------------------- a re-sent issue.created


@pytest.mark.parametrize("later", [120, 3 * 3600], ids=["within window", "after window"])
def test_a_re_sent_issue_created_never_reopens_nor_opens_another(
    bridge: Bridge, make_integration: Make, later: int
) -> None:
    integration = make_integration(secret=SECRET, reopen_window_minutes=30)
    send(bridge, integration, "integration_issue_created", T0)
    send(bridge, integration, "integration_issue_resolved", T0 + 60)
    # Re-sent with a later lastSeen (not byte for byte, which the body hash would catch).
    _, again = load("integration_issue_created")
    payloads.seen_at(again, T0 + later)
    answer = send(bridge, integration, again, T0 + later, resource="issue")

    assert answer.action == "ignored"
    assert answer.matched is True
    assert "issue.created" in answer.reason
    assert answer.incident.status == "resolved"
    [incident] = incidents(bridge)
    assert (incident.status, incident.reopen_count, incident.event_count) == ("resolved", 0, 1)


def test_a_regression_after_the_resolve_still_reopens(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_issue_created", T0)
    send(bridge, integration, "integration_issue_resolved", T0 + 60)
    answer = send(bridge, integration, "integration_issue_unresolved", T0 + 120)

    assert answer.action == "reopened"
    assert "regressed" in timeline(bridge, answer.incident.id)[-1].message


def test_a_hand_written_top_level_created_still_reopens(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    _, payload = load("opsknight_issue")
    post = client.post
    created = payloads.plugin_bytes(payload)
    headers = {"Content-Type": "application/json"}
    post(integration.url, data=created, headers=headers)
    payload["issue"]["status"] = "resolved"
    post(integration.url, data=payloads.plugin_bytes(payload), headers=headers)
    payload["issue"]["status"] = "unresolved"

    again = post(integration.url, data=payloads.plugin_bytes(payload), headers=headers)

    assert again.get_json()["action"] == "reopened"
    assert incidents(bridge)[0].reopen_count == 1


# ---------------------------------------------------------------- substatus


@pytest.mark.parametrize(
    ("substatus", "words"),
    [
        ("archived_until_escalating", "archived until escalating"),
        ("archived_until_condition_met", "archived until a condition is met"),
        ("archived_forever", "archived forever"),
    ],
)
def test_an_archived_issue_acknowledges_and_the_timeline_says_how(
    bridge: Bridge, make_integration: Make, substatus: str, words: str
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_issue_created", T0)
    resource, archived = load("integration_issue_archived_until_escalating")
    archived["data"]["issue"]["substatus"] = substatus

    answer = send(bridge, integration, archived, T0 + 60, resource=resource)

    assert answer.action == "acknowledged"
    assert answer.incident.status == "acknowledged"
    entry = timeline(bridge, answer.incident.id)[-1]
    assert entry.kind == "acknowledged"
    assert words in entry.message
    assert entry.data == {"substatus": substatus}


def test_an_escalating_issue_reopens_and_the_timeline_says_escalating(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_issue_created", T0)
    send(bridge, integration, "integration_issue_resolved", T0 + 60)
    answer = send(bridge, integration, "integration_issue_unresolved_escalating", T0 + 120)

    assert answer.action == "reopened"
    entry = timeline(bridge, answer.incident.id)[-1]
    assert (entry.kind, entry.data["substatus"]) == ("reopened", "escalating")
    assert "escalating" in entry.message


def test_an_escalating_archived_issue_counts_and_says_escalating(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_issue_created", T0)
    send(bridge, integration, "integration_issue_archived_until_escalating", T0 + 60)
    answer = send(bridge, integration, "integration_issue_unresolved_escalating", T0 + 120)

    assert answer.action == "deduplicated"
    entry = timeline(bridge, answer.incident.id)[-1]
    assert entry.kind == "retriggered"
    assert "issue unresolved, escalating" in entry.message


# ---------------------------------------------------------------- Seer and activity alerts


@pytest.mark.parametrize(
    ("name", "kind", "text"),
    [
        ("integration_activity_alert_triggered", "sentry_activity", "veralteten API-Schlüssel"),
        ("integration_seer_root_cause_completed", "seer", "Seer root cause"),
        ("integration_seer_solution_completed", "seer", "Seer solution"),
        ("integration_seer_pr_created", "seer", "github.com/acme/payments-api/pull/1432"),
    ],
)
def test_seer_and_activity_alerts_add_a_note_to_the_open_incident(
    bridge: Bridge, make_integration: Make, name: str, kind: str, text: str
) -> None:
    integration = make_integration(secret=SECRET)
    opened = send(bridge, integration, "integration_issue_created", T0)

    answer = send(bridge, integration, name, T0 + 60)

    assert answer.action == "commented"
    assert answer.incident.id == opened.incident.id
    assert answer.incident.status == "triggered"
    entry = timeline(bridge, opened.incident.id)[-1]
    assert entry.kind == kind
    assert text in entry.message
    assert isinstance(entry.data, dict) and "links" in entry.data
    assert incidents(bridge)[0].event_count == 1  # a note, never an event


@pytest.mark.parametrize(
    "name", ["integration_activity_alert_triggered", "integration_seer_pr_created"]
)
def test_seer_and_activity_alerts_without_an_open_incident_change_nothing(
    bridge: Bridge, make_integration: Make, name: str
) -> None:
    integration = make_integration(secret=SECRET)

    answer = send(bridge, integration, name, T0)

    assert (answer.action, answer.matched) == ("ignored", False)
    assert answer.reason
    assert incidents(bridge) == []


@pytest.mark.parametrize("resource", ["preprod_artifact", "size_analysis", "uptime_monitor"])
def test_resources_that_never_page_are_answered_with_a_reason(
    bridge: Bridge, make_integration: Make, resource: str
) -> None:
    integration = make_integration(secret=SECRET)
    _, payload = load("integration_preprod_artifact_size_analysis_completed")

    answer = send(bridge, integration, payload, T0, resource=resource)

    assert answer.action == "ignored"
    assert resource in answer.reason
    assert incidents(bridge) == []


# ---------------------------------------------------------------- old payloads, one name


def test_an_event_alert_from_before_2022_joins_its_issues_incident(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    opened = send(bridge, integration, "integration_issue_created", T0)

    answer = send(bridge, integration, "integration_error_created_2021", T0 + 5)

    assert answer.action == "deduplicated"
    assert answer.incident.id == opened.incident.id
    assert answer.dedup_key == ISSUE_KEY


def test_a_slug_only_delivery_uses_the_name_an_earlier_delivery_gave_the_project(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_issue_created", T0)  # names "Payments API"

    answer = send(bridge, integration, event_alert_of("4512345999"), T0 + 5, resource="event_alert")

    assert answer.action == "triggered"
    assert answer.incident.source == "Sentry - Payments API"


def test_an_incident_named_by_slug_takes_the_name_when_its_issue_names_it(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    first = send(bridge, integration, "integration_event_alert_triggered", T0)
    assert first.incident.source == "Sentry - payments-api"  # nothing learnt yet

    named = send(bridge, integration, "integration_issue_created", T0 + 1)
    other = send(bridge, integration, event_alert_of("4512345999"), T0 + 5, resource="event_alert")

    assert named.incident.source == "Sentry - Payments API"
    assert other.incident.source == "Sentry - Payments API"
    assert {incident.source for incident in incidents(bridge)} == {"Sentry - Payments API"}


def test_learnt_project_names_belong_to_their_service(
    bridge: Bridge, make_integration: Make
) -> None:
    payments = make_integration(service="Payments", secret=SECRET)
    search = make_integration(service="Search", secret=SECRET)
    send(bridge, payments, "integration_issue_created", T0)

    answer = send(bridge, search, "integration_event_alert_triggered", T0 + 5)

    assert answer.incident.source == "Sentry - payments-api"


def test_a_metric_alert_uses_the_learnt_name_of_its_rules_project(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret=SECRET)
    send(bridge, integration, "integration_issue_created", T0)

    answer = send(bridge, integration, "integration_metric_alert_critical", T0 + 5)

    assert answer.incident.source == "Sentry - Payments API"
    assert answer.incident.title == "Zahlungsfehler-Rate zu hoch (Überwachung)"


def test_a_sentry9_plugin_event_opens_an_incident_titled_by_its_exception(
    bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()

    answer = send(bridge, integration, "legacy_webhooks_plugin_sentry9", T0)

    assert answer.action == "triggered"
    assert answer.incident.title.startswith("RefundRejected: Erstattung abgelehnt")
    assert answer.incident.source == "Sentry - Payments API"
