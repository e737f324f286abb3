"""Acknowledging from a notification: a signed link, a confirmation page, a POST; single
use, expiring, and named in the timeline. On SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import urlparse

from flask.testing import FlaskClient
from sqlalchemy import select

from app.domain import ack_link
from app.extensions import Bridge
from app.jobs.notify import NotificationSender
from app.store.models import Incident, TimelineEntry
from tests.support.integrations import MadeIntegration
from tests.support.notify import Clock, FakeSend, make_channel, outbox, send_sentry

Make = Callable[..., MadeIntegration]
T0 = 1_790_000_000


def ack_path(client: FlaskClient, bridge: Bridge, integration: MadeIntegration) -> str:
    send_sentry(client, integration, at=T0)
    send = FakeSend()
    NotificationSender(bridge, send, clock=Clock()).drain()
    [(_target, message)] = send.calls
    assert message.ack_url is not None
    return urlparse(message.ack_url).path


def status(bridge: Bridge) -> str:
    with bridge.database.reading() as session:
        [incident] = session.scalars(select(Incident))
        return incident.status


def test_opening_the_link_only_asks_and_the_button_acknowledges_once(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service, name="ops-chat", events="triggered,acknowledged")
    path = ack_path(client, bridge, integration)

    page = client.get(path)  # what a link preview does

    assert page.status_code == 200
    assert b'<form method="post"' in page.data and b"ops-chat" in page.data
    assert status(bridge) == "triggered"

    answer = client.post(path)  # no session, no CSRF token: the link authorises

    assert answer.status_code == 302
    assert status(bridge) == "acknowledged"
    with bridge.database.reading() as session:
        entry = session.scalars(
            select(TimelineEntry).where(TimelineEntry.kind == "acknowledged")
        ).one()
    assert entry.message == "Acknowledged by notification link via notification link to ops-chat"
    assert entry.data == {"by": "link", "via": "notification link to ops-chat"}
    # The acknowledgement is itself an incident event the channel asked for.
    assert [n.type for n in outbox(bridge)][-1] == "incident.acknowledged"

    again = client.post(path)
    assert again.status_code == 409
    assert b"already used" in again.data
    assert b"This link has been used" in client.get(path).data


def test_an_expired_or_altered_link_is_refused(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    make_channel(bridge, integration.service)
    incident_id = send_sentry(client, integration, at=T0)["incident"]["id"]
    key = ack_link.link_key(bridge.session_secret)
    old = ack_link.sign(key, "n-1", incident_id, None, datetime.now(UTC) - timedelta(hours=25))
    forged = ack_link.sign(ack_link.link_key("guess"), "n-2", incident_id, None, datetime.now(UTC))

    assert client.get(f"/ack/{old}").status_code == 403
    assert client.post(f"/ack/{old}").status_code == 403
    assert client.post(f"/ack/{forged}").status_code == 403
    assert b"expired" in client.get(f"/ack/{old}").data
    assert status(bridge) == "triggered"
