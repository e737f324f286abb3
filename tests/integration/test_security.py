"""Security headers on pages and API answers, and the login rate limit."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import Bridge
from app.services.accounts import Role, create_user
from app.web.security import NOTHING_POLICY, PAGE_POLICY
from config.settings import Settings
from tests.support.integrations import MadeIntegration
from tests.support.pages import PASSWORD, csrf_token, log_in
from tests.support.payloads import build

COMMON = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",
}


def assert_hardened(response: object, policy: str) -> None:
    headers = response.headers  # type: ignore[attr-defined]
    for name, value in COMMON.items():
        assert headers[name] == value, name
    assert headers["Content-Security-Policy"] == policy
    assert "frame-ancestors 'none'" in policy
    assert "Strict-Transport-Security" not in headers  # only with Secure cookies


@pytest.fixture
def admin(bridge: Bridge) -> str:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    with bridge.database.transaction() as session:
        create_user(session, email, PASSWORD, Role.ADMIN, datetime.now(UTC))
    return email


def test_pages_carry_the_page_policy_and_load_only_what_it_allows(
    client: FlaskClient, admin: str, make_integration: object
) -> None:
    assert log_in(client, admin) == 302
    for path in ("/login", "/incidents", "/admin/integrations", "/admin/deliveries"):
        response = client.get(path, follow_redirects=True)
        assert response.status_code == 200, path
        assert_hardened(response, PAGE_POLICY)
        html = response.get_data(as_text=True)
        # 'self' only: no inline script or style, no other origin.
        assert re.findall(r"<script\b([^>]*)>", html) == [' src="/static/bridge.js" defer'], path
        assert " style=" not in html and "<style" not in html, path
        assert not re.search(r"<[^>]+\son[a-z]+=", html), f"inline handler on {path}"
        for url in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert not url.startswith(("http:", "https:", "//")), (path, url)


def test_api_webhook_errors_and_static_files_carry_the_deny_everything_policy(
    client: FlaskClient, make_integration: object
) -> None:
    integration: MadeIntegration = make_integration()  # type: ignore[operator]
    delivery = build("integration_issue_created")
    answers = [
        client.post(integration.url, data=delivery.body, headers=delivery.headers),
        client.get("/api/incidents"),
        client.get("/api/openapi.json"),
        client.get("/api/no-such-route"),
        client.get("/static/bridge.js"),
        client.get("/healthz"),
    ]

    assert [a.status_code for a in answers] == [202, 401, 200, 404, 200, 200]
    for answer in answers:
        assert_hardened(answer, NOTHING_POLICY)
        answer.close()


@pytest.fixture
def https_app(settings: Settings, tmp_path: Path) -> Iterator[Flask]:
    application = create_app(replace(settings, instance_path=tmp_path, secure_cookies=True))
    yield application
    application.extensions["bridge"].database.dispose()


def test_hsts_is_sent_only_when_cookies_are_secure(https_app: Flask, bridge: Bridge) -> None:
    response = https_app.test_client().get("/login")

    assert response.headers["Strict-Transport-Security"] == "max-age=31536000"


def test_five_failed_logins_then_429_with_retry_after_even_for_the_right_password(
    client: FlaskClient, admin: str
) -> None:
    for _ in range(5):
        assert log_in(client, admin, "wrong password!") == 401

    token = csrf_token(client, "/login")
    refused = client.post(
        "/login", data={"email": admin, "password": PASSWORD, "csrf_token": token}
    )

    assert refused.status_code == 429
    assert 60 <= int(refused.headers["Retry-After"]) <= 180
    assert "Too many failed logins" in refused.get_data(as_text=True)
    assert client.get("/incidents").status_code == 302  # not logged in
    assert_hardened(refused, PAGE_POLICY)


def test_the_login_limit_is_per_account_and_a_success_clears_it(
    client: FlaskClient, admin: str, bridge: Bridge
) -> None:
    other = f"other-{uuid.uuid4().hex[:8]}@example.com"
    with bridge.database.transaction() as session:
        create_user(session, other, PASSWORD, Role.RESPONDER, datetime.now(UTC))
    for _ in range(4):
        assert log_in(client, admin, "wrong password!") == 401
    assert log_in(client, other) == 302  # another account is not affected
    client.post("/logout", data={"csrf_token": csrf_token(client, "/incidents")})

    assert log_in(client, admin) == 302  # the fifth attempt, right: clears the count
    client.post("/logout", data={"csrf_token": csrf_token(client, "/incidents")})
    for _ in range(4):
        assert log_in(client, admin, "wrong password!") == 401
    assert log_in(client, admin) == 302
