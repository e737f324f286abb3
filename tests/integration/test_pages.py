"""The web pages through Flask: login, session, CSRF, roles and the live rows fragment."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import Bridge
from app.store.models import Incident, TimelineEntry
from tests.support.integrations import MadeIntegration
from tests.support.pages import PASSWORD, csrf_token, log_in
from tests.support.payloads import build


def an_incident(client: FlaskClient, make_integration: Callable[..., MadeIntegration]) -> int:
    integration = make_integration()
    delivery = build("integration_issue_created")
    answer = client.post(integration.url, data=delivery.body, headers=delivery.headers)
    incident_id: int = answer.get_json()["incident"]["id"]
    return incident_id


def test_pages_need_a_login_and_remember_where_you_were_going(
    client: FlaskClient, people: None
) -> None:
    response = client.get("/incidents?status=acknowledged")

    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_wrong_password_is_401_with_a_plain_message(client: FlaskClient, people: None) -> None:
    assert log_in(client, "admin@example.com", "nope") == 401
    assert log_in(client, "nobody@example.com") == 401
    assert client.get("/incidents").status_code == 302


def test_login_starts_a_fresh_session_and_sets_hardened_cookies(
    client: FlaskClient, people: None
) -> None:
    with client.session_transaction() as before:
        before["planted"] = "by an attacker before login"
    token = csrf_token(client, "/login")

    response = client.post(
        "/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token}
    )

    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie
    assert "SameSite=Lax" in cookie
    with client.session_transaction() as after:
        assert "planted" not in after
        # "<user id>.<session generation>": the generation lets the server end it.
        user_id, _, generation = after["_user_id"].partition(".")
        assert user_id.isdigit() and generation.isdigit()
    assert client.get("/incidents").status_code == 200


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "javascript:x"])
def test_next_never_leaves_the_site(client: FlaskClient, people: None, target: str) -> None:
    token = csrf_token(client, "/login")
    response = client.post(
        "/login",
        data={
            "email": "admin@example.com",
            "password": PASSWORD,
            "csrf_token": token,
            "next": target,
        },
    )

    assert response.headers["Location"] == "/incidents"


def test_forms_without_the_csrf_token_change_nothing(
    client: FlaskClient,
    people: None,
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    incident_id = an_incident(client, make_integration)
    log_in(client, "oncall@example.com")

    forged = client.post(f"/incidents/{incident_id}/acknowledge")
    login_forged = client.post("/login", data={"email": "a@b.c", "password": "x" * 12})

    assert forged.status_code == 302  # back to the page, with the reason flashed
    assert login_forged.status_code in {302, 400}
    with bridge.database.transaction() as session:
        assert session.get(Incident, incident_id).status == "triggered"  # type: ignore[union-attr]
    page = client.get(f"/incidents/{incident_id}").get_data(as_text=True)
    assert "CSRF" in page

    token = csrf_token(client, f"/incidents/{incident_id}")
    done = client.post(f"/incidents/{incident_id}/acknowledge", data={"csrf_token": token})
    assert done.status_code == 302
    with bridge.database.transaction() as session:
        assert session.get(Incident, incident_id).status == "acknowledged"  # type: ignore[union-attr]


def test_people_work_incidents_from_the_page(
    client: FlaskClient,
    people: None,
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
) -> None:
    incident_id = an_incident(client, make_integration)
    log_in(client, "oncall@example.com")
    token = csrf_token(client, f"/incidents/{incident_id}")

    client.post(f"/incidents/{incident_id}/notes", data={"csrf_token": token, "text": "On it"})
    client.post(f"/incidents/{incident_id}/resolve", data={"csrf_token": token})
    again = client.post(f"/incidents/{incident_id}/resolve", data={"csrf_token": token})
    page = client.get(again.headers["Location"]).get_data(as_text=True)

    assert "The incident is already resolved." in page
    with bridge.database.transaction() as session:
        kinds = list(
            session.scalars(
                select(TimelineEntry.kind)
                .where(TimelineEntry.incident_id == incident_id)
                .order_by(TimelineEntry.id)
            )
        )
    assert kinds == ["triggered", "note", "resolved"]


def test_live_rows_fragment_keeps_the_filters(
    client: FlaskClient, people: None, make_integration: Callable[..., MadeIntegration]
) -> None:
    an_incident(client, make_integration)
    log_in(client, "oncall@example.com")

    matching = client.get("/incidents/rows?status=triggered&severity=error").get_data(as_text=True)
    filtered = client.get("/incidents/rows?status=triggered&severity=info").get_data(as_text=True)
    page = client.get("/incidents?status=triggered&severity=error&q=Zahlung").get_data(as_text=True)

    assert "data-incident-id" in matching
    assert "<html" not in matching
    assert "data-incident-id" not in filtered
    assert (
        'data-refresh-url="/incidents/rows?status=triggered&amp;severity=error&amp;q=Zahlung'
        in page
    )


def test_admin_pages_are_403_for_responders(client: FlaskClient, people: None) -> None:
    log_in(client, "oncall@example.com")

    for path in ("/admin/services", "/admin/integrations", "/admin/deliveries"):
        response = client.get(path)
        assert response.status_code == 403
        assert "admin role" in response.get_data(as_text=True)


def test_test_alert_reports_an_unreachable_endpoint_plainly(
    client: FlaskClient, people: None, make_integration: Callable[..., MadeIntegration], app: Flask
) -> None:
    integration = make_integration(secret="s3cr3t")
    log_in(client, "admin@example.com")
    token = csrf_token(client, "/admin/integrations")

    # Flask's test client serves no port, so the real HTTP post has nowhere to go.
    bridge = app.extensions["bridge"]
    original = bridge.settings
    bridge.settings = replace(original, public_base_url="http://127.0.0.1:9")
    try:
        response = client.post(
            f"/admin/integrations/{integration.id}/test-alert", data={"csrf_token": token}
        )
    finally:
        bridge.settings = original
    page = client.get(response.headers["Location"]).get_data(as_text=True)

    assert "could not reach the endpoint" in page
    assert "s3cr3t" not in page


def test_the_json_api_and_webhook_need_no_csrf_token(
    client: FlaskClient, make_integration: Callable[..., MadeIntegration]
) -> None:
    integration = make_integration()
    delivery = build("integration_issue_created")

    assert (
        client.post(integration.url, data=delivery.body, headers=delivery.headers).status_code
        == 202
    )
    assert client.post("/api/incidents/1/acknowledge").status_code == 401
