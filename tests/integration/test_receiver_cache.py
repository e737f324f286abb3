"""Each worker reads deliveries with its own copy of the integration (receiver_cache.py):
an edit made elsewhere (here the `bridge` CLI, its own app and engine, as on another
host) must decide the very next delivery, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from app.cli import main
from app.extensions import Bridge
from app.services.receiver_cache import ReceiverCache
from app.store.receiver_rows import Receiver, ServiceRef
from tests.support.databases import cli_env
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build
from tests.support.receiver import T0, deliveries, incidents, issue, post

Make = Callable[..., MadeIntegration]
Cli = Callable[..., str]


@pytest.fixture
def cli(bridge: Bridge, encryption_key: str, tmp_path: Path) -> Cli:
    env = cli_env(bridge.database.url, encryption_key, tmp_path, BRIDGE_SECRET_GRACE_SECONDS="0")

    def run(*args: str) -> str:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    return run


def _send(client: FlaskClient, integration: MadeIntegration, at: int, secret: str | None) -> int:
    delivery = build(issue("created", last_seen=at), resource="issue", secret=secret, timestamp=at)
    return post(client, integration, delivery).status_code


def _cached(client: FlaskClient) -> ReceiverCache:
    cache = client.application.extensions["bridge_receivers"]
    assert isinstance(cache, ReceiverCache)
    return cache


def test_a_disable_elsewhere_refuses_the_next_delivery_and_an_enable_applies_again(
    client: FlaskClient, bridge: Bridge, make_integration: Make, cli: Cli
) -> None:
    integration = make_integration(secret="s3cr3t")
    assert _send(client, integration, T0, "s3cr3t") == 202
    assert _cached(client).get(integration.id) is not None  # the copy is warm

    cli("integration", "disable", integration.id)
    assert _send(client, integration, T0 + 60, "s3cr3t") == 403
    assert _cached(client).get(integration.id).enabled is False  # type: ignore[union-attr]

    cli("integration", "enable", integration.id)
    assert _send(client, integration, T0 + 120, "s3cr3t") == 202

    decisions = [d.decision for d in deliveries(bridge)]
    assert decisions == ["triggered", "refused", "deduplicated"]
    assert [i.event_count for i in incidents(bridge)] == [2]


def test_a_rotated_secret_takes_effect_on_the_next_delivery(
    client: FlaskClient, bridge: Bridge, make_integration: Make, cli: Cli
) -> None:
    integration = make_integration(secret="s3cr3t")
    assert _send(client, integration, T0, "s3cr3t") == 202

    cli("integration", "rotate-secret", integration.id, "--secret", "n3w-s3cr3t")

    # Read with the old copy this one would pass; the statement sees the new row.
    assert _send(client, integration, T0 + 60, "s3cr3t") == 401
    assert _send(client, integration, T0 + 120, "n3w-s3cr3t") == 202
    outcomes = [(d.decision, d.signature_outcome) for d in deliveries(bridge)]
    assert outcomes == [
        ("triggered", "valid"),
        ("refused", "mismatch"),
        ("deduplicated", "valid"),
    ]
    assert [i.event_count for i in incidents(bridge)] == [2]


def test_a_removed_secret_lets_the_next_unsigned_delivery_in(
    client: FlaskClient, bridge: Bridge, make_integration: Make, cli: Cli
) -> None:
    integration = make_integration(secret="s3cr3t")
    assert _send(client, integration, T0, "s3cr3t") == 202
    assert _send(client, integration, T0 + 60, None) == 401

    cli("integration", "remove-secret", integration.id)
    assert _send(client, integration, T0 + 120, None) == 202
    assert [i.event_count for i in incidents(bridge)] == [2]


def test_a_warm_copy_still_claims_request_ids_and_bodies(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    assert _send(client, integration, T0, "s3cr3t") == 202
    delivery = build(
        issue("created", last_seen=T0 + 60), resource="issue", secret="s3cr3t", timestamp=T0 + 60
    )
    first = post(client, integration, delivery).get_json()
    again = post(client, integration, delivery).get_json()  # same Request-ID, same body
    headers = {**delivery.headers, "Request-ID": "another-request-id"}
    resent = client.post(integration.url, data=delivery.body, headers=headers).get_json()

    assert first["action"] == "deduplicated"
    assert again["action"] == "duplicate_delivery"
    assert "Request-ID" in again["reason"]
    assert again["incident"]["id"] == first["incident"]["id"]
    assert resent["action"] == "duplicate_delivery"
    assert "signed body" in resent["reason"]
    assert [i.event_count for i in incidents(bridge)] == [2]


def test_the_copy_forgets_an_id_that_no_longer_exists() -> None:
    cache = ReceiverCache(max_entries=2)

    def receiver(name: str) -> Receiver:
        return Receiver(name, True, None, None, None, ServiceRef(1, "Payments", 30))

    cache.put(receiver("a"))
    cache.put(receiver("b"))
    cache.forget("a")
    assert cache.get("a") is None
    cache.put(receiver("c"))
    cache.put(receiver("d"))  # full: starts over rather than grow without bound
    assert cache.get("d") is not None
    assert len([k for k in "abcd" if cache.get(k) is not None]) <= 2
