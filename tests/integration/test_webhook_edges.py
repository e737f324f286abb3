"""The webhook URL at its edges: the wrong method, a trailing slash, the size of a too-large
body, a byte-order mark, and what the log says about refusals."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from app.extensions import Bridge
from app.services.refusals import human_size
from app.store.models import Delivery, Incident
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, sign

Make = Callable[..., MadeIntegration]
WEBHOOK = "/api/integrations/sentry"


def deliveries(bridge: Bridge) -> list[Delivery]:
    with bridge.database.transaction() as session:
        return list(session.scalars(select(Delivery).order_by(Delivery.id)))


def incidents(bridge: Bridge) -> list[Incident]:
    with bridge.database.transaction() as session:
        return list(session.scalars(select(Incident).order_by(Incident.id)))


# ---------------------------------------------------------------- methods and slashes


@pytest.mark.parametrize("path", [WEBHOOK, WEBHOOK + "/", WEBHOOK + "?integrationId=abc"])
def test_get_on_the_webhook_url_is_405_saying_sentry_posts_here(
    client: FlaskClient, path: str
) -> None:
    response = client.get(path)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert "WWW-Authenticate" not in response.headers
    error = response.get_json()["error"]
    assert error["code"] == "method_not_allowed"
    assert error["status"] == 405
    assert "Sentry POSTs" in error["message"]
    assert "token" not in error["message"].lower()


def test_head_on_the_webhook_url_is_405_with_allow_post(client: FlaskClient) -> None:
    response = client.head(WEBHOOK)

    assert response.status_code == 405
    assert response.headers["Allow"] == "POST"
    assert response.get_data() == b""


def test_a_trailing_slash_on_the_webhook_url_works(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    d = build("integration_issue_created")

    response = client.post(
        f"{WEBHOOK}/?integrationId={integration.id}", data=d.body, headers=d.headers
    )

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["action"] == "triggered"
    assert len(incidents(bridge)) == 1


def test_reading_integrations_still_needs_a_token(client: FlaskClient) -> None:
    # The GET of the webhook URL must not have swallowed the API's own routes.
    response = client.get("/api/integrations")
    assert response.status_code == 401
    assert client.get("/api/integrations/abc").status_code == 401


# ---------------------------------------------------------------- size


@pytest.mark.parametrize(
    ("size", "said"),
    [
        (0, "0 bytes"),
        (812, "812 bytes"),
        (1024, "1 KB"),
        (64 * 1024, "64 KB"),
        (1024 * 1024, "1 MB"),
        (int(2.3 * 1024 * 1024), "2.3 MB"),
    ],
)
def test_human_size(size: int, said: str) -> None:
    assert human_size(size) == said


def test_a_too_large_body_is_refused_with_its_real_size(
    client: FlaskClient, bridge: Bridge, make_integration: Make, settings: Any
) -> None:
    integration = make_integration()
    body = b'{"event": {"message": "' + b"x" * (2 * settings.max_body_bytes) + b'"}}'

    response = client.post(integration.url, data=body, content_type="application/json")

    assert response.status_code == 413
    message = response.get_json()["error"]["message"]
    assert f"The body is 128 KB ({len(body)} bytes)" in message
    assert f"limit 64 KB ({settings.max_body_bytes} bytes)" in message
    assert deliveries(bridge)[-1].http_status == 413


def test_a_too_large_chunked_body_says_larger_than_the_limit(
    client: FlaskClient, make_integration: Make, settings: Any
) -> None:
    integration = make_integration()
    body = b'{"event": {"message": "' + b"x" * (2 * settings.max_body_bytes) + b'"}}'

    # No Content-Length: what gunicorn passes on for Transfer-Encoding: chunked.
    response = client.post(
        integration.url,
        input_stream=io.BytesIO(body),
        content_type="application/json",
        headers={"Transfer-Encoding": "chunked"},
        environ_overrides={"wsgi.input_terminated": True},
    )

    assert response.status_code == 413
    message = response.get_json()["error"]["message"]
    assert "The body is larger than 64 KB" in message
    assert "size is unknown" in message
    assert str(settings.max_body_bytes + 1) not in message


# ---------------------------------------------------------------- byte-order mark


def test_a_body_with_a_utf8_byte_order_mark_is_accepted(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    d = build("integration_issue_created")

    response = client.post(integration.url, data=b"\xef\xbb\xbf" + d.body, headers=d.headers)

    assert response.status_code == 202, response.get_json()
    assert response.get_json()["action"] == "triggered"


def test_a_signed_body_with_a_bom_is_verified_over_the_bytes_as_sent(
    client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="bom-secret")
    d = build("integration_issue_created")
    sent = b"\xef\xbb\xbf" + d.body
    headers = {k: v for k, v in d.headers.items() if k != "Request-ID"}

    # Signed over the body without the mark: that is not what was sent, so it is refused.
    stripped = client.post(
        integration.url,
        data=sent,
        headers={**headers, "Sentry-Hook-Signature": sign("bom-secret", d.body)},
    )
    as_sent = client.post(
        integration.url,
        data=sent,
        headers={**headers, "Sentry-Hook-Signature": sign("bom-secret", sent)},
    )

    assert stripped.status_code == 401
    assert stripped.get_json()["error"]["code"] == "signature_mismatch"
    assert as_sent.status_code == 202, as_sent.get_json()
    assert deliveries(bridge)[-1].signature_outcome == "valid"


def test_no_python_codec_hint_in_a_refusal(client: FlaskClient, make_integration: Make) -> None:
    integration = make_integration()

    response = client.post(
        integration.url, data=b"\xef\xbb\xbf\xef\xbb\xbf{}", content_type="application/json"
    )

    assert response.status_code == 400
    message = response.get_json()["error"]["message"]
    assert "byte-order mark" in message
    assert "utf-8-sig" not in message and "decode" not in message


# ---------------------------------------------------------------- log lines


def test_refused_delivery_log_lines_carry_the_refusal_code(
    client: FlaskClient, make_integration: Make, caplog: pytest.LogCaptureFixture
) -> None:
    integration = make_integration(secret="right")
    d = build("integration_issue_created", secret="wrong")

    with caplog.at_level(logging.INFO, logger="app.web.webhooks"):
        client.post(integration.url, data=d.body, headers=d.headers)
        client.post(f"{WEBHOOK}?integrationId=nobody", data=d.body, headers=d.headers)
        client.post(WEBHOOK, data=d.body, headers=d.headers)

    lines = [r.getMessage() for r in caplog.records if r.name == "app.web.webhooks"]
    assert any("action=refused" in line and "code=signature_mismatch" in line for line in lines)
    assert any("code=integration_not_found" in line for line in lines)
    assert any("code=integration_id_missing" in line for line in lines)
    assert not any(integration.id in line for line in lines)


def test_accepted_delivery_log_line_has_no_refusal_code(
    client: FlaskClient, make_integration: Make, caplog: pytest.LogCaptureFixture
) -> None:
    integration = make_integration()
    d = build("integration_issue_created")

    with caplog.at_level(logging.INFO, logger="app.web.webhooks"):
        client.post(integration.url, data=d.body, headers=d.headers)

    [line] = [r.getMessage() for r in caplog.records if r.name == "app.web.webhooks"]
    assert "action=triggered" in line and "code=-" in line
