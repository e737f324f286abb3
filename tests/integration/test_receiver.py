"""The receiver end to end through Flask, on SQLite and PostgreSQL (SPEC 2-5)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from app.extensions import Bridge
from app.services.spooled_deliveries import drain_spool
from app.store.models import Delivery, TimelineEntry
from tests.support import payloads
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load
from tests.support.receiver import (
    T0,
    deliver_at_once,
    deliveries,
    incidents,
    post,
    send_issue,
    timeline_kinds,
)

Make = Callable[..., MadeIntegration]
# ---------------------------------------------------------------- the happy paths


def test_issue_created_opens_one_incident_with_sentry_links(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    answer = send_issue(client, integration, "created", T0)

    assert answer["action"] == "triggered"
    assert answer["matched"] is False
    assert answer["dedup_key"] == "sentry-4512345678"
    assert answer["incident"]["status"] == "triggered"
    assert answer["incident"]["event_count"] == 1
    assert answer["incident"]["source"] == "Sentry - Payments API"
    assert answer["incident"]["title"].startswith(
        "ZahlungFehler: Zahlung fehlgeschlagen – Kartenprüfung"
    )
    [incident] = incidents(bridge)
    assert incident.id == answer["incident"]["id"]
    assert incident.sentry_short_id == "PAYMENTS-API-3F"
    assert incident.sentry_issue_id == "4512345678"
    assert incident.sentry_issue_url
    assert timeline_kinds(bridge, incident.id) == ["triggered"]


def test_same_issue_again_adds_an_event_to_the_open_incident(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    first = send_issue(client, integration, "created", T0)
    second = send_issue(client, integration, "created", T0 + 60)

    assert second["action"] == "deduplicated"
    assert second["matched"] is True
    assert second["incident"]["id"] == first["incident"]["id"]
    assert second["incident"]["event_count"] == 2
    [incident] = incidents(bridge)
    assert incident.event_count == 2
    assert timeline_kinds(bridge, incident.id) == ["triggered", "retriggered"]


def test_keys_are_scoped_to_the_service(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    payments = make_integration(service="Payments")
    search = make_integration(service="Search")
    send_issue(client, payments, "created", T0)
    answer = send_issue(client, search, "created", T0)

    assert answer["action"] == "triggered"
    assert len(incidents(bridge)) == 2


def test_resolved_issue_resolves_open_incident(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    answer = send_issue(client, integration, "resolved", T0 + 60)

    assert answer["action"] == "resolved"
    assert answer["incident"]["status"] == "resolved"
    [incident] = incidents(bridge)
    assert incident.status == "resolved"
    assert incident.resolved_at is not None
    assert timeline_kinds(bridge, incident.id)[-1] == "resolved"


@pytest.mark.parametrize("action", ["ignored", "archived"])
def test_ignored_or_archived_issue_acknowledges(
    client: FlaskClient, bridge: Bridge, make_integration: Make, action: str
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    answer = send_issue(client, integration, action, T0 + 60)

    assert answer["action"] == "acknowledged"
    assert incidents(bridge)[0].status == "acknowledged"


def test_acknowledged_incident_stays_acknowledged_when_events_keep_coming(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    send_issue(client, integration, "ignored", T0 + 60)
    answer = send_issue(client, integration, "created", T0 + 120)

    assert answer["action"] == "deduplicated"
    assert answer["incident"]["status"] == "acknowledged"
    assert answer["incident"]["event_count"] == 2


def test_assigned_issue_acknowledges_and_records_the_assignee(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    answer = send_issue(client, integration, "assigned", T0 + 60)

    assert answer["action"] == "acknowledged"
    [incident] = incidents(bridge)
    assert incident.assignee == "Jürgen Müller"
    assert timeline_kinds(bridge, incident.id)[-2:] == ["acknowledged", "assigned"]


def test_issue_status_wins_over_the_action(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    answer = send_issue(client, integration, "created", T0 + 60, status="resolved")

    assert answer["action"] == "resolved"


@pytest.mark.parametrize("action", ["resolved", "ignored"])
def test_acknowledge_or_resolve_without_an_open_incident_creates_nothing(
    client: FlaskClient, bridge: Bridge, make_integration: Make, action: str
) -> None:
    integration = make_integration()
    answer = send_issue(client, integration, action, T0)

    assert answer["matched"] is False
    assert answer["action"] == "ignored"
    assert answer["incident"] is None
    assert "no open incident" in answer["reason"]
    assert incidents(bridge) == []


def test_severity_follows_the_latest_trigger_with_a_timeline_entry(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0, level="warning")
    answer = send_issue(client, integration, "created", T0 + 60, level="fatal")

    assert answer["incident"]["severity"] == "critical"
    [incident] = incidents(bridge)
    assert "severity_changed" in timeline_kinds(bridge, incident.id)


# ---------------------------------------------------------------- reopen and staleness


def test_regression_within_the_reopen_window_reopens_the_incident(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(reopen_window_minutes=30)
    first = send_issue(client, integration, "created", T0)
    send_issue(client, integration, "resolved", T0 + 60)
    answer = send_issue(client, integration, "unresolved", T0 + 600)

    assert answer["action"] == "reopened"
    assert answer["incident"]["id"] == first["incident"]["id"]
    assert answer["incident"]["status"] == "triggered"
    [incident] = incidents(bridge)
    assert incident.reopen_count == 1
    assert incident.event_count == 2
    assert timeline_kinds(bridge, incident.id)[-1] == "reopened"


def test_trigger_after_the_reopen_window_opens_a_new_incident(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(reopen_window_minutes=5)
    first = send_issue(client, integration, "created", T0)
    send_issue(client, integration, "resolved", T0 + 60)
    answer = send_issue(client, integration, "unresolved", T0 + 60 + 6 * 60)

    assert answer["action"] == "triggered"
    assert answer["incident"]["id"] != first["incident"]["id"]
    old, new = incidents(bridge)
    assert (old.status, new.status) == ("resolved", "triggered")
    assert old.reopen_count == 0


def test_late_created_never_reopens_an_issue_resolved_after_it(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    send_issue(client, integration, "resolved", T0 + 60)
    # A second `created` that Sentry sent before the resolution arrives late.
    answer = send_issue(client, integration, "created", T0 + 30)

    assert answer["action"] == "ignored"
    assert "stale" in answer["reason"]
    [incident] = incidents(bridge)
    assert incident.status == "resolved"
    assert incident.reopen_count == 0


def test_late_resolve_does_not_undo_a_newer_reopen(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    send_issue(client, integration, "resolved", T0 + 60)
    send_issue(client, integration, "unresolved", T0 + 120)
    answer = send_issue(client, integration, "resolved", T0 + 90)

    assert answer["action"] == "ignored"
    assert answer["matched"] is True
    assert "stale" in answer["reason"]
    assert incidents(bridge)[0].status == "triggered"


def test_same_request_id_is_applied_once(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    delivery = build("integration_issue_created", secret="s3cr3t", request_id="a" * 32)
    first = post(client, integration, delivery).get_json()
    again = post(client, integration, delivery)

    assert again.status_code == 202
    assert again.get_json()["action"] == "duplicate_delivery"
    assert str(first["delivery_id"]) in again.get_json()["reason"]
    assert incidents(bridge)[0].event_count == 1
    assert [d.decision for d in deliveries(bridge)] == ["triggered", "duplicate_delivery"]


# ---------------------------------------------------------------- every format


EXPECTED_ACTIONS = {
    "integration_issue_created": ("triggered", "sentry-4512345678"),
    "integration_issue_unresolved": ("triggered", "sentry-4512345678"),
    "integration_error_created": ("triggered", "sentry-4512345678"),
    "integration_event_alert_triggered": ("triggered", "sentry-4512345678"),
    "integration_metric_alert_critical": ("triggered", "sentry-metric-890123"),
    "integration_metric_alert_warning": ("triggered", "sentry-metric-890123"),
    "legacy_webhooks_plugin": ("triggered", "sentry-4512399001"),
    "opsknight_issue": ("triggered", "sentry-4512400777"),
    "opsknight_event": ("triggered", "sentry-4512400888"),
    "integration_issue_resolved": ("ignored", "sentry-4512345678"),
    "integration_issue_assigned": ("ignored", "sentry-4512345678"),
    "integration_issue_archived": ("ignored", "sentry-4512345678"),
    "integration_issue_archived_legacy_action": ("ignored", "sentry-4512345678"),
    "integration_metric_alert_resolved": ("ignored", "sentry-metric-890123"),
    "integration_comment_created": ("ignored", "sentry-4512345678"),
    "integration_installation_created": ("ignored", None),
    "integration_installation_deleted": ("ignored", None),
    "integration_seer_root_cause_completed": ("ignored", "sentry-4512345678"),
    "integration_seer_root_cause_started": ("ignored", "sentry-4512345678"),
    "integration_seer_solution_completed": ("ignored", "sentry-4512345678"),
    "integration_seer_pr_created": ("ignored", "sentry-4512345678"),
    "integration_activity_alert_triggered": ("ignored", "sentry-4512345678"),
    "integration_preprod_artifact_size_analysis_completed": ("ignored", None),
    "integration_event_alert_triggered_2021": ("triggered", "sentry-4512345678"),
    "integration_error_created_2021": ("triggered", "sentry-4512345678"),
    "integration_issue_archived_until_escalating": ("ignored", "sentry-4512345678"),
    "integration_issue_unresolved_escalating": ("triggered", "sentry-4512345678"),
    "legacy_webhooks_plugin_exception": ("triggered", "sentry-4512399001"),
    "legacy_webhooks_plugin_sentry9": ("triggered", "sentry-1288734105"),
}


def test_every_fixture_has_an_expectation() -> None:
    assert set(EXPECTED_ACTIONS) == set(payloads.fixture_names())


@pytest.mark.parametrize("name", sorted(EXPECTED_ACTIONS))
def test_every_sentry_format_is_answered_2xx_with_a_reason_when_nothing_changed(
    client: FlaskClient, bridge: Bridge, make_integration: Make, name: str
) -> None:
    integration = make_integration(secret="client-secret-from-sentry")
    response = post(client, integration, build(name, secret="client-secret-from-sentry"))

    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    action, key = EXPECTED_ACTIONS[name]
    assert answer["action"] == action
    assert answer["dedup_key"] == key
    if action == "ignored":
        assert answer["reason"]
        assert incidents(bridge) == []
    else:
        assert len(incidents(bridge)) == 1


def test_legacy_plugin_source_uses_the_project_name(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    answer = post(client, integration, build("legacy_webhooks_plugin")).get_json()

    assert answer["incident"]["source"] == "Sentry - Payments API"
    assert answer["incident"]["title"] == "PaymentDeclined: カードが拒否されました"


def test_metric_alert_moves_from_warning_to_critical_to_resolved(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    warning = post(client, integration, build("integration_metric_alert_warning", timestamp=T0))
    critical = post(
        client, integration, build("integration_metric_alert_critical", timestamp=T0 + 60)
    )
    resolved = post(
        client, integration, build("integration_metric_alert_resolved", timestamp=T0 + 120)
    )

    assert warning.get_json()["incident"]["severity"] == "warning"
    assert critical.get_json()["action"] == "deduplicated"
    assert critical.get_json()["incident"]["severity"] == "critical"
    assert resolved.get_json()["action"] == "resolved"
    [incident] = incidents(bridge)
    assert incident.dedup_key == "sentry-metric-890123"
    assert incident.status == "resolved"


def test_sentry_comment_lands_in_the_open_incident_timeline(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    answer = post(
        client, integration, build("integration_comment_created", timestamp=T0 + 60)
    ).get_json()

    assert answer["action"] == "commented"
    [incident] = incidents(bridge)
    with bridge.database.transaction() as session:
        entry = session.scalars(select(TimelineEntry).where(TimelineEntry.kind == "comment")).one()
        assert "Eskalation" in entry.message
        assert entry.actor.startswith("Jürgen Müller")
        assert entry.incident_id == incident.id


def test_error_event_of_an_open_issue_joins_its_incident(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    send_issue(client, integration, "created", T0)
    answer = post(
        client, integration, build("integration_error_created", timestamp=T0 + 5)
    ).get_json()

    assert answer["action"] == "deduplicated"
    assert answer["incident"]["event_count"] == 2


# ---------------------------------------------------------------- authentication


def test_signed_integration_refuses_a_request_without_signature(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    response = post(client, integration, build("integration_issue_created"))

    assert response.status_code == 401
    error = response.get_json()["error"]
    assert error["code"] == "signature_missing"
    assert "Sentry-Hook-Signature" in error["message"]
    assert incidents(bridge) == []
    [stored] = deliveries(bridge)
    assert (stored.signature_outcome, stored.decision, stored.http_status) == (
        "missing",
        "refused",
        401,
    )


def test_signed_integration_refuses_a_wrong_signature_without_revealing_the_expected_one(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    delivery = build("integration_issue_created", secret="not-the-secret")
    response = post(client, integration, delivery)

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "signature_mismatch"
    text = response.get_data(as_text=True)
    assert "s3cr3t" not in text
    assert payloads.sign("s3cr3t", delivery.body) not in text
    assert deliveries(bridge)[0].signature_outcome == "mismatch"


def test_signature_is_checked_over_the_raw_bytes_not_a_re_encoding(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    _resource, payload = load("integration_issue_created")
    raw = payloads.sentry_bytes(payload)
    assert b"\\u00fc" in raw  # the fixture really exercises Sentry's \u escapes
    signature = payloads.sign("s3cr3t", raw)
    headers = {"Content-Type": "application/json", "Sentry-Hook-Resource": "issue"}

    reencoded = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()
    refused = client.post(
        integration.url, data=reencoded, headers={**headers, "Sentry-Hook-Signature": signature}
    )
    accepted = client.post(
        integration.url, data=raw, headers={**headers, "Sentry-Hook-Signature": signature}
    )

    assert refused.status_code == 401
    assert accepted.status_code == 202


def test_unsigned_integration_accepts_requests_without_signature(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    response = post(client, integration, build("integration_issue_created"))

    assert response.status_code == 202
    assert deliveries(bridge)[0].signature_outcome == "not_required"


def test_previous_secret_stays_valid_during_the_grace_period(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    from datetime import UTC, datetime, timedelta

    from app.services import catalog

    integration = make_integration(secret="old-secret")
    with bridge.database.transaction() as session:
        catalog.rotate_secret(
            session,
            bridge.secrets,
            integration.id,
            datetime.now(UTC),
            timedelta(hours=1),
            "new-secret",
        )
    old = post(client, integration, build("integration_issue_created", secret="old-secret"))
    new = post(client, integration, build("integration_issue_created", secret="new-secret"))

    assert (old.status_code, new.status_code) == (202, 202)
    assert [d.signature_outcome for d in deliveries(bridge)] == ["valid_previous_secret", "valid"]

    with bridge.database.transaction() as session:
        catalog.rotate_secret(
            session, bridge.secrets, integration.id, datetime.now(UTC), timedelta(0), "newest"
        )
    assert (
        post(
            client, integration, build("integration_issue_created", secret="new-secret")
        ).status_code
        == 401
    )


def test_unknown_integration_is_404_and_missing_id_is_400(
    client: FlaskClient, bridge: Bridge
) -> None:
    delivery = build("integration_issue_created")
    unknown = client.post(
        "/api/integrations/sentry?integrationId=nope", data=delivery.body, headers=delivery.headers
    )
    missing = client.post("/api/integrations/sentry", data=delivery.body, headers=delivery.headers)

    assert unknown.status_code == 404
    assert unknown.get_json()["error"]["code"] == "integration_not_found"
    assert missing.status_code == 400
    assert "integrationId" in missing.get_json()["error"]["message"]


def test_disabled_integration_is_403_and_the_delivery_is_kept(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    from datetime import UTC, datetime

    from app.services import catalog

    integration = make_integration()
    with bridge.database.transaction() as session:
        catalog.set_enabled(session, integration.id, False, datetime.now(UTC))
    response = post(client, integration, build("integration_issue_created"))

    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "integration_disabled"
    assert incidents(bridge) == []
    assert deliveries(bridge)[0].http_status == 403


# ---------------------------------------------------------------- bad input


def test_every_delivery_is_stored_with_what_matters(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    delivery = build(
        "integration_issue_created", secret="s3cr3t", request_id="f" * 32, timestamp=T0
    )
    post(client, integration, delivery)

    [stored] = deliveries(bridge)
    assert stored.body == delivery.body
    assert stored.request_id == "f" * 32
    assert stored.hook_resource == "issue"
    assert stored.hook_timestamp == str(T0)
    assert stored.signature_outcome == "valid"
    assert stored.format == "sentry_integration"
    assert stored.dedup_key == "sentry-4512345678"
    assert stored.decision == "triggered"
    assert stored.http_status == 202
    assert stored.incident_id == incidents(bridge)[0].id


def test_oversized_body_is_413_and_recorded_without_its_body(
    client: FlaskClient, bridge: Bridge, make_integration: Make, settings: Any
) -> None:
    integration = make_integration()
    body = b'{"event": {"message": "' + b"x" * settings.max_body_bytes + b'"}}'
    response = client.post(integration.url, data=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 413
    assert str(settings.max_body_bytes) in response.get_json()["error"]["message"]
    [stored] = deliveries(bridge)
    assert stored.body is None
    assert stored.body_size == len(body)
    assert stored.http_status == 413


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"event=1", "application/x-www-form-urlencoded", 415, "unsupported_content_type"),
        (b"hello", "text/plain", 415, "unsupported_content_type"),
        (b"{not json", "application/json", 400, "malformed_json"),
        (b"", "application/json", 400, "malformed_json"),
        (b"\xff\xfe\x00", "application/json", 400, "malformed_json"),
        (b"[1, 2]", "application/json", 400, "unrecognised_payload"),
        (b'{"hello": "world"}', "application/json", 400, "unrecognised_payload"),
        (b'{"event": {"level": "error"}}', "application/json", 400, "unrecognised_payload"),
        (b"[" * 30_000 + b"]" * 30_000, "application/json", 400, "malformed_json"),
    ],
)
def test_bad_input_gets_a_clear_error_and_is_recorded(
    client: FlaskClient,
    bridge: Bridge,
    make_integration: Make,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    integration = make_integration()
    response = client.post(integration.url, data=body, headers={"Content-Type": content_type})

    assert response.status_code == status
    error = response.get_json()["error"]
    assert error["code"] == code
    assert error["status"] == status
    assert len(error["message"]) > 20
    [stored] = deliveries(bridge)
    assert (stored.decision, stored.error_code, stored.http_status) == ("refused", code, status)


def test_unrecognised_payload_error_names_the_expected_formats(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    response = client.post(integration.url, json={"hello": "world"})

    message = response.get_json()["error"]["message"]
    assert "issue" in message and "event" in message and "integration" in message


def test_healthz_answers_when_the_database_does(client: FlaskClient) -> None:
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.get_json()["database"] == "ok"


# ---------------------------------------------------------------- concurrency


def test_concurrent_deliveries_of_one_new_issue_make_one_incident(
    app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    body = build("integration_issue_created").body
    headers = {"Content-Type": "application/json", "Sentry-Hook-Resource": "issue"}
    threads_count = 12

    started = time.monotonic()
    answers = deliver_at_once(
        app, integration, lambda: payloads.Delivery(body, headers), threads_count
    )

    assert time.monotonic() - started < 60
    assert [status for status, _ in answers] == [202] * threads_count
    # On a loaded host a delivery that waits on the incident's row lock past its deadline
    # is spooled (202 "spooled"): applied by the drain, exactly once like the others.
    drain_spool(bridge.database, bridge.secrets, bridge.spool, bridge.settings.max_body_bytes)
    [incident] = incidents(bridge)
    assert incident.event_count == threads_count
    with bridge.database.transaction() as session:
        assert session.scalar(select(func.count()).select_from(Delivery)) == threads_count


def test_a_crash_while_applying_is_a_500_and_the_delivery_is_still_kept(
    client: FlaskClient, bridge: Bridge, make_integration: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.services import refusals

    def explode(*_args: object) -> None:
        raise RuntimeError("simulated bug")

    monkeypatch.setattr(refusals, "read_alert", explode)
    integration = make_integration()
    delivery = build("integration_issue_created")
    response = post(client, integration, delivery)

    assert response.status_code == 500
    assert response.get_json()["error"]["code"] == "internal_error"
    assert "simulated bug" not in response.get_data(as_text=True)
    [stored] = deliveries(bridge)
    assert (stored.decision, stored.http_status) == ("failed", 500)
    assert stored.body == delivery.body
    assert incidents(bridge) == []


def test_out_of_range_payload_time_is_not_a_crash(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    payload = {"event": {"event_id": "abc123", "timestamp": "1e20"}, "project": {"name": "P"}}
    response = client.post(integration.url, json=payload)

    assert response.status_code == 202
    assert response.get_json()["action"] == "triggered"


def test_readyz_reports_database_schema_and_spool(client: FlaskClient, bridge: Bridge) -> None:
    response = client.get("/readyz")

    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ready"
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["migrations"] == "ok"
    assert body["checks"]["spool_pending"] == 0


def test_readyz_and_healthz_say_503_when_the_database_is_gone(unreachable_app: Flask) -> None:
    client = unreachable_app.test_client()

    ready, health = client.get("/readyz"), client.get("/healthz")

    assert ready.status_code == 503
    assert ready.get_json()["checks"]["database"] == "unavailable"
    assert health.status_code == 503
    assert health.get_json()["error"]["code"] == "database_unavailable"


def test_webhook_spools_when_the_database_is_unreachable(unreachable_app: Flask) -> None:
    broken = unreachable_app
    delivery = build("integration_issue_created", secret="s3cr3t")

    response = broken.test_client().post(
        "/api/integrations/sentry?integrationId=abc", data=delivery.body, headers=delivery.headers
    )

    assert response.status_code == 202
    answer = response.get_json()
    assert answer["action"] == "spooled"
    spool = broken.extensions["bridge"].spool
    [path] = spool.pending()
    record, body = spool.read(path)
    assert body == delivery.body
    assert record["signature"] == delivery.headers["Sentry-Hook-Signature"]
    assert record["spool_id"] == answer["spool_id"]


# The installation uuid of the integration-platform fixtures.
FIXTURE_INSTALLATION = "7a3c9f2e-5b1d-4e8a-9c6f-2d4b8e1a0f37"


def connect_installation(
    bridge: Bridge, integration: MadeIntegration, org_slug: str, uuid: str | None
) -> None:
    """The integration connected to a Sentry organisation (an internal integration)."""
    from app.services.sentry_installations import save_internal_token

    with bridge.database.transaction() as session:
        save_internal_token(
            session,
            bridge.secrets,
            user_id=None,
            integration_id=integration.id,
            org_slug=org_slug,
            token="sntrys_test",
            installation_uuid=uuid,
            app_uuid=None,
            now=datetime.now(UTC),
        )


def _event_alert_for(service: str | None, issue_id: str = "5550001") -> dict[str, Any]:
    _resource, payload = load("integration_event_alert_triggered")
    payload["data"]["event"]["issue_id"] = issue_id
    settings = [
        item for item in payload["data"]["issue_alert"]["settings"] if item["name"] != "service"
    ]
    if service is not None:
        settings.append({"name": "service", "value": service})
    payload["data"]["issue_alert"]["settings"] = settings
    return payload


def test_alert_rule_action_routes_the_incident_to_the_chosen_service(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(service="Payments")
    search = make_integration(service="Search")
    # Both are connected to the Sentry organisation whose alert rule fires.
    connect_installation(bridge, integration, "acme-gmbh", FIXTURE_INSTALLATION)
    connect_installation(bridge, search, "acme-gmbh", None)
    fired = build(_event_alert_for("search"), resource="event_alert", timestamp=T0)
    answer = post(client, integration, fired).get_json()

    [incident] = incidents(bridge)
    with bridge.database.transaction() as session:
        from app.store.models import Service

        assert session.get(Service, incident.service_id).name == "Search"  # type: ignore[union-attr]
    assert answer["action"] == "triggered"

    # The issue's later webhooks come through the same integration and still find it.
    _resource, resolved = load("integration_issue_resolved")
    resolved["data"]["issue"]["id"] = "5550001"
    done = post(client, integration, build(resolved, resource="issue", timestamp=T0 + 60))
    assert done.get_json()["action"] == "resolved"
    assert done.get_json()["incident"]["id"] == incident.id


def test_alert_rule_naming_an_unknown_service_falls_back_to_the_integrations(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(service="Payments")
    post(client, integration, build(_event_alert_for("no-such-service"), resource="event_alert"))

    [incident] = incidents(bridge)
    with bridge.database.transaction() as session:
        from app.store.models import Service

        assert session.get(Service, incident.service_id).name == "Payments"  # type: ignore[union-attr]


def test_a_plain_integration_never_routes_outside_its_own_service(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    # Whoever holds an unsigned integration's URL (or a Sentry org with no installation
    # here) could otherwise open incidents in any service by naming it.
    integration = make_integration(service="Payments")
    make_integration(service="Search")

    post(client, integration, build(_event_alert_for("search"), resource="event_alert"))

    [incident] = incidents(bridge)
    with bridge.database.transaction() as session:
        from app.store.models import Service

        assert session.get(Service, incident.service_id).name == "Payments"  # type: ignore[union-attr]


def test_an_alert_rule_routes_only_to_services_its_own_organisation_feeds(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(service="Payments")
    connect_installation(bridge, integration, "acme-gmbh", FIXTURE_INSTALLATION)
    billing = make_integration(service="Billing")  # another tenant of the public app
    connect_installation(bridge, billing, "other-org", "0d5c1e22-3f0a-4f7b-9a51-6e2b7c9d8a10")

    post(client, integration, build(_event_alert_for("billing"), resource="event_alert"))

    [incident] = incidents(bridge)
    with bridge.database.transaction() as session:
        from app.store.models import Service

        assert session.get(Service, incident.service_id).name == "Payments"  # type: ignore[union-attr]


def test_an_installation_named_by_a_delivery_to_another_integration_grants_nothing(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    # The installation uuid is in the body: a delivery to integration B naming A's uuid
    # must not borrow A's organisation.
    connected = make_integration(service="Search")
    connect_installation(bridge, connected, "acme-gmbh", FIXTURE_INSTALLATION)
    stranger = make_integration(service="Payments")

    post(client, stranger, build(_event_alert_for("search"), resource="event_alert"))

    [incident] = incidents(bridge)
    with bridge.database.transaction() as session:
        from app.store.models import Service

        assert session.get(Service, incident.service_id).name == "Payments"  # type: ignore[union-attr]
