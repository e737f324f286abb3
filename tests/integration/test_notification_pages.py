"""The channels admin page and "Silence this issue" on the incident page, through Flask
with a logged-in browser session (CSRF tokens included)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import Bridge
from app.services.accounts import Role, create_user
from tests.support.integrations import MadeIntegration
from tests.support.notify import make_channel, outbox, send_sentry
from tests.support.pages import PASSWORD, csrf_token

Make = Callable[..., MadeIntegration]
T0 = 1_790_000_000


def log_in(client: FlaskClient, bridge: Bridge, role: Role) -> str:
    email = f"{role.value}@example.com"
    with bridge.database.transaction() as session:
        create_user(session, email, PASSWORD, role, datetime.now(UTC))
    token = csrf_token(client, "/login")
    client.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
    return email


def test_admins_create_channels_see_them_masked_send_tests_and_disable_them(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    log_in(client, bridge, Role.ADMIN)
    with bridge.database.reading() as session:
        from app.store import queries

        service = queries.get_service_by_name(session, integration.service)
        assert service is not None
        service_id = service.id
    token = csrf_token(client, "/admin/channels")

    created = client.post(
        "/admin/channels",
        data={
            "csrf_token": token,
            "service_id": str(service_id),
            "kind": "webhook",
            "name": "ops",
            "url": "https://receiver.example/hooks/abcdefsecretpath",
            "generate_secret": "on",
            "events": ["triggered", "resolved"],
        },
    )

    assert created.status_code == 200
    secret = re.search(r'value="(whsec_[^"]+)"', created.get_data(as_text=True))
    assert secret is not None
    page = client.get("/admin/channels").get_data(as_text=True)
    assert "ops" in page and "resolved, triggered" in page
    assert "abcdefsecretpath" not in page and secret.group(1) not in page
    [channel] = re.findall(r"/admin/channels/(\d+)/test", page)
    assert (
        client.post(f"/admin/channels/{channel}/test", data={"csrf_token": token}).status_code
        == 302
    )
    assert [n.type for n in outbox(bridge)] == ["test"]
    client.post(f"/admin/channels/{channel}/enabled", data={"csrf_token": token, "enabled": "0"})
    assert "(disabled)" in client.get("/admin/channels").get_data(as_text=True)


@pytest.mark.parametrize("hours", [1, 4, 24])
def test_silence_this_issue_holds_its_notifications_for_the_hours_chosen(
    client: FlaskClient, bridge: Bridge, make_integration: Make, hours: int
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    incident_id = send_sentry(client, integration, at=T0)["incident"]["id"]
    log_in(client, bridge, Role.RESPONDER)
    page = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert f"Silence this issue for {hours} h" in page

    answer = client.post(
        f"/incidents/{incident_id}/silence",
        data={"csrf_token": csrf_token(client, f"/incidents/{incident_id}"), "hours": str(hours)},
    )
    send_sentry(client, integration, "resolved", at=T0 + 60)

    assert answer.status_code == 302
    assert [n.status for n in outbox(bridge)] == ["queued", "held"]
    with bridge.database.reading() as session:
        from app.store.notify_models import Silence

        [silence] = session.scalars(select(Silence)).all()
        assert round((silence.ends_at - silence.starts_at).total_seconds()) == hours * 3600
        assert silence.created_by == "responder@example.com"


def test_responders_cannot_open_the_channels_page(client: FlaskClient, bridge: Bridge) -> None:
    log_in(client, bridge, Role.RESPONDER)

    assert client.get("/admin/channels").status_code == 403
