"""The on-call API on SQLite and PostgreSQL: every route for 2xx, 401, 403, 404 and 422."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.extensions import Bridge
from app.services.accounts import Role
from tests.support.oncall import ApiCaller, api_token, make_people

NOW = datetime(2025, 3, 17, tzinfo=UTC)

# (method, path, body) of every on-call route, with ids that exist after `seeded`.
ROUTES: list[tuple[str, str, Any]] = [
    ("GET", "/api/schedules", None),
    ("POST", "/api/schedules", {"name": "s2", "timezone": "UTC", "members": ["a@x.example"]}),
    ("GET", "/api/schedules/{schedule}", None),
    ("POST", "/api/schedules/{schedule}/layers", {"members": ["b@x.example"]}),
    (
        "POST",
        "/api/schedules/{schedule}/overrides",
        {"user": "b@x.example", "from": "2025-03-18T10:00", "until": "2025-03-18T12:00"},
    ),
    ("GET", "/api/schedules/{schedule}/on-call", None),
    ("GET", "/api/policies", None),
    ("POST", "/api/policies", {"name": "p2", "steps": ["0:user:a@x.example"]}),
    ("GET", "/api/policies/{policy}", None),
    ("PATCH", "/api/services/{service}/paging", {"page_min_severity": "warning"}),
    ("GET", "/api/contact-methods?user=a@x.example", None),
    ("POST", "/api/contact-methods", {"user": "a@x.example", "apprise": "ntfy://t/x"}),
    ("POST", "/api/contact-methods/{method}/verify", None),
]


@pytest.fixture
def callers(client: FlaskClient, bridge: Bridge) -> dict[str, ApiCaller]:
    with bridge.database.transaction() as session:
        admin_token = api_token(session, "admin@x.example", Role.ADMIN, NOW)
        responder_token = api_token(session, "r@x.example", Role.RESPONDER, NOW)
        make_people(session, NOW, "a@x.example", "b@x.example")
    return {
        "admin": ApiCaller(client, admin_token),
        "responder": ApiCaller(client, responder_token),
        "anonymous": ApiCaller(client, None),
    }


@pytest.fixture
def seeded(callers: dict[str, ApiCaller]) -> dict[str, int]:
    admin = callers["admin"]
    schedule = admin.call(
        "POST",
        "/api/schedules",
        {
            "name": "primary",
            "timezone": "Europe/Berlin",
            "rotation": "weekly",
            "handoff": "mon 09:00",
            "members": ["a@x.example", "b@x.example"],
            "start": "2025-03-17T00:00:00",
        },
    )
    assert schedule.status_code == 201, schedule.get_json()
    policy = admin.call("POST", "/api/policies", {"name": "p", "steps": ["0:schedule:primary"]})
    service = admin.call("POST", "/api/services", {"name": "Payments"})
    methods = admin.call("GET", "/api/contact-methods?user=a@x.example")
    return {
        "schedule": schedule.get_json()["id"],
        "policy": policy.get_json()["id"],
        "service": service.get_json()["id"],
        "method": methods.get_json()[0]["id"],
    }


def _path(path: str, ids: dict[str, int]) -> str:
    return path.format(**ids)


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_answers_admins(
    callers: dict[str, ApiCaller], seeded: dict[str, int], method: str, path: str, body: Any
) -> None:
    response = callers["admin"].call(method, _path(path, seeded), body)

    assert response.status_code in (200, 201), response.get_json()


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_is_401_without_a_token_and_403_for_responders(
    callers: dict[str, ApiCaller], seeded: dict[str, int], method: str, path: str, body: Any
) -> None:
    anonymous = callers["anonymous"].call(method, _path(path, seeded), body)
    responder = callers["responder"].call(method, _path(path, seeded), body)

    assert anonymous.status_code == 401
    assert responder.status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/schedules/999999", None),
        ("POST", "/api/schedules/999999/layers", {"members": ["a@x.example"]}),
        (
            "POST",
            "/api/schedules/999999/overrides",
            {"user": "a@x.example", "from": "2025-03-18T10:00", "until": "2025-03-18T12:00"},
        ),
        ("GET", "/api/schedules/999999/on-call", None),
        ("GET", "/api/policies/999999", None),
        ("PATCH", "/api/services/999999/paging", {"page_min_severity": "info"}),
        ("GET", "/api/contact-methods?user=nobody@x.example", None),
        ("POST", "/api/contact-methods", {"user": "nobody@x.example", "apprise": "ntfy://t/x"}),
        ("POST", "/api/contact-methods/999999/verify", None),
        ("POST", "/api/schedules", {"name": "x", "timezone": "UTC", "members": ["no@x.example"]}),
        ("POST", "/api/policies", {"name": "x", "steps": ["0:schedule:missing"]}),
    ],
)
def test_unknown_things_are_404(
    callers: dict[str, ApiCaller], seeded: dict[str, int], method: str, path: str, body: Any
) -> None:
    assert callers["admin"].call(method, path, body).status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        (
            "POST",
            "/api/schedules",
            {"name": "x", "timezone": "Mars/Base", "members": ["a@x.example"]},
            "timezone",
        ),
        ("POST", "/api/schedules", {"name": "x", "timezone": "UTC"}, "members"),
        (
            "POST",
            "/api/schedules",
            {"name": "x", "timezone": "UTC", "members": ["a@x.example"], "handoff": "25:00"},
            "handoff",
        ),
        (
            "POST",
            "/api/schedules/{schedule}/layers",
            {"members": ["a@x.example"], "rotation": "monthly"},
            "rotation",
        ),
        (
            "POST",
            "/api/schedules/{schedule}/overrides",
            {"user": "a@x.example", "from": "2025-03-18T12:00", "until": "2025-03-18T10:00"},
            "until",
        ),
        ("GET", "/api/schedules/{schedule}/on-call?at=yesterday", None, "at"),
        ("POST", "/api/policies", {"name": "x", "steps": ["soon:user:a@x.example"]}, "steps"),
        (
            "POST",
            "/api/policies",
            {"name": "x", "steps": ["0:user:a@x.example"], "repeat": 2},
            "steps",
        ),
        (
            "PATCH",
            "/api/services/{service}/paging",
            {"page_min_severity": "loud"},
            "page_min_severity",
        ),
        (
            "PATCH",
            "/api/services/{service}/paging",
            {"ack_timeout_minutes": 0},
            "ack_timeout_minutes",
        ),
        ("GET", "/api/contact-methods", None, "user"),
        (
            "PATCH",
            "/api/services/{service}/paging",
            {"escalation_policy_id": 2**63},
            "escalation_policy_id",
        ),
        (
            "POST",
            "/api/policies",
            {"name": "x", "steps": ["99999999999:user:a@x.example"]},
            "steps",
        ),
        (
            "POST",
            "/api/contact-methods",
            {"user": "a@x.example", "apprise": "not a url"},
            "apprise",
        ),
    ],
)
def test_invalid_input_is_422_naming_the_field(
    callers: dict[str, ApiCaller],
    seeded: dict[str, int],
    method: str,
    path: str,
    body: Any,
    field: str,
) -> None:
    response = callers["admin"].call(method, _path(path, seeded), body)

    assert response.status_code == 422, response.get_json()
    assert field in response.get_json()["error"]["fields"]


def test_schedule_who_and_feed_url(callers: dict[str, ApiCaller], seeded: dict[str, int]) -> None:
    admin = callers["admin"]
    path = f"/api/schedules/{seeded['schedule']}"

    shown = admin.call("GET", path).get_json()
    who = admin.call("GET", f"{path}/on-call?at=2025-03-19T12:00:00%2B00:00").get_json()
    gap = admin.call("GET", f"{path}/on-call?at=2025-03-17T07:00:00").get_json()

    assert shown["feed_url"].startswith("http://localhost/calendars/schedules/")
    assert who == {
        "user": "a@x.example",
        "from": "2025-03-17T08:00:00+00:00",
        "until": "2025-03-24T08:00:00+00:00",
        "source": "layer",
    }
    assert gap["user"] is None


def test_service_paging_attaches_and_detaches_a_policy(
    callers: dict[str, ApiCaller], seeded: dict[str, int]
) -> None:
    admin = callers["admin"]
    path = f"/api/services/{seeded['service']}/paging"

    attached = admin.call(
        "PATCH", path, {"escalation_policy_id": seeded["policy"], "ack_timeout_minutes": 30}
    ).get_json()
    detached = admin.call("PATCH", path, {"escalation_policy_id": None}).get_json()

    assert attached["escalation_policy_id"] == seeded["policy"]
    assert attached["ack_timeout_minutes"] == 30 and attached["page_min_severity"] == "error"
    assert detached["escalation_policy_id"] is None and detached["ack_timeout_minutes"] == 30


def test_contact_method_responses_never_carry_the_apprise_url(
    callers: dict[str, ApiCaller], seeded: dict[str, int]
) -> None:
    admin = callers["admin"]
    url = "tgram://123456:s3cretbottoken/987"

    added = admin.call("POST", "/api/contact-methods", {"user": "a@x.example", "apprise": url})
    listed = admin.call("GET", "/api/contact-methods?user=a@x.example")
    verified = admin.call("POST", f"/api/contact-methods/{added.get_json()['id']}/verify")

    for response in (added, listed, verified):
        assert "s3cret" not in response.get_data(as_text=True)
    assert verified.get_json()["verified_by"] == "admin@x.example"
    assert verified.get_json()["pageable"] is True
