"""Sessions cost nothing on requests without a cookie (app/web/sessions.CookieSessions),
and are Flask's signed cookies unchanged for everyone who logs in."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.extensions import Bridge
from app.services.accounts import Role, create_user
from app.web.sessions import CookieSessions
from tests.support.pages import PASSWORD, log_in


def test_a_request_without_a_cookie_never_builds_the_signing_serializer(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert isinstance(app.session_interface, CookieSessions)
    built: list[str] = []
    real = CookieSessions.get_signing_serializer

    def counting(self: CookieSessions, flask_app: Flask) -> object:
        built.append("serializer")
        return real(self, flask_app)

    monkeypatch.setattr(CookieSessions, "get_signing_serializer", counting)

    answer = client.get("/healthz")

    assert answer.status_code == 200
    assert built == []
    assert "Set-Cookie" not in answer.headers


def test_logging_in_still_sets_a_signed_session_that_later_requests_read(
    client: FlaskClient, bridge: Bridge
) -> None:
    with bridge.database.transaction() as session:
        create_user(session, "oncall@example.com", PASSWORD, Role.RESPONDER, datetime.now(UTC))

    assert log_in(client, "oncall@example.com") == 302
    cookie = client.get_cookie("session")
    assert cookie is not None and "." in cookie.value  # signed, as Flask signs it

    answer = client.get("/incidents")
    assert answer.status_code == 200  # the cookie was read: no redirect to the login page
    client.delete_cookie("session")
    assert client.get("/incidents").status_code == 302
