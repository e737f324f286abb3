"""Channels, silences and the outbox through the API and the `bridge` command line, on
SQLite and PostgreSQL: admin only where it should be, and secrets never echoed."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from sqlalchemy import select

from app.cli import main
from app.extensions import Bridge
from app.services.accounts import Role, create_token, create_user
from app.store.notify_models import NotificationChannel
from tests.support.integrations import MadeIntegration
from tests.support.notify import outbox, send_sentry

Make = Callable[..., MadeIntegration]
T0 = 1_790_000_000
SLACK_URL = "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX"


def token(bridge: Bridge, email: str, role: Role) -> dict[str, str]:
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, email, "correct horse battery staple", role, now)
        return {"Authorization": f"Bearer {create_token(session, email, 't', now).token}"}


@pytest.fixture
def admin(bridge: Bridge) -> dict[str, str]:
    return token(bridge, "admin@example.com", Role.ADMIN)


@pytest.fixture
def responder(bridge: Bridge) -> dict[str, str]:
    return token(bridge, "oncall@example.com", Role.RESPONDER)


def service_id(client: FlaskClient, admin: dict[str, str], name: str) -> int:
    [found] = [
        s for s in client.get("/api/services", headers=admin).get_json() if s["name"] == name
    ]
    return int(found["id"])


def test_admins_create_list_test_and_disable_channels_through_the_api(
    client: FlaskClient, bridge: Bridge, make_integration: Make, admin: dict[str, str]
) -> None:
    integration = make_integration()
    sid = service_id(client, admin, integration.service)

    created = client.post(
        "/api/channels",
        headers=admin,
        json={
            "service_id": sid,
            "kind": "webhook",
            "name": "ops",
            "url": "https://x.example/h",
            "generate_secret": True,
            "events": ["triggered", "resolved"],
        },
    )
    slack = client.post(
        "/api/channels",
        headers=admin,
        json={"service_id": sid, "kind": "slack", "name": "chat", "url": SLACK_URL},
    )

    assert created.status_code == 201, created.get_json()
    document = created.get_json()
    assert document["secret"].startswith("whsec_")
    assert document["events"] == ["resolved", "triggered"]
    assert slack.get_json()["secret"] is None
    listed = client.get("/api/channels", headers=admin)
    assert "XXXXSECRETXXXX" not in listed.get_data(as_text=True)
    assert document["secret"] not in listed.get_data(as_text=True)
    with bridge.database.reading() as session:
        stored = session.scalars(select(NotificationChannel.config_ciphertext)).all()
    assert all("XXXXSECRETXXXX" not in text and "whsec_" not in text for text in stored)

    tested = client.post(f"/api/channels/{document['id']}/test", headers=admin)
    assert tested.status_code == 202 and tested.get_json()["type"] == "test"
    disabled = client.post(f"/api/channels/{document['id']}/disable", headers=admin)
    assert disabled.get_json()["enabled"] is False
    send_sentry(client, integration, at=T0)
    assert sorted((n.channel_id, n.type) for n in outbox(bridge)) == sorted(
        [(document["id"], "test"), (slack.get_json()["id"], "incident.triggered")]
    )


def test_channels_are_admin_only_and_invalid_ones_are_422(
    client: FlaskClient, make_integration: Make, admin: dict[str, str], responder: dict[str, str]
) -> None:
    integration = make_integration()
    sid = service_id(client, admin, integration.service)

    assert client.get("/api/channels", headers=responder).status_code == 403
    assert client.get("/api/notifications", headers=responder).status_code == 403
    bad = client.post(
        "/api/channels",
        headers=admin,
        json={"service_id": sid, "kind": "email", "name": "mail", "events": ["paged"]},
    )
    assert bad.status_code == 422
    assert set(bad.get_json()["error"]["fields"]) == {"events"}


def test_people_silence_an_incident_and_end_the_silence_through_the_api(
    client: FlaskClient,
    bridge: Bridge,
    make_integration: Make,
    admin: dict[str, str],
    responder: dict[str, str],
) -> None:
    integration = make_integration()
    sid = service_id(client, admin, integration.service)
    client.post(
        "/api/channels",
        headers=admin,
        json={"service_id": sid, "kind": "webhook", "name": "ops", "url": "https://x.example/h"},
    )
    incident_id = send_sentry(client, integration, issue_id="12", at=T0)["incident"]["id"]

    silenced = client.post(
        f"/api/incidents/{incident_id}/silence", headers=responder, json={"hours": 4}
    )
    assert silenced.status_code == 201, silenced.get_json()
    send_sentry(client, integration, "resolved", issue_id="12", at=T0 + 60)
    send_sentry(client, integration, issue_id="123", at=T0 + 60)  # not this key: sent
    assert [(n.type, n.status) for n in outbox(bridge)] == [
        ("incident.triggered", "queued"),
        ("incident.resolved", "held"),
        ("incident.triggered", "queued"),
    ]
    assert [s["id"] for s in client.get("/api/silences", headers=responder).get_json()] == [
        silenced.get_json()["id"]
    ]
    assert (
        client.post(
            f"/api/incidents/{incident_id}/silence", headers=responder, json={"hours": 2}
        ).status_code
        == 422
    )

    ended = client.post(f"/api/silences/{silenced.get_json()['id']}/end", headers=responder)
    assert ended.status_code == 200 and ended.get_json()["ended_at"]
    assert client.get("/api/silences", headers=responder).get_json() == []


def test_failed_notifications_are_listed_and_retried_by_admins(
    client: FlaskClient, bridge: Bridge, make_integration: Make, admin: dict[str, str]
) -> None:
    from sqlalchemy import update

    from app.store.notify_models import Notification

    integration = make_integration()
    sid = service_id(client, admin, integration.service)
    client.post(
        "/api/channels",
        headers=admin,
        json={"service_id": sid, "kind": "webhook", "name": "ops", "url": "https://x.example/h"},
    )
    send_sentry(client, integration, at=T0)
    with bridge.database.transaction() as session:
        session.execute(update(Notification).values(status="failed", last_error="HTTP 410"))

    [failed] = client.get("/api/notifications?status=failed", headers=admin).get_json()
    retried = client.post(f"/api/notifications/{failed['id']}/retry", headers=admin)
    again = client.post(f"/api/notifications/{failed['id']}/retry", headers=admin)

    assert failed["last_error"] == "HTTP 410"
    assert retried.status_code == 202 and retried.get_json()["status"] == "queued"
    assert again.status_code == 409


# ---------------------------------------------------------------- the command line


@pytest.fixture
def cli(bridge: Bridge, monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    settings = bridge.settings
    monkeypatch.setenv("DATABASE_URL", settings.database_url)
    monkeypatch.setenv("BRIDGE_ENCRYPTION_KEYS", ",".join(settings.encryption_keys))
    monkeypatch.setenv("BRIDGE_INSTANCE_PATH", str(settings.instance_path))

    def run(*args: str, ok: bool = True) -> Any:
        result = CliRunner().invoke(main, list(args))
        assert (result.exit_code == 0) is ok, result.output
        return json.loads(result.stdout) if ok else result

    return run


def test_the_command_line_creates_lists_tests_and_disables_channels(
    cli: Callable[..., Any], bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()

    created = cli(
        "channel", "create", "--service", integration.service, "--kind", "webhook",
        "--name", "ops", "--url", "https://x.example/hook", "--generate-secret",
        "--min-severity", "warning", "--events", "triggered,resolved",
    )  # fmt: skip
    email = cli(
        "channel", "create", "--service", integration.service, "--kind", "email",
        "--name", "mail", "--to", "a@example.com,b@example.com",
    )  # fmt: skip

    assert created["secret"].startswith("whsec_") and email["secret"] is None
    assert (created["min_severity"], created["events"]) == ("warning", ["resolved", "triggered"])
    assert email["target"] == "a@example.com, +1"
    listed = cli("channel", "list", "--service", integration.service)
    assert [c["name"] for c in listed] == ["ops", "mail"]
    assert created["secret"] not in json.dumps(listed)
    assert cli("channel", "test", str(created["id"]))["type"] == "test"
    assert cli("channel", "disable", str(created["id"]))["enabled"] is False
    refused = cli("channel", "create", "--service", "Nope", "--kind", "slack", "--name", "x",
                  "--url", SLACK_URL, ok=False)  # fmt: skip
    assert "No service named 'Nope'" in refused.output


def test_the_command_line_creates_lists_and_ends_silences(
    cli: Callable[..., Any], make_integration: Make
) -> None:
    integration = make_integration()

    made = cli("silence", "create", "--service", integration.service, "--minutes", "30",
               "--match", "cart", "--reason", "deploy")  # fmt: skip
    end = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    until = cli("silence", "create", "--service", integration.service,
                "--until", end.isoformat(), "--reason", "holiday")  # fmt: skip

    assert (made["match"], made["reason"], made["created_by"][:4]) == ("cart", "deploy", "cli:")
    assert datetime.fromisoformat(until["ends_at"]) == end
    assert [s["id"] for s in cli("silence", "list")] == [until["id"], made["id"]]
    assert cli("silence", "end", str(made["id"]))["ended_at"]
    assert [s["id"] for s in cli("silence", "list")] == [until["id"]]
    assert cli("silence", "create", "--service", integration.service, "--reason", "x",
               ok=False).exit_code == 2  # fmt: skip
