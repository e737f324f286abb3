"""The PagerDuty adapter against a fake Events API v2 that enforces its validation rules
and keeps alert state per dedup key."""

from __future__ import annotations

import logging

import pytest

from app import channels
from app.channels.base import ChannelSettings, ChannelTarget
from tests.fakes.pagerduty import FakePagerDuty
from tests.support.channels import (
    channel_settings,
    channel_test_message,
    digest_message,
    incident_message,
)
from tests.support.ports import free_port

ROUTING_KEY = "R0UT1NGk3yF0rCh3ck0utS3rv1c3xyz9"  # 32 characters, as PagerDuty issues them
EXPECTED_KEY = "bridge-7-sentry:acme:1234567890"


def pagerduty() -> ChannelTarget:
    return ChannelTarget("pagerduty", "checkout on call", routing_key=ROUTING_KEY)


def settings(fake: FakePagerDuty, **changes: object) -> ChannelSettings:
    return channel_settings(pagerduty_events_url=fake.events_url, **changes)


def test_one_sentry_issue_is_one_pagerduty_incident_through_its_lifecycle(
    fake_pagerduty: FakePagerDuty,
) -> None:
    steps = [
        "incident.triggered",
        "incident.severity_raised",
        "incident.acknowledged",
        "incident.resolved",
    ]
    results = [
        channels.send(pagerduty(), incident_message(step), settings(fake_pagerduty))
        for step in steps
    ]

    assert [(r.outcome, r.status_code) for r in results] == [("sent", 202)] * 4
    [alert] = fake_pagerduty.alerts_for(EXPECTED_KEY)
    assert alert.events == ["trigger", "trigger", "acknowledge", "resolve"]
    assert alert.status == "resolved"
    assert [r.json()["event_action"] for r in fake_pagerduty.requests] == [
        "trigger",
        "trigger",
        "acknowledge",
        "resolve",
    ]


def test_a_reopen_after_resolve_opens_a_new_pagerduty_incident_on_the_same_key(
    fake_pagerduty: FakePagerDuty,
) -> None:
    for step in ["incident.triggered", "incident.resolved", "incident.reopened"]:
        channels.send(pagerduty(), incident_message(step), settings(fake_pagerduty))

    first, second = fake_pagerduty.alerts_for(EXPECTED_KEY)
    assert (first.status, second.status) == ("resolved", "triggered")


def test_trigger_carries_summary_source_severity_details_and_links(
    fake_pagerduty: FakePagerDuty,
) -> None:
    message = incident_message(severity="warning")

    channels.send(pagerduty(), message, settings(fake_pagerduty))

    event = fake_pagerduty.requests[0].json()
    assert event["routing_key"] == ROUTING_KEY and event["dedup_key"] == EXPECTED_KEY
    payload = event["payload"]
    assert payload["summary"] == "[WARNING] checkout: TypeError: cart is undefined"
    assert payload["source"] == "checkout" and payload["severity"] == "warning"
    assert payload["timestamp"] == "2025-03-14T09:26:53+00:00"
    assert payload["component"] == "app/cart.js in updateTotals"
    assert payload["group"] == "production"
    assert payload["custom_details"]["event_count"] == 1287
    assert payload["custom_details"]["sentry"]["short_id"] == "CHECKOUT-3F"
    assert event["client_url"] == "https://bridge.example.com"
    assert event["links"] == [
        {"href": "https://bridge.example.com/incidents/42", "text": "Open the incident"},
        {"href": "https://acme.sentry.io/issues/1234567890/", "text": "Sentry issue CHECKOUT-3F"},
        {"href": message.ack_url, "text": "Acknowledge"},
    ]


def test_long_titles_and_keys_stay_within_pagerdutys_limits(fake_pagerduty: FakePagerDuty) -> None:
    message = incident_message(title="x" * 5000, dedup_key="k" * 400)

    result = channels.send(pagerduty(), message, settings(fake_pagerduty))

    assert result.outcome == "sent"  # the fake refuses anything over the limits
    event = fake_pagerduty.requests[0].json()
    assert len(event["payload"]["summary"]) == 1024
    assert len(event["dedup_key"]) == 255
    other = incident_message(title="y", dedup_key="k" * 399 + "j")
    channels.send(pagerduty(), other, settings(fake_pagerduty))
    assert fake_pagerduty.requests[1].json()["dedup_key"] != event["dedup_key"]


def test_a_digest_is_one_trigger_with_its_own_key(fake_pagerduty: FakePagerDuty) -> None:
    message = digest_message(14)

    result = channels.send(pagerduty(), message, settings(fake_pagerduty))

    event = fake_pagerduty.requests[0].json()
    assert result.outcome == "sent"
    assert event["dedup_key"] == f"bridge-7-digest-{message.notification_id}"
    assert event["payload"]["severity"] == "critical"  # the worst of the incidents named
    assert event["payload"]["summary"] == "[DIGEST] checkout: 14 new incidents"
    assert len(event["payload"]["custom_details"]["titles"]) == 10


def test_a_test_triggers_and_then_resolves_so_nobody_stays_paged(
    fake_pagerduty: FakePagerDuty,
) -> None:
    message = channel_test_message()

    result = channels.send(pagerduty(), message, settings(fake_pagerduty))

    assert result.outcome == "sent" and result.error is None
    [alert] = fake_pagerduty.alerts
    assert alert.severity == "info" and alert.events == ["trigger", "resolve"]
    assert alert.status == "resolved"


def test_an_invalid_event_fails_with_pagerdutys_errors(fake_pagerduty: FakePagerDuty) -> None:
    short_key = ChannelTarget("pagerduty", "bad", routing_key="tooShortKey123")

    result = channels.send(short_key, incident_message(), settings(fake_pagerduty))

    assert (result.outcome, result.status_code) == ("failed", 400)
    assert result.error == (
        "PagerDuty answered HTTP 400: Event object is invalid; "
        "Length of 'routing_key' is incorrect (should be 32 characters)"
    )
    assert fake_pagerduty.alerts == []


def test_pagerdutys_errors_are_scrubbed_of_the_routing_key(fake_pagerduty: FakePagerDuty) -> None:
    fake_pagerduty.respond(
        400,
        {
            "status": "invalid event",
            "message": "Event object is invalid",
            "errors": [f"unknown routing_key {ROUTING_KEY}"],
        },
    )

    result = channels.send(pagerduty(), incident_message(), settings(fake_pagerduty))

    assert result.outcome == "failed"
    assert ROUTING_KEY not in (result.error or "") and "[redacted]" in (result.error or "")


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [(429, {"Retry-After": "2"}, 2.0), (500, {}, None), (503, {}, None)],
)
def test_throttling_and_server_errors_are_retried(
    fake_pagerduty: FakePagerDuty, status: int, headers: dict[str, str], retry_after: float | None
) -> None:
    fake_pagerduty.respond(status, {"status": "throttled"}, headers=headers)

    result = channels.send(pagerduty(), incident_message(), settings(fake_pagerduty))

    assert (result.outcome, result.status_code) == ("retry", status)
    assert result.retry_after_seconds == retry_after
    assert fake_pagerduty.alerts == []


def test_503_twice_then_the_retry_opens_exactly_one_incident(
    fake_pagerduty: FakePagerDuty,
) -> None:
    fake_pagerduty.respond(503, "unavailable", times=2)
    message = incident_message()

    outcomes = [
        channels.send(pagerduty(), message, settings(fake_pagerduty)).outcome for _ in range(3)
    ]

    assert outcomes == ["retry", "retry", "sent"]
    assert len(fake_pagerduty.alerts_for(EXPECTED_KEY)) == 1


def test_a_timeout_and_a_refused_connection_are_retried(
    fake_pagerduty: FakePagerDuty, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    fake_pagerduty.respond(202, {"status": "success"}, delay=3)

    slow = channels.send(
        pagerduty(), incident_message(), settings(fake_pagerduty, timeout_seconds=0.5)
    )
    refused = channels.send(
        pagerduty(),
        incident_message(),
        channel_settings(pagerduty_events_url=f"http://127.0.0.1:{free_port()}/v2/enqueue"),
    )

    assert slow.outcome == "retry" and "timed out" in (slow.error or "")
    assert (refused.outcome, refused.error) == ("retry", "connection refused")
    for text in [slow.error, refused.error] + [r.getMessage() for r in caplog.records]:
        assert ROUTING_KEY not in (text or "")
