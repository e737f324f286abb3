"""Helpers of the JSON API tests: a caller with a token, a trigger over HTTP, the error shape."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.extensions import Bridge
from app.services.accounts import Role, create_token, create_user
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load, seen_at

Make = Callable[..., MadeIntegration]


@dataclass(frozen=True)
class Caller:
    client: FlaskClient
    token: str | None

    def call(self, method: str, path: str, json: Any = None, **kwargs: Any) -> TestResponse:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        return self.client.open(path, method=method, json=json, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> TestResponse:
        return self.call("GET", path, **kwargs)

    def post(self, path: str, json: Any = None) -> TestResponse:
        return self.call("POST", path, json=json)


def _token(bridge: Bridge, email: str, role: Role) -> str:
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, email, "correct horse battery staple", role, now)
        return create_token(session, email, "tests", now).token


def trigger(
    client: FlaskClient,
    integration: MadeIntegration,
    issue_id: str,
    title: str = "Boom",
    level: str = "error",
    at: int | None = None,
    project: str = "Payments API",
    action: str = "created",
) -> dict[str, Any]:
    _resource, payload = load("integration_issue_created")
    payload["action"] = action
    payload["data"]["issue"].update({"id": issue_id, "title": title, "level": level})
    payload["data"]["issue"]["project"]["name"] = project
    seen_at(payload, at if at is not None else datetime.now(UTC).timestamp())
    delivery = build(payload, resource="issue", secret=integration.secret, timestamp=at)
    response = client.post(integration.url, data=delivery.body, headers=delivery.headers)
    assert response.status_code == 202, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


def assert_error(response: TestResponse, status: int, code: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.get_json()
    error: dict[str, Any] = response.get_json()["error"]
    assert error["status"] == status
    assert error["message"]
    if code is not None:
        assert error["code"] == code
    return error
