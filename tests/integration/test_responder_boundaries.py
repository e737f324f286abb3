"""What a responder can see and where the pages send people (issue 13): no full
integration ids (the credential of an unsigned integration), redirects after errors only
to same-site paths."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from app.extensions import Bridge
from app.services.accounts import Role, create_token, create_user
from tests.support.integrations import MadeIntegration
from tests.support.pages import PASSWORD, csrf_token, log_in
from tests.support.payloads import build

Make = Callable[..., MadeIntegration]


def test_responders_never_see_a_full_integration_id(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()  # unsigned: its id is the credential
    delivery = build("integration_issue_created")
    answer = client.post(integration.url, data=delivery.body, headers=delivery.headers)
    incident_id = answer.get_json()["incident"]["id"]
    with bridge.database.transaction() as session:
        create_user(session, "oncall@example.com", PASSWORD, Role.RESPONDER, datetime.now(UTC))
        token = create_token(session, "oncall@example.com", "cli", datetime.now(UTC)).token
    api = {"Authorization": f"Bearer {token}"}

    detail = client.get(f"/api/incidents/{incident_id}", headers=api)
    listed = client.get("/api/incidents", headers=api)
    log_in(client, "oncall@example.com")
    pages = [client.get(path) for path in ("/incidents", f"/incidents/{incident_id}")]

    assert detail.status_code == 200
    assert detail.get_json()["deliveries"][0]["integration"] == f"{integration.id[:6]}…"
    for response in (detail, listed, *pages):
        assert integration.id not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    "referrer",
    [
        "//evil.example/phish",
        "/\\evil.example/phish",
        "\\\\evil.example/phish",
        "https://evil.example/phish",
        "http://localhost//evil.example/phish",
        "http://localhost/\\evil.example/phish",
        "http://localhost/../..//evil.example",
        "javascript:alert(1)",
    ],
)
def test_a_refused_form_goes_back_only_to_a_same_site_path(
    client: FlaskClient, bridge: Bridge, make_integration: Make, referrer: str
) -> None:
    with bridge.database.transaction() as session:
        create_user(session, "admin@example.com", PASSWORD, Role.ADMIN, datetime.now(UTC))
    log_in(client, "admin@example.com")
    token = csrf_token(client, "/admin/services")

    # An empty service name is refused; the answer sends the admin back where they were.
    response = client.post(
        "/admin/services",
        data={"csrf_token": token, "name": ""},
        headers={"Referer": referrer},
    )

    assert response.status_code in {302, 303}
    location = response.headers["Location"]
    assert location == "/incidents"  # not back to the referrer: it was no same-site path


@pytest.mark.parametrize("target", ["//evil.example/", "/\\evil.example/", "/\\/evil.example"])
def test_login_next_never_leaves_the_site_by_a_backslash(
    client: FlaskClient, bridge: Bridge, target: str
) -> None:
    with bridge.database.transaction() as session:
        create_user(session, "admin@example.com", PASSWORD, Role.ADMIN, datetime.now(UTC))
    token = csrf_token(client, "/login")

    response = client.post(
        "/login",
        data={
            "email": "admin@example.com",
            "password": PASSWORD,
            "next": target,
            "csrf_token": token,
        },
    )

    assert response.headers["Location"] == "/incidents"
