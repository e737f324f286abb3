"""Payload links and field lengths on the incident (issue 13): only Sentry's own pages
become links, a later delivery cannot point "Open in Sentry" elsewhere, and a huge title
stays in the stored delivery, not on every list page.

Payloads: the integration-platform `issue.created` fixture (tests/fixtures/sentry), with
its `web_url` and `title` changed as a hostile sender would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from app.domain.alerts import MAX_TITLE_LENGTH
from app.extensions import Bridge
from app.services.accounts import Role, create_user
from app.store.models import Delivery, Incident
from tests.support.integrations import MadeIntegration
from tests.support.pages import PASSWORD, log_in
from tests.support.payloads import build, load, seen_at

Make = Callable[..., MadeIntegration]
T0 = 1_790_000_000
GOOD = "https://acme-gmbh.sentry.io/issues/4512345678/"


def created(web_url: str | None = None, title: str | None = None, at: int = T0) -> Any:
    _resource, payload = load("integration_issue_created")
    if web_url is not None:
        payload["data"]["issue"]["web_url"] = web_url
    if title is not None:
        payload["data"]["issue"]["title"] = title
    return seen_at(payload, at)


def deliver(client: FlaskClient, integration: MadeIntegration, payload: Any, at: int) -> None:
    delivery = build(payload, resource="issue", timestamp=at)
    response = client.post(integration.url, data=delivery.body, headers=delivery.headers)
    assert response.status_code == 202, response.get_json()


def the_incident(bridge: Bridge) -> Incident:
    with bridge.database.transaction() as session:
        return session.scalars(select(Incident)).one()


def responder(bridge: Bridge, client: FlaskClient) -> None:
    with bridge.database.transaction() as session:
        create_user(session, "oncall@example.com", PASSWORD, Role.RESPONDER, datetime.now(UTC))
    log_in(client, "oncall@example.com")


def test_a_foreign_issue_url_is_shown_as_text_not_as_a_link(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    deliver(client, integration, created(web_url="https://evil.example/issues/1/"), T0)
    responder(bridge, client)

    page = client.get(f"/incidents/{the_incident(bridge).id}").get_data(as_text=True)

    assert 'href="https://evil.example' not in page
    assert "not a Sentry link: https://evil.example/issues/1/" in page


def test_a_javascript_url_is_not_even_kept(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    deliver(client, integration, created(web_url="javascript:alert(document.cookie)"), T0)

    assert the_incident(bridge).sentry_issue_url is None


def test_a_sentry_issue_url_is_a_link(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    deliver(client, integration, created(web_url=GOOD), T0)
    responder(bridge, client)

    page = client.get(f"/incidents/{the_incident(bridge).id}").get_data(as_text=True)

    assert f'href="{GOOD}"' in page


def test_a_later_delivery_cannot_replace_a_good_link_with_a_foreign_one(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    deliver(client, integration, created(web_url=GOOD), T0)

    deliver(client, integration, created(web_url="https://evil.example/x", at=T0 + 60), T0 + 60)

    incident = the_incident(bridge)
    assert incident.event_count == 2
    assert incident.sentry_issue_url == GOOD


def test_a_900_kb_title_is_bounded_on_the_incident_and_kept_whole_in_the_delivery(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    payload = created(title="A" * 900_000)  # 900 KB of title
    payload["data"]["issue"]["shortId"] = "S" * 5000
    delivery = build(payload, resource="issue", timestamp=T0)
    original = bridge.settings
    bridge.settings = replace(original, max_body_bytes=2 * 1024 * 1024)
    try:
        response = client.post(integration.url, data=delivery.body, headers=delivery.headers)
    finally:
        bridge.settings = original
    assert response.status_code == 202, response.get_json()
    responder(bridge, client)

    listed = client.get("/api/incidents").get_data()
    page = client.get("/incidents").get_data()

    incident = the_incident(bridge)
    assert len(incident.title) == MAX_TITLE_LENGTH
    assert len(incident.sentry_short_id or "") <= 128
    assert len(listed) < 20_000 and len(page) < 60_000
    with bridge.database.transaction() as session:
        stored = session.scalars(select(Delivery.body)).one()
    assert stored == delivery.body
