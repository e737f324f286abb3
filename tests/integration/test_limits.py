"""Limits and hostile input at the receiver: rate limit, nesting, odd JSON, wrong types.

Whatever arrives, the answer is a 2xx or a clear 4xx in the one error shape: never a 500.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.domain.json_body import MAX_DEPTH
from app.extensions import Bridge
from app.services.spooled_deliveries import drain_spool
from app.store.models import Delivery, Incident
from app.web.admission import AdmissionControl
from config.settings import Settings
from tests.support.hostile import hostile_cases
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load, seen_at, sentry_bytes

Make = Callable[..., MadeIntegration]


def deliveries(bridge: Bridge) -> list[Delivery]:
    with bridge.database.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def assert_clear_refusal(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.get_data(as_text=True)
    error: dict[str, Any] = response.get_json()["error"]
    assert error["code"] == code
    assert error["status"] == status
    assert error["message"]
    return error


# ---------------------------------------------------------------- rate limit


@pytest.fixture
def limited_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """The same database, a limit of 3 deliveries a minute, and its own counter file."""
    application = create_app(replace(settings, instance_path=tmp_path, rate_limit_per_minute=3))
    yield application
    application.extensions["bridge"].database.dispose()


def test_deliveries_over_the_limit_are_429_with_retry_after_and_still_recorded(
    limited_app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cret-for-limits")
    client = limited_app.test_client()

    responses = [
        client.post(integration.url, data=d.body, headers=d.headers)
        for d in (
            build(
                seen_at(load("integration_issue_created")[1], 1_790_000_000 + n),
                resource="issue",
                secret=integration.secret,
            )
            for n in range(5)
        )
    ]

    assert [r.status_code for r in responses] == [202, 202, 202, 429, 429]
    for refused in responses[3:]:
        error = assert_clear_refusal(refused, 429, "rate_limited")
        assert 1 <= int(refused.headers["Retry-After"]) <= 20
        assert error["retry_after"] == int(refused.headers["Retry-After"])
        assert "BRIDGE_RATE_LIMIT_PER_MINUTE" in error["message"]
    kept = deliveries(bridge)
    assert len(kept) == 5
    assert [(d.decision, d.error_code, d.http_status) for d in kept[3:]] == [
        ("refused", "rate_limited", 429)
    ] * 2
    assert all(d.body for d in kept), "a refused delivery keeps its body for replay"
    with bridge.database.transaction() as session:
        assert session.scalars(select(Incident.event_count)).one() == 3


def test_the_limit_is_per_integration(
    limited_app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    busy, quiet = make_integration(), make_integration()
    client = limited_app.test_client()
    for _ in range(4):
        d = build("integration_issue_created")
        client.post(busy.url, data=d.body, headers=d.headers)

    d = build("integration_issue_created")
    assert client.post(quiet.url, data=d.body, headers=d.headers).status_code == 202


def test_a_rate_limited_delivery_can_be_replayed_by_an_admin(
    limited_app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    from datetime import UTC, datetime

    from app.services.replays import replay_delivery

    integration = make_integration()
    client = limited_app.test_client()
    for _ in range(4):
        d = build("integration_issue_created")
        client.post(integration.url, data=d.body, headers=d.headers)
    refused = deliveries(bridge)[-1]
    assert refused.error_code == "rate_limited"

    with bridge.database.transaction() as session:
        outcome = replay_delivery(
            session, refused.id, "admin@example.com", bridge.secrets, 64 * 1024, datetime.now(UTC)
        )
        assert outcome.error is None
        assert outcome.action == "deduplicated"


# ---------------------------------------------------------------- bodies


def nested(levels: int) -> bytes:
    return b'{"data":' * (levels - 1) + b"{}" + b"}" * (levels - 1)


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (nested(MAX_DEPTH + 1), f"nest more than {MAX_DEPTH} levels"),
        (b"[" * 60_000, f"nest more than {MAX_DEPTH} levels"),
        (b'{"action": "created", "data": {"issue": {"id": NaN}}}', "NaN is not a JSON value"),
        (b'{"issue": {"id": "1", "level": Infinity}}', "Infinity is not a JSON value"),
        (b'{"issue": {"id": ' + b"7" * 5000 + b"}}", "a number is out of range"),
        (b'{"issue": {"id": "1", "title": "\xc3\x28"}}', "not UTF-8 text"),
        (b"\xef\xbb\xbf\xef\xbb\xbf{}", "starts with a second byte-order mark"),
    ],
)
def test_hostile_json_is_a_400_that_says_what_is_wrong(
    client: FlaskClient, make_integration: Make, bridge: Bridge, body: bytes, says: str
) -> None:
    integration = make_integration()

    response = client.post(integration.url, data=body, content_type="application/json")

    error = assert_clear_refusal(response, 400, "malformed_json")
    assert says in error["message"]
    assert deliveries(bridge)[-1].http_status == 400


def test_nesting_at_the_limit_is_read_normally(client: FlaskClient, make_integration: Make) -> None:
    integration = make_integration()
    _resource, payload = load("integration_issue_created")
    deep: Any = "x"
    for _ in range(MAX_DEPTH - 4):
        deep = {"d": deep}
    payload["data"]["issue"]["metadata"] = deep  # 4 levels down already
    body = sentry_bytes(payload)

    response = client.post(
        integration.url,
        data=body,
        headers={"Content-Type": "application/json", "Sentry-Hook-Resource": "issue"},
    )

    assert response.status_code == 202, response.get_json()


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b'{"issue": {"id": "1"}}', "text/plain", 415, "unsupported_content_type"),
        (b"issue=1", "application/x-www-form-urlencoded", 415, "unsupported_content_type"),
        (b"<issue/>", "application/xml", 415, "unsupported_content_type"),
        (b"[]", "application/json", 400, "unrecognised_payload"),
        (b'"issue"', "application/json", 400, "unrecognised_payload"),
        (b"null", "application/json", 400, "unrecognised_payload"),
        (b"1e999", "application/json", 400, "unrecognised_payload"),
    ],
)
def test_not_json_or_not_an_object_is_a_clear_4xx(
    client: FlaskClient,
    make_integration: Make,
    body: bytes,
    content_type: str,
    status: int,
    code: str,
) -> None:
    integration = make_integration()

    response = client.post(integration.url, data=body, content_type=content_type)

    assert_clear_refusal(response, status, code)


def test_duplicate_keys_and_huge_exponents_are_read_not_crashed_on(
    client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    body = (
        b'{"issue": {"id": "1", "id": "2", "level": "fatal", "lastSeen": 1e999,'
        b' "title": "' + b"t" * 60_000 + b'"}, "action": "created", "action": "created"}'
    )

    response = client.post(integration.url, data=body, content_type="application/json")

    assert response.status_code == 202, response.get_json()
    answer = response.get_json()
    assert answer["dedup_key"] == "sentry-2"
    assert answer["incident"]["severity"] == "critical"


@pytest.mark.parametrize(
    "headers",
    [
        {"Sentry-Hook-Timestamp": "nan"},
        {"Sentry-Hook-Timestamp": "1e999"},
        {"Sentry-Hook-Timestamp": "-99999999999999999999"},
        {"Sentry-Hook-Timestamp": "9" * 400},
        {"Request-ID": "r" * 5000},
        {"Sentry-Hook-Resource": "ISSUE\x00" + "x" * 500},
        {"Sentry-Hook-Resource": "métric_alert"},
        {"User-Agent": "u" * 5000, "Content-Type": "application/json; charset=" + "x" * 500},
    ],
)
def test_hostile_headers_are_not_a_500(
    client: FlaskClient, make_integration: Make, headers: dict[str, str]
) -> None:
    integration = make_integration()
    delivery = build("integration_issue_created")

    response = client.post(
        integration.url, data=delivery.body, headers={**delivery.headers, **headers}
    )

    assert response.status_code in {202, 400}, response.get_json()


# ---------------------------------------------------------------- every field, wrong types


# The slowest case of the suite (~1,400 deliveries): run once, on PostgreSQL, the database
# that refuses NUL and lone surrogates. SQLite stores whatever it is given, and the parsing
# half of the rule is checked for every case without a database in tests/unit/test_alerts.py.
@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_wrong_type_in_any_field_of_any_fixture_is_never_a_500(
    client: FlaskClient, make_integration: Make, bridge: Bridge
) -> None:
    integration = make_integration()
    failures = []
    for name, resource, body in hostile_cases():
        headers = {"Content-Type": "application/json"}
        if resource:
            headers["Sentry-Hook-Resource"] = resource
        response = client.post(integration.url, data=body, headers=headers)
        if response.status_code >= 500 or response.status_code not in {202, 400}:
            failures.append((name, response.status_code, body[:300]))

    assert failures == []
    assert not [d for d in deliveries(bridge) if d.decision == "failed"]


def test_deliveries_spooled_by_a_busy_worker_spend_the_limit_and_past_it_are_429_and_stored_refused(
    limited_app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cret-for-limits")
    client = limited_app.test_client()
    sent = [
        build(
            seen_at(load("integration_issue_created")[1], 1_790_000_000 + n),
            resource="issue",
            secret=integration.secret,
        )
        for n in range(5)
    ]
    # The first is applied (the worker now has its copy of the integration); the other
    # four find every apply slot taken, as under overload, and go to the spool.
    first = client.post(integration.url, data=sent[0].body, headers=sent[0].headers)
    assert first.get_json()["action"] == "triggered"
    control = AdmissionControl(slots=1, wait_seconds=0.01)
    limited_app.extensions["bridge_admission"] = control
    limited_bridge: Bridge = limited_app.extensions["bridge"]
    with control.slot(time.time()) as held:
        assert held.ok
        spooled = [client.post(integration.url, data=d.body, headers=d.headers) for d in sent[1:]]

    # Two more fit the limit of 3 (202 spooled); the last two are refused as they would
    # have been had they been applied.
    assert [r.status_code for r in spooled] == [202, 202, 429, 429]
    assert [r.get_json()["action"] for r in spooled[:2]] == ["spooled", "spooled"]
    for refused in spooled[2:]:
        error = assert_clear_refusal(refused, 429, "rate_limited")
        assert int(refused.headers["Retry-After"]) >= 1
        assert error["retry_after"] == int(refused.headers["Retry-After"])
    assert limited_bridge.spool.pending_deliveries() == 4
    assert len(deliveries(bridge)) == 1  # nothing else stored yet: the database was "busy"

    report = drain_spool(
        limited_bridge.database, limited_bridge.secrets, limited_bridge.spool, 1024 * 1024
    )

    assert (report.applied, report.refused, report.remaining) == (2, 2, 0)
    kept = deliveries(bridge)
    assert [(d.decision, d.http_status) for d in kept] == [
        ("triggered", 202),
        ("deduplicated", 202),
        ("deduplicated", 202),
        ("refused", 429),
        ("refused", 429),
    ]
    for refused_row in kept[3:]:
        assert refused_row.error_code == "rate_limited"
        assert refused_row.signature_outcome == "valid"  # authenticated before the limit
        assert refused_row.spool_id is not None
        assert refused_row.body is not None and refused_row.body_sha256  # bounded body kept
    with bridge.database.transaction() as session:
        assert session.scalars(select(Incident.event_count)).one() == 3
