"""No secret, signature, token or password in the logs, the answers or the delivery inspector.

Deliveries signed with a secret (and with a rotated-out one), wrong signatures, a bearer
token and a password go through the app with logging at DEBUG; then every captured log
record, every response (bar the one that shows a new secret once) and the inspector's
API and page are searched for each value.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.extensions import Bridge
from app.services.accounts import Role, create_token, create_user
from tests.support.integrations import MadeIntegration
from tests.support.pages import csrf_token
from tests.support.payloads import build, sign

SECRET = "first-client-secret-0123456789abcdef"
ROTATED = "second-client-secret-fedcba9876543210"
PASSWORD = "a password nobody should ever see"


def test_secrets_never_reach_logs_answers_or_the_inspector(
    client: FlaskClient,
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
    caplog: pytest.LogCaptureFixture,
) -> None:
    from datetime import UTC, datetime

    caplog.set_level(logging.DEBUG)
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, "keeper@example.com", PASSWORD, Role.ADMIN, now)
        token = create_token(session, "keeper@example.com", "scan", now).token
    bearer = {"Authorization": f"Bearer {token}"}
    integration = make_integration(secret=SECRET)
    answers: list[TestResponse] = []
    signatures: list[str] = []

    def deliver(secret: str | None, signature: str | None = None) -> None:
        delivery = build("integration_issue_created", secret=secret)
        if signature is not None:
            delivery.headers["Sentry-Hook-Signature"] = signature
        signatures.append(delivery.headers.get("Sentry-Hook-Signature", ""))
        answers.append(client.post(integration.url, data=delivery.body, headers=delivery.headers))

    deliver(SECRET)
    deliver(None, signature=sign("not-the-secret", b"{}"))  # a wrong one: 401
    deliver(None)  # none at all: 401
    # Rotation: the answer that sets the new secret is the one place it may appear.
    rotated = client.post(
        f"/api/integrations/{integration.id}/secret", json={"secret": ROTATED}, headers=bearer
    )
    assert rotated.status_code == 200, rotated.get_json()
    deliver(SECRET)  # the previous secret, within its grace period
    deliver(ROTATED)
    assert [a.status_code for a in answers] == [202, 401, 401, 202, 202]

    answers.append(client.get("/api/deliveries", headers=bearer))
    ids = [item["id"] for item in answers[-1].get_json()["items"]]
    assert len(ids) == 5
    for delivery_id in ids:
        answers.append(client.get(f"/api/deliveries/{delivery_id}", headers=bearer))
    answers.append(client.get(f"/api/integrations/{integration.id}", headers=bearer))
    answers.append(client.get("/api/integrations", headers=bearer))
    answers.append(client.get("/api/incidents", headers=bearer))
    answers.append(client.get("/api/incidents", headers={"Authorization": "Bearer sib_wrong"}))
    login = client.post(
        "/login",
        data={
            "email": "keeper@example.com",
            "password": PASSWORD,
            "csrf_token": csrf_token(client, "/login"),
        },
    )
    assert login.status_code == 302
    for delivery_id in ids:
        answers.append(client.get(f"/admin/deliveries/{delivery_id}"))
    answers.append(client.get("/admin/deliveries"))
    answers.append(client.get("/admin/integrations"))
    assert all(a.status_code in {200, 401} for a in answers[5:]), [a.status_code for a in answers]

    secrets = {
        "secret": SECRET,
        "rotated secret": ROTATED,
        "token": token,
        "password": PASSWORD,
        **{f"signature {i}": s for i, s in enumerate(signatures) if s},
    }
    assert len(secrets) == 8
    logged = caplog.text + "".join(
        str(record.args) + str(record.__dict__) for record in caplog.records
    )
    assert "delivery" in logged  # the log did capture the deliveries
    integration_prefix = integration.id[:6]
    assert integration_prefix in logged
    assert integration.id not in logged, "the integration id is a credential: prefix only"
    for where, text in [("logs", logged)] + [
        (f"answer {i} ({a.request.path})", a.get_data(as_text=True) + str(a.headers))
        for i, a in enumerate(answers)
    ]:
        for name, value in secrets.items():
            assert value not in text, f"the {name} appears in {where}"


def test_a_database_error_logs_the_statement_without_its_values(
    client: FlaskClient,
    bridge: Bridge,
    make_integration: Callable[..., MadeIntegration],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # An unsigned integration's id is its credential, and bodies are Sentry's data: the
    # logged error names the statement, never the values bound to it.
    from sqlalchemy import text

    from app.store import receiver_rows

    def failing_statement(connection: Any, *_args: object, **_kwargs: object) -> None:
        connection.execute(
            # A claim for a delivery that does not exist: a foreign-key error on both databases.
            text(
                "INSERT INTO delivery_claims (integration_id, request_id, delivery_id, claimed_at) "
                "VALUES (:id, :body, -1, CURRENT_TIMESTAMP)"
            ),
            {"id": integration.id, "body": "body-marker-7f3a"},
        )

    monkeypatch.setattr(receiver_rows, "finish_delivery", failing_statement)
    caplog.set_level(logging.DEBUG)
    integration = make_integration()
    delivery = build("integration_issue_created")

    response = client.post(integration.url, data=delivery.body, headers=delivery.headers)

    assert response.status_code == 500
    logged = "\n".join(
        record.getMessage()
        + (logging.Formatter().formatException(record.exc_info) if record.exc_info else "")
        for record in caplog.records
    )
    assert "INSERT INTO delivery_claims" in logged  # the error itself is logged...
    assert integration.id not in logged  # ...but not what was bound to it
    assert "body-marker-7f3a" not in logged
