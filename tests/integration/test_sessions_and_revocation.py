"""Ending access (issue 13): tokens revoked, users deactivated and passwords changed, by
CLI and API; logout, a password change and deactivation end existing browser sessions
server side, so a cookie saved before is refused after."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from app import cli
from app.extensions import Bridge
from app.services.accounts import Role, create_token, create_user
from config.settings import Settings
from tests.support.pages import PASSWORD, csrf_token, log_in

NEW_PASSWORD = "a different long passphrase"


@pytest.fixture
def people(bridge: Bridge) -> dict[str, str]:
    """An admin and a responder; their API tokens."""
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, "admin@example.com", PASSWORD, Role.ADMIN, now)
        create_user(session, "oncall@example.com", PASSWORD, Role.RESPONDER, now)
        return {
            "admin": create_token(session, "admin@example.com", "ops", now).token,
            "oncall": create_token(session, "oncall@example.com", "laptop", now).token,
        }


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def saved_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie("session")
    assert cookie is not None
    return cookie.value


def is_logged_in_with(client: FlaskClient, cookie: str) -> bool:
    client.set_cookie("session", cookie)
    return client.get("/incidents").status_code == 200


def user_id(client: FlaskClient, admin_token: str, email: str) -> int:
    users = client.get("/api/users", headers=bearer(admin_token)).get_json()
    return next(user["id"] for user in users if user["email"] == email)


def test_a_cookie_saved_before_logout_is_refused_after_it(
    client: FlaskClient, people: dict[str, str]
) -> None:
    log_in(client, "oncall@example.com")
    cookie = saved_cookie(client)
    assert is_logged_in_with(client, cookie)

    client.post("/logout", data={"csrf_token": csrf_token(client, "/incidents")})

    assert not is_logged_in_with(client, cookie)
    assert log_in(client, "oncall@example.com") in {302, 303}  # logging in again works


def test_a_password_change_by_api_ends_sessions_and_the_old_password(
    app_client_pair: tuple[FlaskClient, FlaskClient], people: dict[str, str]
) -> None:
    browser, api = app_client_pair
    log_in(browser, "oncall@example.com")
    cookie = saved_cookie(browser)
    target = user_id(api, people["admin"], "oncall@example.com")

    changed = api.post(
        f"/api/users/{target}/password",
        json={"password": NEW_PASSWORD},
        headers=bearer(people["admin"]),
    )

    assert changed.status_code == 200
    assert NEW_PASSWORD not in changed.get_data(as_text=True)
    assert not is_logged_in_with(browser, cookie)
    assert log_in(browser, "oncall@example.com", PASSWORD) == 401
    assert log_in(browser, "oncall@example.com", NEW_PASSWORD) in {302, 303}


def test_deactivation_by_api_ends_sessions_and_refuses_tokens(
    app_client_pair: tuple[FlaskClient, FlaskClient], people: dict[str, str]
) -> None:
    browser, api = app_client_pair
    log_in(browser, "oncall@example.com")
    cookie = saved_cookie(browser)
    target = user_id(api, people["admin"], "oncall@example.com")

    answer = api.patch(
        f"/api/users/{target}", json={"active": False}, headers=bearer(people["admin"])
    )

    assert answer.get_json()["active"] is False
    assert not is_logged_in_with(browser, cookie)
    assert api.get("/api/incidents", headers=bearer(people["oncall"])).status_code == 401
    assert log_in(browser, "oncall@example.com") == 401


def test_a_revoked_token_is_refused_from_the_next_request(
    client: FlaskClient, people: dict[str, str]
) -> None:
    assert client.get("/api/incidents", headers=bearer(people["oncall"])).status_code == 200
    tokens = client.get("/api/tokens", headers=bearer(people["admin"])).get_json()
    laptop = next(token for token in tokens if token["name"] == "laptop")
    assert people["oncall"] not in json.dumps(tokens)

    revoked = client.delete(f"/api/tokens/{laptop['id']}", headers=bearer(people["admin"]))

    assert revoked.status_code == 200 and revoked.get_json()["revoked_at"]
    assert client.get("/api/incidents", headers=bearer(people["oncall"])).status_code == 401
    assert client.delete("/api/tokens/999999", headers=bearer(people["admin"])).status_code == 404


def test_responders_cannot_manage_accounts(client: FlaskClient, people: dict[str, str]) -> None:
    oncall = bearer(people["oncall"])

    assert client.get("/api/users", headers=oncall).status_code == 403
    assert client.patch("/api/users/1", json={"active": False}, headers=oncall).status_code == 403
    assert client.delete("/api/tokens/1", headers=oncall).status_code == 403


def test_the_cli_revokes_tokens_deactivates_users_and_changes_passwords(
    client: FlaskClient,
    bridge: Bridge,
    settings: Settings,
    people: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(cli, "_bridge", lambda: Bridge(settings))
    runner = CliRunner()
    log_in(client, "oncall@example.com")
    cookie = saved_cookie(client)

    listed = runner.invoke(cli.main, ["token", "list", "oncall@example.com", "--json"])
    [laptop] = json.loads(listed.output)
    revoked = runner.invoke(cli.main, ["token", "revoke", str(laptop["id"])])
    changed = runner.invoke(
        cli.main, ["user", "set-password", "oncall@example.com", "--password-stdin"],
        input=NEW_PASSWORD + "\n",
    )  # fmt: skip

    assert (listed.exit_code, revoked.exit_code, changed.exit_code) == (0, 0, 0)
    assert people["oncall"] not in listed.output and NEW_PASSWORD not in changed.output
    assert client.get("/api/incidents", headers=bearer(people["oncall"])).status_code == 401
    assert not is_logged_in_with(client, cookie)
    assert log_in(client, "oncall@example.com", NEW_PASSWORD) in {302, 303}
    cookie = saved_cookie(client)

    deactivated = runner.invoke(cli.main, ["user", "deactivate", "oncall@example.com"])

    assert deactivated.exit_code == 0 and json.loads(deactivated.output)["active"] is False
    assert not is_logged_in_with(client, cookie)
    assert runner.invoke(cli.main, ["user", "activate", "oncall@example.com"]).exit_code == 0
    assert log_in(client, "oncall@example.com", NEW_PASSWORD) in {302, 303}
    missing = runner.invoke(cli.main, ["token", "revoke", "424242"])
    assert missing.exit_code == 1 and "No API token" in missing.output


@pytest.fixture
def app_client_pair(app: object, bridge: Bridge) -> tuple[FlaskClient, FlaskClient]:
    """A browser and a separate API caller (cookies of one never reach the other)."""
    from flask import Flask

    assert isinstance(app, Flask)
    return app.test_client(), app.test_client()
