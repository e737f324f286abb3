"""Recognising Sentry deliveries and mapping them to intents (SPEC 3, 4.1, 4.2, 4.3, 4.4)."""

from __future__ import annotations

import copy
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.domain.alerts import (
    ENVELOPE_RESOURCES,
    Alert,
    Format,
    Intent,
    issue_intent,
    parse_time,
    read_alert,
)
from app.domain.errors import UnrecognisedPayload
from app.domain.severity import Severity, severity_from_level
from tests.support.payloads import fixture_names, load

ISSUE_ID = "4512345678"
ISSUE_KEY = f"sentry-{ISSUE_ID}"
ISSUE_TITLE = "ZahlungFehler: Zahlung fehlgeschlagen – Kartenprüfung abgelehnt (ü)"
METRIC_KEY = "sentry-metric-890123"
METRIC_TITLE = "Zahlungsfehler-Rate zu hoch (Überwachung)"
INSTALLATION_UUID = "7a3c9f2e-5b1d-4e8a-9c6f-2d4b8e1a0f37"


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def envelope(data: dict[str, Any], action: str | None = "created") -> dict[str, Any]:
    """An integration-platform body as Sentry builds it: action, installation, data, actor."""
    return {
        "action": action,
        "installation": {"uuid": INSTALLATION_UUID},
        "data": data,
        "actor": {"type": "application", "id": "sentry", "name": "Sentry"},
    }


def read_fixture(name: str, *, with_header: bool = True) -> Alert:
    resource, payload = load(name)
    return read_alert(payload, resource if with_header else None)


# ------------------------------------------------------------------ every fixture

# name: (format, resource, intent, dedup key, severity, title, source, payload time)
FIXTURE_EXPECTATIONS: dict[str, tuple[Any, ...]] = {
    "integration_comment_created": (
        Format.INTEGRATION,
        "comment",
        Intent.COMMENT,
        ISSUE_KEY,
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        datetime(2026, 11, 23, 9, 52, 18, 640215, tzinfo=UTC),
    ),
    "integration_error_created": (
        Format.INTEGRATION,
        "error",
        Intent.TRIGGER,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        # Error payloads carry no project name; the slug comes from the event's API URL.
        "Sentry - payments-api",
        datetime(2026, 11, 23, 9, 21, 7, 482000, tzinfo=UTC),
    ),
    "integration_event_alert_triggered": (
        Format.INTEGRATION,
        "event_alert",
        Intent.TRIGGER,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - payments-api",
        datetime(2026, 11, 23, 9, 21, 7, 482000, tzinfo=UTC),
    ),
    "integration_installation_created": (
        Format.INTEGRATION,
        "installation",
        Intent.INSTALLATION,
        None,
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        None,
    ),
    "integration_installation_deleted": (
        Format.INTEGRATION,
        "installation",
        Intent.INSTALLATION,
        None,
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        None,
    ),
    "integration_issue_archived": (
        Format.INTEGRATION,
        "issue",
        Intent.ACKNOWLEDGE,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - Payments API",
        datetime(2026, 11, 23, 9, 55, 30, 1000, tzinfo=UTC),
    ),
    "integration_issue_archived_legacy_action": (
        Format.INTEGRATION,
        "issue",
        Intent.ACKNOWLEDGE,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - Payments API",
        datetime(2026, 11, 23, 9, 55, 30, 1000, tzinfo=UTC),
    ),
    "integration_issue_assigned": (
        Format.INTEGRATION,
        "issue",
        Intent.ACKNOWLEDGE,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - Payments API",
        datetime(2026, 11, 23, 9, 48, 13, 550000, tzinfo=UTC),
    ),
    "integration_issue_created": (
        Format.INTEGRATION,
        "issue",
        Intent.TRIGGER,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - Payments API",
        datetime(2026, 11, 23, 9, 21, 7, 482000, tzinfo=UTC),
    ),
    "integration_issue_resolved": (
        Format.INTEGRATION,
        "issue",
        Intent.RESOLVE,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - Payments API",
        datetime(2026, 11, 23, 10, 2, 44, 19000, tzinfo=UTC),
    ),
    "integration_issue_unresolved": (
        Format.INTEGRATION,
        "issue",
        Intent.TRIGGER,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - Payments API",
        datetime(2026, 11, 24, 6, 13, 58, 267000, tzinfo=UTC),
    ),
    "integration_metric_alert_critical": (
        Format.INTEGRATION,
        "metric_alert",
        Intent.TRIGGER,
        METRIC_KEY,
        Severity.CRITICAL,
        METRIC_TITLE,
        "Sentry - payments-api",
        datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
    ),
    "integration_metric_alert_resolved": (
        Format.INTEGRATION,
        "metric_alert",
        Intent.RESOLVE,
        METRIC_KEY,
        Severity.INFO,
        METRIC_TITLE,
        "Sentry - payments-api",
        # A resolution happens when the alert closes, not when it was first detected.
        datetime(2026, 11, 23, 10, 10, tzinfo=UTC),
    ),
    "integration_metric_alert_warning": (
        Format.INTEGRATION,
        "metric_alert",
        Intent.TRIGGER,
        METRIC_KEY,
        Severity.WARNING,
        METRIC_TITLE,
        "Sentry - payments-api",
        datetime(2026, 11, 23, 9, 30, tzinfo=UTC),
    ),
    # Seer findings and activity alerts are notes on the issue's incident (SPEC 4.1).
    "integration_seer_root_cause_completed": (
        Format.INTEGRATION,
        "seer",
        Intent.COMMENT,
        ISSUE_KEY,  # data.group_id, an integer
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        None,
    ),
    "integration_seer_solution_completed": (
        Format.INTEGRATION,
        "seer",
        Intent.COMMENT,
        ISSUE_KEY,
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        None,
    ),
    "integration_seer_pr_created": (
        Format.INTEGRATION,
        "seer",
        Intent.COMMENT,
        ISSUE_KEY,
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        None,
    ),
    "integration_seer_root_cause_started": (
        Format.INTEGRATION,
        "seer",
        Intent.IGNORE,
        ISSUE_KEY,
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        None,
    ),
    "integration_activity_alert_triggered": (
        Format.INTEGRATION,
        "activity_alert",
        Intent.COMMENT,
        ISSUE_KEY,
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        None,
    ),
    "integration_preprod_artifact_size_analysis_completed": (
        Format.INTEGRATION,
        "preprod_artifact",
        Intent.IGNORE,
        None,
        Severity.ERROR,
        "Sentry Error",
        "Sentry",
        None,
    ),
    # Before 2022: no issue_id; the issue id comes from issue_url / web_url.
    "integration_event_alert_triggered_2021": (
        Format.INTEGRATION,
        "event_alert",
        Intent.TRIGGER,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - payments-api",
        datetime(2026, 11, 23, 9, 21, 7, 482000, tzinfo=UTC),
    ),
    "integration_error_created_2021": (
        Format.INTEGRATION,
        "error",
        Intent.TRIGGER,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - payments-api",
        datetime(2026, 11, 23, 9, 21, 7, 482000, tzinfo=UTC),
    ),
    "integration_issue_archived_until_escalating": (
        Format.INTEGRATION,
        "issue",
        Intent.ACKNOWLEDGE,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - Payments API",
        datetime(2026, 11, 23, 9, 55, 30, 1000, tzinfo=UTC),
    ),
    "integration_issue_unresolved_escalating": (
        Format.INTEGRATION,
        "issue",
        Intent.TRIGGER,
        ISSUE_KEY,
        Severity.ERROR,
        ISSUE_TITLE,
        "Sentry - Payments API",
        datetime(2026, 11, 23, 11, 4, 41, 930000, tzinfo=UTC),
    ),
    "legacy_webhooks_plugin_exception": (
        Format.LEGACY_WEBHOOKS,
        "event",
        Intent.TRIGGER,
        "sentry-4512399001",
        Severity.ERROR,
        "PaymentDeclined: カードが拒否されました",  # event.title, the message being ""
        "Sentry - Payments API",
        datetime(2025, 11, 23, 10, 20, 11, 603000, tzinfo=UTC),
    ),
    "legacy_webhooks_plugin_sentry9": (
        Format.LEGACY_WEBHOOKS,
        "event",
        Intent.TRIGGER,
        "sentry-1288734105",
        Severity.ERROR,
        # No event.title in Sentry 9: the exception, from sentry.interfaces.Exception.
        "RefundRejected: Erstattung abgelehnt: Betrag übersteigt die Zahlung",
        "Sentry - Payments API",
        None,  # Sentry 9 events carry `received`, not the event's own time
    ),
    "legacy_webhooks_plugin": (
        Format.LEGACY_WEBHOOKS,
        "event",
        Intent.TRIGGER,
        "sentry-4512399001",  # the plugin's top-level `id` is the issue id
        Severity.ERROR,
        "PaymentDeclined: カードが拒否されました",
        "Sentry - Payments API",
        datetime(2025, 11, 23, 10, 20, 11, 603000, tzinfo=UTC),
    ),
    "opsknight_event": (
        Format.EVENT,
        "event",
        Intent.TRIGGER,
        "sentry-4512400888",
        Severity.WARNING,
        "支払い処理に失敗しました (order 7731)",
        "Sentry - Payments API",
        datetime(2025, 11, 23, 10, 40, 0, 125000, tzinfo=UTC),
    ),
    "opsknight_issue": (
        Format.ISSUE,
        "issue",
        Intent.TRIGGER,
        "sentry-4512400777",
        Severity.CRITICAL,
        "TimeoutError: Zahlungsdienst antwortet nicht – Überweisung hängt",
        "Sentry - Payments API",
        None,  # no lastSeen/firstSeen in this payload
    ),
}


def test_every_fixture_has_an_expectation() -> None:
    assert sorted(FIXTURE_EXPECTATIONS) == fixture_names()


@pytest.mark.parametrize("name", sorted(FIXTURE_EXPECTATIONS))
def test_fixture_is_recognised_and_mapped(name: str) -> None:
    fmt, resource, intent, key, severity, title, source, occurred_at = FIXTURE_EXPECTATIONS[name]

    alert = read_fixture(name)

    assert alert.format is fmt
    assert alert.resource == resource
    assert alert.intent is intent
    assert alert.dedup_key == key
    assert alert.severity is severity
    assert alert.title == title
    assert alert.source == source
    if occurred_at is None:
        assert alert.occurred_at is None
    else:
        assert alert.occurred_at is not None
        assert abs(alert.occurred_at - occurred_at) < timedelta(milliseconds=1)
        assert alert.occurred_at.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "name", [n for n in sorted(FIXTURE_EXPECTATIONS) if n[:11] == "integration"]
)
def test_integration_fixture_carries_installation_uuid_and_actor(name: str) -> None:
    alert = read_fixture(name)

    assert alert.installation_uuid == INSTALLATION_UUID
    assert alert.actor is not None
    assert alert.actor.startswith(("Sentry (Sentry application)", "Jürgen Müller (Sentry user)"))


def test_issue_created_fixture_keeps_sentry_links() -> None:
    alert = read_fixture("integration_issue_created")

    assert alert.issue_id == ISSUE_ID
    assert alert.short_id == "PAYMENTS-API-3F"
    assert alert.issue_url == "https://acme-gmbh.sentry.io/issues/4512345678/"
    assert alert.project == "payments-api"


# ------------------------------------------------------------------ resource inference


@pytest.mark.parametrize(
    "name",
    [n for n in sorted(FIXTURE_EXPECTATIONS) if n.startswith("integration_")],
)
def test_fixture_without_resource_header_infers_the_same_alert(name: str) -> None:
    with_header = read_fixture(name)

    inferred = read_fixture(name, with_header=False)

    assert inferred == with_header


@pytest.mark.parametrize(
    ("data", "resource"),
    [
        ({"issue": {"id": "77", "status": "unresolved"}}, "issue"),
        ({"error": {"event_id": "abc", "issue_id": "77"}}, "error"),
        (
            {
                "event": {"event_id": "abc", "issue_id": "77"},
                "triggered_rule": "rule",
                "issue_alert": {"title": "rule"},
            },
            "event_alert",
        ),
        ({"event": {"event_id": "abc"}}, "event_alert"),
        ({"metric_alert": {"id": "5"}}, "metric_alert"),
        ({"installation": {"uuid": "u-1"}}, "installation"),
        ({"comment": "looking into it", "issue_id": 77}, "comment"),
        ({"seer": {"status": "done"}}, "seer"),
        ({"run_id": 771204, "group_id": 77}, "seer"),
    ],
)
def test_resource_is_inferred_from_data_without_header(data: dict[str, Any], resource: str) -> None:
    action = {"metric_alert": "critical", "event_alert": "triggered"}.get(resource, "created")

    alert = read_alert(envelope(data, action=action))

    assert alert.format is Format.INTEGRATION
    assert alert.resource == resource


def test_resource_header_wins_over_inference() -> None:
    payload = envelope({"issue": {"id": "77"}, "run_id": 5}, action="root_cause_completed")

    alert = read_alert(payload, "seer")

    assert alert.resource == "seer"
    assert alert.intent is Intent.IGNORE


def test_resource_header_is_read_case_insensitively() -> None:
    alert = read_alert(envelope({"issue": {"id": "77"}}), " Issue ")

    assert alert.resource == "issue"
    assert alert.dedup_key == "sentry-77"


def test_unknown_resource_header_is_ignored_with_a_reason() -> None:
    alert = read_alert(envelope({"artifact": {"id": 1}}, action="completed"), "size_analysis")

    assert alert.intent is Intent.IGNORE
    assert alert.reason
    assert "size_analysis" in alert.reason


# ------------------------------------------------------------------ SPEC 4.1 action table

ALL_ACTIONS = [None, "created", "unresolved", "resolved", "ignored", "archived", "assigned"]

ACTION_TABLE = [
    (None, Intent.TRIGGER),
    ("created", Intent.TRIGGER),
    ("unresolved", Intent.TRIGGER),
    ("resolved", Intent.RESOLVE),
    ("ignored", Intent.ACKNOWLEDGE),
    ("archived", Intent.ACKNOWLEDGE),
    ("assigned", Intent.ACKNOWLEDGE),
]


@pytest.mark.parametrize("status", [None, "unresolved"])
@pytest.mark.parametrize(("action", "intent"), ACTION_TABLE)
def test_action_decides_intent_when_status_is_open(
    action: str | None, status: str | None, intent: Intent
) -> None:
    assert issue_intent(action, status) is intent


@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_resolved_issue_status_wins_over_any_action(action: str | None) -> None:
    assert issue_intent(action, "resolved") is Intent.RESOLVE


@pytest.mark.parametrize("status", ["ignored", "archived"])
@pytest.mark.parametrize("action", ALL_ACTIONS)
def test_ignored_or_archived_issue_status_acknowledges_regardless_of_action(
    action: str | None, status: str
) -> None:
    assert issue_intent(action, status) is Intent.ACKNOWLEDGE


def test_unknown_issue_action_is_ignored_with_a_reason() -> None:
    payload = envelope({"issue": {"id": "77", "status": "unresolved"}}, action="bookmarked")

    alert = read_alert(payload, "issue")

    assert alert.intent is Intent.IGNORE
    assert alert.reason
    assert "bookmarked" in alert.reason


def _integration_issue(action: str | None, status: str | None) -> tuple[dict[str, Any], str]:
    _, payload = load("integration_issue_created")
    payload["action"] = action
    payload["data"]["issue"]["status"] = status
    return payload, "issue"


def _opsknight_issue(action: str | None, status: str | None) -> tuple[dict[str, Any], None]:
    _, payload = load("opsknight_issue")
    if action is None:
        del payload["action"]
    else:
        payload["action"] = action
    payload["issue"]["status"] = status
    return payload, None


ISSUE_BUILDERS = {"integration": _integration_issue, "opsknight": _opsknight_issue}

READ_ALERT_TABLE = [
    # status wins over the action
    ("created", "resolved", Intent.RESOLVE),
    ("unresolved", "resolved", Intent.RESOLVE),
    ("assigned", "resolved", Intent.RESOLVE),
    ("created", "ignored", Intent.ACKNOWLEDGE),
    ("unresolved", "ignored", Intent.ACKNOWLEDGE),
    ("resolved", "ignored", Intent.ACKNOWLEDGE),
    ("created", "archived", Intent.ACKNOWLEDGE),
    # otherwise the action decides
    ("created", "unresolved", Intent.TRIGGER),
    (None, "unresolved", Intent.TRIGGER),
    ("created", None, Intent.TRIGGER),
    ("unresolved", "unresolved", Intent.TRIGGER),
    ("resolved", None, Intent.RESOLVE),
    ("ignored", None, Intent.ACKNOWLEDGE),
    ("archived", None, Intent.ACKNOWLEDGE),
    ("assigned", "unresolved", Intent.ACKNOWLEDGE),
]


@pytest.mark.parametrize("builder", sorted(ISSUE_BUILDERS))
@pytest.mark.parametrize(("action", "status", "intent"), READ_ALERT_TABLE)
def test_issue_payload_intent_follows_action_table(
    builder: str, action: str | None, status: str | None, intent: Intent
) -> None:
    payload, resource = ISSUE_BUILDERS[builder](action, status)

    alert = read_alert(payload, resource)

    assert alert.intent is intent
    assert alert.dedup_key is not None
    assert alert.dedup_key in {ISSUE_KEY, "sentry-4512400777"}


def test_resolved_issue_status_wins_over_created_action() -> None:
    payload, resource = _integration_issue("created", "resolved")

    assert read_alert(payload, resource).intent is Intent.RESOLVE


def test_assigned_issue_records_assignee_from_data_assignee() -> None:
    resource, payload = load("integration_issue_assigned")
    payload["data"]["issue"]["assignedTo"] = None

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.ACKNOWLEDGE
    assert alert.assignee == "Jürgen Müller"


def test_assigned_issue_falls_back_to_issue_assigned_to() -> None:
    resource, payload = load("integration_issue_assigned")
    del payload["data"]["assignee"]
    payload["data"]["issue"]["assignedTo"] = {"type": "team", "id": "402117", "name": "payments"}

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.ACKNOWLEDGE
    assert alert.assignee == "payments"


def test_assignee_without_name_is_recorded_by_email() -> None:
    resource, payload = load("integration_issue_assigned")
    payload["data"]["assignee"] = {"type": "user", "id": 1, "email": "oncall@acme.example"}

    assert read_alert(payload, resource).assignee == "oncall@acme.example"


def test_opsknight_assigned_issue_records_assigned_to() -> None:
    payload, _ = _opsknight_issue("assigned", "unresolved")

    alert = read_alert(payload)

    assert alert.intent is Intent.ACKNOWLEDGE
    assert alert.assignee == "Jürgen Müller"


def test_created_issue_with_assigned_to_records_no_assignment() -> None:
    alert = read_fixture("opsknight_issue")

    assert alert.intent is Intent.TRIGGER
    assert alert.assignee is None


# ------------------------------------------------------------------ events, error, event_alert


@pytest.mark.parametrize(
    ("resource", "member", "action"),
    [("error", "error", "created"), ("event_alert", "event", "triggered")],
)
def test_event_without_issue_id_is_keyed_by_event_id(
    resource: str, member: str, action: str
) -> None:
    payload = envelope({member: {"event_id": "5f0c2b8e", "level": "error"}}, action=action)

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.TRIGGER
    assert alert.dedup_key == "sentry-5f0c2b8e"


@pytest.mark.parametrize(
    ("resource", "action"), [("error", "resolved"), ("event_alert", "dismissed")]
)
def test_event_resource_with_unexpected_action_is_ignored_with_a_reason(
    resource: str, action: str
) -> None:
    fixture = (
        "integration_error_created" if resource == "error" else "integration_event_alert_triggered"
    )
    _, payload = load(fixture)
    payload["action"] = action

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.IGNORE
    assert alert.reason
    assert action in alert.reason


def test_opsknight_event_reads_tags_dict_for_level() -> None:
    _, payload = load("opsknight_event")
    del payload["event"]["level"]
    payload["event"]["tags"]["level"] = "fatal"

    alert = read_alert(payload)

    assert alert.format is Format.EVENT
    assert alert.severity is Severity.CRITICAL


def test_opsknight_event_without_issue_id_is_keyed_by_event_id() -> None:
    _, payload = load("opsknight_event")
    del payload["event"]["issue_id"]

    alert = read_alert(payload)

    assert alert.dedup_key == "sentry-e3a9c1d7b5f24e6a8c0b2d4f6a8c0e12"


# ------------------------------------------------------------------ legacy WebHooks plugin


def test_legacy_plugin_top_level_id_wins_over_event_id() -> None:
    alert = read_fixture("legacy_webhooks_plugin")

    assert alert.format is Format.LEGACY_WEBHOOKS
    assert alert.issue_id == "4512399001"
    assert alert.dedup_key == "sentry-4512399001"
    assert (
        alert.issue_url == "https://acme-gmbh.sentry.io/issues/4512399001/?referrer=webhooks_plugin"
    )


def test_legacy_plugin_without_id_falls_back_to_event_id() -> None:
    _, payload = load("legacy_webhooks_plugin")
    del payload["id"]
    del payload["url"]  # the issue URL would name the issue (tests/unit/test_sentry_variants)

    alert = read_alert(payload)

    assert alert.dedup_key == "sentry-9c1e7a3b5d2f4e6a8b0c1d2e3f4a5b6c"


def test_legacy_plugin_project_string_names_the_source() -> None:
    _, payload = load("legacy_webhooks_plugin")
    del payload["project_name"]

    alert = read_alert(payload)

    assert alert.source == "Sentry - payments-api"


def test_legacy_plugin_reads_tags_list_of_pairs_for_level() -> None:
    _, payload = load("legacy_webhooks_plugin")
    del payload["level"]
    del payload["event"]["level"]
    payload["event"]["tags"] = [["environment", "production"], ["level", "warning"]]

    alert = read_alert(payload)

    assert alert.severity is Severity.WARNING


def test_legacy_plugin_top_level_level_is_used_when_event_has_none() -> None:
    _, payload = load("legacy_webhooks_plugin")
    payload["level"] = "fatal"
    del payload["event"]["level"]

    assert read_alert(payload).severity is Severity.CRITICAL


def test_legacy_plugin_title_falls_back_to_top_level_message() -> None:
    _, payload = load("legacy_webhooks_plugin")
    for field in ("title", "logentry", "exception"):
        del payload["event"][field]

    alert = read_alert(payload)

    assert alert.title == "支払い処理に失敗しました: カードが拒否されました"


# ------------------------------------------------------------------ metric alerts


@pytest.mark.parametrize(
    ("action", "intent", "severity"),
    [
        ("critical", Intent.TRIGGER, Severity.CRITICAL),
        ("warning", Intent.TRIGGER, Severity.WARNING),
        ("open", Intent.TRIGGER, Severity.ERROR),
        ("resolved", Intent.RESOLVE, None),
    ],
)
def test_metric_alert_action_maps_to_intent_and_severity(
    action: str, intent: Intent, severity: Severity | None
) -> None:
    resource, payload = load("integration_metric_alert_critical")
    payload["action"] = action

    alert = read_alert(payload, resource)

    assert alert.intent is intent
    assert alert.dedup_key == METRIC_KEY
    assert alert.title == METRIC_TITLE
    if severity is not None:
        assert alert.severity is severity


def test_metric_alert_unknown_action_is_ignored_with_a_reason() -> None:
    resource, payload = load("integration_metric_alert_critical")
    payload["action"] = "snoozed"

    alert = read_alert(payload, resource)

    assert alert.intent is Intent.IGNORE
    assert alert.reason
    assert "snoozed" in alert.reason


# ------------------------------------------------------------------ comment, seer, installation


def test_comment_is_a_comment_intent_carrying_its_text() -> None:
    alert = read_fixture("integration_comment_created")

    assert alert.intent is Intent.COMMENT
    assert alert.comment == "Kartenprüfung beim PSP fällt aus – Eskalation an @payments-oncall 💳"
    assert alert.dedup_key == ISSUE_KEY
    assert alert.actor == "Jürgen Müller (Sentry user)"


def test_seer_progress_notice_is_ignored_with_a_reason() -> None:
    alert = read_fixture("integration_seer_root_cause_started")

    assert alert.intent is Intent.IGNORE
    assert alert.reason
    assert "Seer" in alert.reason


@pytest.mark.parametrize(
    "name", ["integration_installation_created", "integration_installation_deleted"]
)
def test_installation_webhook_goes_to_the_oauth_module(name: str) -> None:
    alert = read_fixture(name)

    assert alert.intent is Intent.INSTALLATION
    assert alert.action == name.rsplit("_", 1)[1]
    assert alert.installation_uuid == INSTALLATION_UUID


# ------------------------------------------------------------------ title and source


def _event_with(**event: Any) -> dict[str, Any]:
    return {"event": {"event_id": "e1", **event}, "project": {"name": "Checkout"}}


EXCEPTION = {"values": [{"type": "KeyError", "value": "'user_id'"}]}


@pytest.mark.parametrize(
    ("event", "title"),
    [
        ({"title": "T", "message": "M", "exception": EXCEPTION}, "T"),
        ({"message": "M", "exception": EXCEPTION}, "M"),
        ({"title": "", "message": "  ", "logentry": {"formatted": "Formatted"}}, "Formatted"),
        ({"exception": {"values": [{"value": "only a value"}]}}, "only a value"),
        ({}, "Sentry Error"),
        ({"title": "", "message": "", "exception": {"values": []}}, "Sentry Error"),
    ],
)
def test_event_title_fallbacks(event: dict[str, Any], title: str) -> None:
    assert read_alert(_event_with(**event)).title == title


def test_event_title_uses_exception_value_when_title_and_message_are_missing() -> None:
    alert = read_alert(_event_with(exception=EXCEPTION))

    assert "'user_id'" in alert.title


def test_event_title_uses_outermost_exception() -> None:
    chained = {
        "values": [
            {"type": "ConnectionError", "value": "reset by peer"},
            {"type": "PaymentFailed", "value": "gateway down"},
        ]
    }

    assert "gateway down" in read_alert(_event_with(exception=chained)).title


@pytest.mark.parametrize(
    ("project", "source"),
    [
        ({"name": "Checkout", "slug": "checkout"}, "Sentry - Checkout"),
        ({"slug": "checkout"}, "Sentry - checkout"),
        ({}, "Sentry"),
    ],
)
def test_source_names_the_project(project: dict[str, Any], source: str) -> None:
    payload = {"issue": {"id": "1", "title": "Boom"}, "project": project}

    assert read_alert(payload).source == source


def test_issue_title_comes_from_issue_title() -> None:
    payload = {"issue": {"id": "1", "title": "ValueError: bad"}, "project": {"name": "P"}}

    assert read_alert(payload).title == "ValueError: bad"


# ------------------------------------------------------------------ SPEC 4.2 severity


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        ("fatal", Severity.CRITICAL),
        ("error", Severity.ERROR),
        ("warning", Severity.WARNING),
        ("info", Severity.INFO),
        ("debug", Severity.INFO),
        (None, Severity.ERROR),
        ("", Severity.ERROR),
        ("verbose", Severity.ERROR),
        (40, Severity.ERROR),
        (["fatal"], Severity.ERROR),
    ],
)
def test_severity_from_level(level: object, severity: Severity) -> None:
    assert severity_from_level(level) is severity


@pytest.mark.parametrize(
    ("level", "severity"),
    [
        ("fatal", Severity.CRITICAL),
        ("warning", Severity.WARNING),
        ("debug", Severity.INFO),
        ("nonsense", Severity.ERROR),
        (None, Severity.ERROR),
    ],
)
def test_issue_level_sets_alert_severity(level: str | None, severity: Severity) -> None:
    resource, payload = load("integration_issue_created")
    payload["data"]["issue"]["level"] = level

    assert read_alert(payload, resource).severity is severity


# ------------------------------------------------------------------ unrecognised payloads


@pytest.mark.parametrize(
    "payload",
    [
        [],
        [{"issue": {"id": "1"}}],
        "string",
        42,
        None,
        {},
        {"foo": 1},
        {"issue": "not an object"},
        {"event": ["not", "an", "object"]},
        # `data` alone, without an installation or a resource header, is no envelope
        {"action": "created", "data": {"issue": {"id": "1"}}},
    ],
)
def test_unrecognised_payload_names_expected_formats(payload: Any) -> None:
    with pytest.raises(UnrecognisedPayload) as caught:
        read_alert(payload)

    message = caught.value.message
    assert "Sentry integration webhook" in message
    assert "issue payload" in message
    assert "event payload" in message
    assert caught.value.details["expected"] == ["sentry_integration", "issue", "event"]


def test_envelope_with_unknown_data_and_no_header_names_expected_resources() -> None:
    payload = envelope({"foo": 1})

    with pytest.raises(UnrecognisedPayload) as caught:
        read_alert(payload)

    assert "Sentry-Hook-Resource" in caught.value.message
    for resource in ENVELOPE_RESOURCES:
        assert resource in caught.value.message
    assert caught.value.details["expected"] == list(ENVELOPE_RESOURCES)


@pytest.mark.parametrize(
    ("payload", "resource"),
    [
        ({"issue": {"title": "no id"}, "project": {"name": "P"}}, None),
        ({"event": {"message": "no ids"}, "project": {"name": "P"}}, None),
        ({"event": {"message": "no ids"}, "project": "legacy-slug"}, None),
        (envelope({"issue": {"title": "no id"}}), "issue"),
        (envelope({"error": {"message": "no ids"}}), "error"),
        (envelope({"event": {"message": "no ids"}}, action="triggered"), "event_alert"),
        (envelope({"metric_alert": {"title": "no id"}}, action="critical"), "metric_alert"),
    ],
)
def test_trigger_without_issue_or_event_id_is_unrecognised(
    payload: dict[str, Any], resource: str | None
) -> None:
    with pytest.raises(UnrecognisedPayload) as caught:
        read_alert(payload, resource)

    assert "issue id" in caught.value.message


@pytest.mark.parametrize(("resource", "member"), [("issue", "issue"), ("error", "error")])
def test_resource_header_without_matching_data_is_unrecognised(resource: str, member: str) -> None:
    with pytest.raises(UnrecognisedPayload) as caught:
        read_alert(envelope({"comment": "x"}), resource)

    assert f"data.{member}" in caught.value.message


# ------------------------------------------------------------------ parse_time


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-23T09:21:07.482Z", utc(2026, 11, 23, 9, 21, 7, 482000)),
        ("2026-11-23T09:21:07.482000+00:00", utc(2026, 11, 23, 9, 21, 7, 482000)),
        ("2026-11-23T11:21:07.482+02:00", utc(2026, 11, 23, 9, 21, 7, 482000)),
        ("2026-11-23T09:21:07", utc(2026, 11, 23, 9, 21, 7)),  # naive means UTC
        ("  2026-11-23T09:21:07Z  ", utc(2026, 11, 23, 9, 21, 7)),
        (1763889667, utc(2025, 11, 23, 9, 21, 7)),
        (1763889667.25, utc(2025, 11, 23, 9, 21, 7, 250000)),
        ("1763889667", utc(2025, 11, 23, 9, 21, 7)),
        ("1763889667.25", utc(2025, 11, 23, 9, 21, 7, 250000)),
        (0, utc(1970, 1, 1)),
    ],
)
def test_parse_time_reads_iso_and_epoch_as_utc(value: Any, expected: datetime) -> None:
    parsed = parse_time(value)

    assert parsed == expected
    assert parsed is not None
    assert parsed.utcoffset() == timedelta(0)


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "",
        "   ",
        "2026-13-45T00:00:00Z",
        "nan",
        None,
        True,
        False,
        [],
        {},
        [1763889667],
        math.nan,
        math.inf,
        1e300,
    ],
)
def test_parse_time_returns_none_for_garbage(value: Any) -> None:
    assert parse_time(value) is None


@pytest.mark.parametrize("value", ["1e20", "inf", "-inf", "1e300"])
def test_parse_time_returns_none_for_out_of_range_numeric_string(value: str) -> None:
    assert parse_time(value) is None


def test_event_with_out_of_range_timestamp_string_is_still_read() -> None:
    payload = _event_with(message="boom", timestamp="1e20")

    alert = read_alert(payload)

    assert alert.intent is Intent.TRIGGER
    assert alert.occurred_at is None


# ------------------------------------------------------------------ properties

JSON_SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)


def _json(keys: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    return st.recursive(
        JSON_SCALARS,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=5)
        ),
        max_leaves=25,
    )


# Keys the reader looks at, so that generated values reach the deeper code paths.
SENTRY_KEYS = st.sampled_from(
    [
        "action",
        "installation",
        "uuid",
        "data",
        "actor",
        "type",
        "name",
        "issue",
        "event",
        "error",
        "project",
        "id",
        "status",
        "level",
        "title",
        "message",
        "lastSeen",
        "firstSeen",
        "event_id",
        "issue_id",
        "datetime",
        "tags",
        "exception",
        "values",
        "value",
        "logentry",
        "formatted",
        "metric_alert",
        "alert_rule",
        "projects",
        "comment",
        "assignee",
        "assignedTo",
        "slug",
        "project_name",
        "run_id",
        "url",
        "web_url",
    ]
) | st.text(max_size=6)

HEADERS = (
    st.none() | st.sampled_from([*ENVELOPE_RESOURCES, "", "size_analysis"]) | st.text(max_size=8)
)

PROPERTY_SETTINGS = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


def _alert_or_unrecognised(payload: Any, header: str | None) -> None:
    snapshot = copy.deepcopy(payload)
    try:
        alert = read_alert(payload, header)
    except UnrecognisedPayload as error:
        assert error.message
        return
    finally:
        # Reading is pure: the payload must come out as it went in (NaN never equals itself).
        assert repr(payload) == repr(snapshot)
    assert isinstance(alert, Alert)
    if alert.intent in {Intent.TRIGGER, Intent.ACKNOWLEDGE, Intent.RESOLVE, Intent.COMMENT}:
        assert alert.dedup_key
        assert alert.dedup_key.startswith("sentry-")
    if alert.intent is Intent.IGNORE:
        assert alert.reason


@PROPERTY_SETTINGS
@given(payload=_json(st.text(max_size=8)), header=HEADERS)
def test_read_alert_on_any_json_returns_alert_or_raises_unrecognised(
    payload: Any, header: str | None
) -> None:
    _alert_or_unrecognised(payload, header)


@PROPERTY_SETTINGS
@given(data=_json(SENTRY_KEYS), action=st.none() | st.text(max_size=10), header=HEADERS)
def test_read_alert_on_sentry_shaped_json_returns_alert_or_raises_unrecognised(
    data: Any, action: str | None, header: str | None
) -> None:
    for payload in (
        {"action": action, "installation": {"uuid": "u"}, "data": data, "actor": data},
        {"action": action, "issue": data, "project": data},
        {"event": data, "project": data},
        {"event": data, "project": "slug", "id": data, "level": data, "message": data},
    ):
        _alert_or_unrecognised(payload, header)


def _node_paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a payload (dict keys and list indexes) that a mutation can replace."""
    paths: list[tuple[Any, ...]] = [prefix] if prefix else []
    if isinstance(value, dict | list):
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            paths.extend(_node_paths(child, (*prefix, key)))
    return paths


FIXTURES = {name: load(name) for name in fixture_names()}
# Deep inside stack frames nothing is read; keeping to the top levels keeps the search focused.
FIXTURE_PATHS = {
    name: [path for path in _node_paths(payload) if len(path) <= 4]
    for name, (_, payload) in FIXTURES.items()
}


def _replace(payload: Any, path: tuple[Any, ...], value: Any) -> None:
    parent = payload
    for step in path[:-1]:
        try:
            parent = parent[step]
        except (KeyError, IndexError, TypeError):
            return  # an earlier mutation removed this place
    key = path[-1]
    fits_dict = isinstance(parent, dict) and isinstance(key, str)
    fits_list = isinstance(parent, list) and isinstance(key, int) and key < len(parent)
    if fits_dict or fits_list:
        parent[key] = value


@st.composite
def mutated_fixtures(draw: st.DrawFn) -> tuple[dict[str, Any], str | None]:
    name = draw(st.sampled_from(sorted(FIXTURES)))
    resource, original = FIXTURES[name]
    payload = copy.deepcopy(original)
    for path in draw(st.lists(st.sampled_from(FIXTURE_PATHS[name]), min_size=1, max_size=4)):
        _replace(payload, path, draw(_json(SENTRY_KEYS)))
    return payload, draw(st.just(resource) | HEADERS)


@settings(PROPERTY_SETTINGS, max_examples=100)
@given(case=mutated_fixtures())
def test_read_alert_on_mutated_fixture_returns_alert_or_raises_unrecognised(
    case: tuple[dict[str, Any], str | None],
) -> None:
    payload, header = case

    _alert_or_unrecognised(payload, header)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(value=st.floats().map(repr) | st.integers().map(str) | st.text(max_size=20))
def test_parse_time_never_raises_on_any_string(value: str) -> None:
    parsed = parse_time(value)

    assert parsed is None or parsed.utcoffset() == timedelta(0)


def test_alert_rule_settings_read_the_same_from_a_list_or_a_dict() -> None:
    # One reader of alert-rule settings, for the webhook (issue_alert.settings) and the
    # UI components (alert-rule action, issue-link fields).
    from app.domain.payload_values import settings_values

    listed = [
        {"name": "service", "value": " checkout "},
        {"name": "empty", "value": ""},
        {"name": "flag", "value": True},
        "not an item",
        {"value": "nameless"},
    ]
    assert settings_values(listed) == {"service": "checkout"}
    assert settings_values({"service": "checkout", "incident": 42, "none": None}) == {
        "service": "checkout",
        "incident": "42",
    }
    assert settings_values({"service": "x" * 2000})["service"] == "x" * 1000
    assert settings_values("neither") == {}


def test_a_wrong_type_in_any_field_of_any_fixture_reads_as_an_alert_or_a_clear_refusal() -> None:
    # The parsing half of tests/integration/test_limits.py's "never a 500", for every case
    # and without a database: an Alert whose texts PostgreSQL can store, or a BridgeError
    # (answered 400), never another exception.
    from dataclasses import fields

    from app.domain.errors import BridgeError
    from app.domain.json_body import decode_json
    from tests.support.hostile import hostile_cases

    failures = []
    for name, resource, body in hostile_cases():
        try:
            alert = read_alert(decode_json(body), resource)
        except BridgeError:
            continue
        except Exception as error:  # what the receiver would have answered with a 500
            failures.append((name, repr(error), body[:200]))
            continue
        for field in fields(alert):
            value = getattr(alert, field.name)
            if isinstance(value, str) and ("\x00" in value or not _encodable(value)):
                failures.append((name, field.name, body[:200]))
    assert failures == []


def _encodable(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
