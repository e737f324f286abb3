"""/api/openapi.json matches the routes, and real responses validate against it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Request

from app.extensions import Bridge
from app.services.accounts import Role, create_token, create_user
from app.web.api.openapi import _openapi_path
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build

UNDOCUMENTED = {"/api/openapi.json"}  # the document does not describe itself


@pytest.fixture
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.get_json()
    return body


def api_rules(app: Flask) -> Iterator[tuple[str, str]]:
    for rule in app.url_map.iter_rules():
        if rule.rule.startswith("/api/") and rule.rule not in UNDOCUMENTED:
            for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
                yield _openapi_path(rule.rule)[0], method.lower()


def test_document_is_valid_openapi_3(document: dict[str, Any]) -> None:
    OpenAPI.from_dict(document)  # validates the document itself and raises if it is not

    assert document["openapi"].startswith("3.")
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_document_lists_exactly_the_api_routes(app: Flask, document: dict[str, Any]) -> None:
    in_document = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }

    assert in_document == set(api_rules(app))


def test_protected_routes_declare_bearer_security_and_the_webhook_does_not(
    document: dict[str, Any],
) -> None:
    assert "security" not in document["paths"]["/api/integrations/sentry"]["post"]
    assert document["paths"]["/api/incidents"]["get"]["security"] == [{"bearerAuth": []}]
    assert "403" in document["paths"]["/api/services"]["post"]["responses"]
    assert "422" in document["paths"]["/api/incidents"]["get"]["responses"]


def test_real_responses_validate_against_the_document(
    client: FlaskClient,
    bridge: Bridge,
    document: dict[str, Any],
    make_integration: Callable[..., MadeIntegration],
) -> None:
    spec = OpenAPI.from_dict(document)
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, "admin@example.com", "correct horse battery staple", Role.ADMIN, now)
        create_user(session, "r@example.com", "correct horse battery staple", Role.RESPONDER, now)
        admin_token = create_token(session, "admin@example.com", "t", now).token
        responder_token = create_token(session, "r@example.com", "t", now).token
    integration = make_integration(secret="s3cr3t")
    checked: list[str] = []

    def send(method: str, path: str, headers: dict[str, str], **kw: Any) -> TestResponse:
        """Send a request and validate its response; the request is rebuilt for the
        validator because the app has already consumed the one it was sent as."""
        response = client.open(path, method=method, headers=headers, **kw)
        replica = Request(
            EnvironBuilder(path=path, method=method, headers=headers, **kw).get_environ()
        )
        spec.validate_response(WerkzeugOpenAPIRequest(replica), WerkzeugOpenAPIResponse(response))
        checked.append(f"{method} {path} {response.status_code}")
        return response

    def call(method: str, path: str, token: str | None = admin_token, **kw: Any) -> TestResponse:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return send(method, path, headers, **kw)

    delivery = build("integration_issue_created", secret="s3cr3t")
    webhook = send("POST", integration.url, delivery.headers, data=delivery.body)
    send("POST", integration.url, {"Content-Type": "text/plain"}, data=delivery.body)
    send("POST", integration.url, {}, json={"nope": 1})
    incident_id = webhook.get_json()["incident"]["id"]
    delivery_id = webhook.get_json()["delivery_id"]

    call("GET", "/api/incidents")
    call("GET", "/api/incidents?status=bogus")
    call("GET", "/api/incidents", token=None)
    call("GET", f"/api/incidents/{incident_id}")
    call("GET", "/api/incidents/999999")
    call("POST", f"/api/incidents/{incident_id}/acknowledge", token=responder_token)
    call("POST", f"/api/incidents/{incident_id}/acknowledge", token=responder_token)
    call("POST", f"/api/incidents/{incident_id}/notes", json={"text": "looking"})
    call("POST", f"/api/incidents/{incident_id}/notes", json={})
    call("POST", f"/api/incidents/{incident_id}/resolve")
    call("POST", f"/api/incidents/{incident_id}/reopen")
    services = call("GET", "/api/services").get_json()
    call("GET", "/api/services", token=responder_token)
    created = call("POST", "/api/services", json={"name": "Search"}).get_json()
    call("GET", f"/api/services/{created['id']}")
    call("PATCH", f"/api/services/{created['id']}", json={"reopen_window_minutes": 10})
    call(
        "POST", "/api/integrations", json={"service_id": services[0]["id"], "generate_secret": True}
    )
    call("GET", "/api/integrations")
    call("GET", f"/api/integrations/{integration.id}")
    call("PATCH", f"/api/integrations/{integration.id}", json={"name": "Renamed"})
    call("POST", f"/api/integrations/{integration.id}/secret", json={"generate": True})
    call("DELETE", f"/api/integrations/{integration.id}/secret")
    call("GET", "/api/deliveries")
    call("GET", f"/api/deliveries/{delivery_id}")
    call("POST", f"/api/deliveries/{delivery_id}/replay")
    call("GET", "/api/deliveries/999999")

    assert len(checked) == 29
