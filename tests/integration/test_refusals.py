"""Refused deliveries never crowd out genuine ones: their own rate-limit buckets, and a
bounded record (8 KiB of the body, its size and SHA-256) so that they cannot fill a disk."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app import create_app
from app.domain.body_record import PREFIX_BYTES
from app.domain.errors import Conflict
from app.extensions import Bridge
from app.services import catalog
from app.services.replays import replay_delivery
from app.store.models import Delivery, Incident
from config.settings import Settings
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, issue_event, load

Make = Callable[..., MadeIntegration]


def deliveries(bridge: Bridge) -> list[Delivery]:
    with bridge.database.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def large_issue(size: int) -> dict[str, object]:
    """An issue.created whose culprit carries `size` bytes of padding (a long stack frame)."""
    _resource, payload = load("integration_issue_created")
    payload["data"]["issue"]["culprit"] = "x" * size
    return payload


@pytest.fixture
def limited_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    """3 applied deliveries a minute per integration, 4 refused ones, 2 unknown ids."""
    application = create_app(
        replace(
            settings,
            instance_path=tmp_path,
            rate_limit_per_minute=3,
            refused_rate_limit_per_minute=4,
            unknown_rate_limit_per_minute=2,
        )
    )
    yield application
    application.extensions["bridge"].database.dispose()


# ---------------------------------------------------------------- rate limits


def test_a_flood_of_bad_signatures_leaves_genuine_deliveries_admitted(
    limited_app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="the-real-secret")
    client = limited_app.test_client()
    forged = [build("integration_issue_created", secret="a-guess") for _ in range(10)]
    genuine = [issue_event(n, secret=integration.secret) for n in range(3)]

    forged_answers = [
        client.post(integration.url, data=d.body, headers=d.headers).status_code for d in forged
    ]
    genuine_answers = [
        client.post(integration.url, data=d.body, headers=d.headers).status_code for d in genuine
    ]

    # The forgeries spend their own bucket (4 a minute): refused 401, then 429.
    assert forged_answers == [401] * 4 + [429] * 6
    assert genuine_answers == [202, 202, 202]
    with bridge.database.transaction() as session:
        assert session.scalars(select(Incident.event_count)).one() == 3
    kept = deliveries(bridge)
    assert len(kept) == 13  # every one recorded
    assert {d.signature_outcome for d in kept[:10]} == {"mismatch"}


def test_a_missing_signature_spends_the_refused_bucket_not_the_integrations(
    limited_app: Flask, make_integration: Make
) -> None:
    integration = make_integration(secret="the-real-secret")
    client = limited_app.test_client()
    unsigned = build("integration_issue_created")
    for _ in range(6):
        client.post(integration.url, data=unsigned.body, headers=unsigned.headers)

    good = build("integration_issue_created", secret=integration.secret)
    assert client.post(integration.url, data=good.body, headers=good.headers).status_code == 202


def test_unknown_integration_ids_are_rate_limited_per_client_address(
    limited_app: Flask, make_integration: Make
) -> None:
    known = make_integration()
    client = limited_app.test_client()
    d = build("integration_issue_created")

    def post_unknown(address: str, number: int) -> int:
        return client.post(
            f"/api/integrations/sentry?integrationId=guess-{number}",
            data=d.body,
            headers=d.headers,
            environ_base={"REMOTE_ADDR": address},
        ).status_code

    from_one = [post_unknown("203.0.113.7", n) for n in range(4)]
    from_another = post_unknown("198.51.100.9", 99)
    genuine = client.post(
        known.url, data=d.body, headers=d.headers, environ_base={"REMOTE_ADDR": "203.0.113.7"}
    )

    assert from_one == [404, 404, 429, 429]
    assert from_another == 404
    # The address's guesses do not stop a known integration's deliveries from it.
    assert genuine.status_code == 202
    limited = client.post(
        "/api/integrations/sentry?integrationId=guess-x",
        data=d.body,
        headers=d.headers,
        environ_base={"REMOTE_ADDR": "203.0.113.7"},
    )
    assert limited.get_json()["error"]["code"] == "rate_limited"
    assert "BRIDGE_UNKNOWN_RATE_LIMIT_PER_MINUTE" in limited.get_json()["error"]["message"]
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


def test_a_disabled_integration_is_rate_limited_too(
    limited_app: Flask, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    with bridge.database.transaction() as session:
        catalog.set_enabled(session, integration.id, False, datetime.now(UTC))
    client = limited_app.test_client()
    d = build("integration_issue_created")

    answers = [
        client.post(integration.url, data=d.body, headers=d.headers).status_code for _ in range(6)
    ]

    assert answers == [403] * 4 + [429] * 2
    assert [k.error_code for k in deliveries(bridge)] == ["integration_disabled"] * 4 + [
        "rate_limited"
    ] * 2


# ---------------------------------------------------------------- bounded records


def test_a_refused_delivery_keeps_only_a_prefix_with_its_size_and_hash(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="the-real-secret")
    forged = build(large_issue(40_000), resource="issue", secret="a-guess")

    response = client.post(integration.url, data=forged.body, headers=forged.headers)

    assert response.status_code == 401
    [stored] = deliveries(bridge)
    assert stored.body == forged.body[:PREFIX_BYTES]
    assert stored.body_size == len(forged.body) > 40_000
    assert stored.body_sha256 == hashlib.sha256(forged.body).hexdigest()
    assert stored.body_truncated is True


def test_an_applied_delivery_keeps_its_whole_body(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="the-real-secret")
    genuine = build(large_issue(40_000), resource="issue", secret=integration.secret)

    response = client.post(integration.url, data=genuine.body, headers=genuine.headers)

    assert response.status_code == 202, response.get_json()
    [stored] = deliveries(bridge)
    assert stored.body == genuine.body
    assert stored.body_truncated is False
    assert stored.body_sha256 == hashlib.sha256(genuine.body).hexdigest()


def test_replaying_a_refused_delivery_with_a_truncated_body_is_refused_clearly(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="the-real-secret")
    forged = build(large_issue(40_000), resource="issue", secret="a-guess")
    client.post(integration.url, data=forged.body, headers=forged.headers)
    [stored] = deliveries(bridge)

    with pytest.raises(Conflict) as refused, bridge.database.transaction() as session:
        replay_delivery(
            session, stored.id, "admin@example.com", bridge.secrets, 64 * 1024, datetime.now(UTC)
        )

    message = refused.value.message
    assert f"only the first {PREFIX_BYTES} of its {len(forged.body)} bytes" in message
    assert "cannot be replayed" in message
    assert len(deliveries(bridge)) == 1  # nothing half-applied


def test_a_small_refused_delivery_is_kept_whole_and_can_be_replayed(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="the-real-secret")
    forged = build("integration_issue_created", secret="a-guess")
    client.post(integration.url, data=forged.body, headers=forged.headers)
    [stored] = deliveries(bridge)

    with bridge.database.transaction() as session:
        outcome = replay_delivery(
            session, stored.id, "admin@example.com", bridge.secrets, 64 * 1024, datetime.now(UTC)
        )

    assert stored.body == forged.body and stored.body_truncated is False
    assert outcome.action == "triggered"
