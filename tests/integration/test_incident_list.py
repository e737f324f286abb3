"""The on-call incident list through the API: the Open view, the on-fire order and the
severity sorts (keyset pages), search, and bulk acknowledge/resolve (SQLite, PostgreSQL)."""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from sqlalchemy import select
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from app.extensions import Bridge
from app.services.accounts import Role
from app.store.models import TimelineEntry
from tests.support.api import Caller, Make, _token, assert_error, trigger

# (issue id, level) in arrival order; ids 1.. follow it.
ARRIVALS = [
    ("a", "warning"),
    ("b", "fatal"),
    ("c", "info"),
    ("d", "error"),
    ("e", "fatal"),
    ("f", "warning"),
    ("g", "error"),
]


@pytest.fixture
def responder(client: FlaskClient, bridge: Bridge) -> Caller:
    return Caller(client, _token(bridge, "oncall@example.com", Role.RESPONDER))


@pytest.fixture
def mixed(responder: Caller, client: FlaskClient, make_integration: Make) -> dict[str, int]:
    """Seven incidents: b and f acknowledged, c and g resolved, the rest triggered."""
    integration = make_integration()
    ids = {
        issue: trigger(client, integration, issue, f"Problem {issue}", level)["incident"]["id"]
        for issue, level in ARRIVALS
    }
    for issue in ("b", "f"):
        assert responder.post(f"/api/incidents/{ids[issue]}/acknowledge").status_code == 200
    for issue in ("c", "g"):
        assert responder.post(f"/api/incidents/{ids[issue]}/resolve").status_code == 200
    return ids


def _keys(responder: Caller, query: dict[str, Any]) -> list[str]:
    """Every dedup key of the list, read page by page through next_cursor."""
    seen: list[str] = []
    cursor = None
    for _page in range(20):
        body = responder.get(
            "/api/incidents", query_string={**query, **({"cursor": cursor} if cursor else {})}
        ).get_json()
        seen.extend(item["dedup_key"].removeprefix("sentry-") for item in body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the pages never ended")


def test_status_open_is_triggered_and_acknowledged(
    responder: Caller, mixed: dict[str, int]
) -> None:
    assert _keys(responder, {"status": "open"}) == ["f", "e", "d", "b", "a"]
    assert _keys(responder, {"status": "triggered"}) == ["e", "d", "a"]


@pytest.mark.parametrize("limit", [1, 2, 3, 50])
def test_urgency_puts_triggered_then_acknowledged_then_resolved_critical_first(
    responder: Caller, mixed: dict[str, int], limit: int
) -> None:
    # triggered: e (critical), d (error), a (warning); acknowledged: b (critical),
    # f (warning); resolved: g (error), c (info). Newest first within a severity.
    everything = _keys(responder, {"sort": "urgency", "limit": limit})
    open_only = _keys(responder, {"sort": "urgency", "status": "open", "limit": limit})

    assert everything == ["e", "d", "a", "b", "f", "g", "c"]
    assert open_only == ["e", "d", "a", "b", "f"]


def test_urgency_keeps_newest_first_within_one_status_and_severity(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    for issue in ("x1", "x2", "x3"):
        trigger(client, integration, issue, level="fatal")
    trigger(client, integration, "y", level="info")

    assert _keys(responder, {"sort": "urgency", "limit": 2}) == ["x3", "x2", "x1", "y"]


@pytest.mark.parametrize("limit", [1, 3, 50])
def test_severity_sorts_critical_first_or_last(
    responder: Caller, mixed: dict[str, int], limit: int
) -> None:
    assert _keys(responder, {"sort": "-severity", "limit": limit}) == [
        "e", "b", "g", "d", "f", "a", "c",
    ]  # fmt: skip
    assert _keys(responder, {"sort": "severity", "limit": limit}) == [
        "c", "a", "f", "d", "g", "b", "e",
    ]  # fmt: skip
    assert _keys(responder, {"sort": "-severity", "status": "open", "limit": limit}) == [
        "e", "b", "d", "f", "a",
    ]  # fmt: skip
    assert _keys(responder, {"sort": "urgency", "severity": "warning", "limit": limit}) == [
        "a", "f",
    ]  # fmt: skip


def test_a_cursor_of_the_urgency_sort_is_checked(responder: Caller, mixed: dict[str, int]) -> None:
    cursor = responder.get("/api/incidents?sort=urgency&limit=1").get_json()["next_cursor"]

    elsewhere = responder.get(f"/api/incidents?sort=-severity&limit=1&cursor={cursor}")
    # The cursor's segment (triggered, critical) is not in the acknowledged tab's list.
    other_tab = responder.get(
        f"/api/incidents?sort=urgency&status=acknowledged&limit=1&cursor={cursor}"
    )
    forged = responder.get("/api/incidents?sort=urgency&cursor=eyJzIjoidXJnZW5jeSJ9")

    assert "cursor" in assert_error(elsewhere, 422)["fields"]
    assert "cursor" in assert_error(other_tab, 422)["fields"]
    assert "cursor" in assert_error(forged, 422)["fields"]


def test_search_finds_by_title_source_dedup_key_and_issue_id(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    trigger(client, integration, "4512345678", "Card declined", project="Checkout")
    trigger(client, integration, "99", "Timeout", project="Search")

    def found(text: str) -> list[str]:
        return _keys(responder, {"q": text})

    assert found("card") == ["4512345678"]  # title
    assert found("checkout") == ["4512345678"]  # source
    assert found("sentry-99") == ["99"]  # dedup key
    assert found("4512345678") == ["4512345678"]  # Sentry issue id
    assert found("nothing like it") == []


# ---------------------------------------------------------------- bulk


def test_bulk_acknowledge_answers_per_id_with_the_single_actions_rules(
    responder: Caller, bridge: Bridge, mixed: dict[str, int]
) -> None:
    ids = [mixed["a"], mixed["b"], mixed["c"], 999_999, mixed["a"]]
    single = responder.post(f"/api/incidents/{mixed['b']}/acknowledge")

    response = responder.post("/api/incidents/bulk", {"action": "acknowledge", "ids": ids})

    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["action"] == "acknowledge"
    assert (body["changed"], body["failed"]) == (1, 3)
    results = {result["id"]: result for result in body["results"]}
    assert [result["id"] for result in body["results"]] == ids[:4]  # repeats dropped
    assert results[mixed["a"]]["ok"] is True
    assert results[mixed["a"]]["incident"]["status"] == "acknowledged"
    refused = results[mixed["b"]]["error"]
    assert results[mixed["b"]]["ok"] is False
    assert refused["status"] == 409
    assert refused["code"] == single.get_json()["error"]["code"] == "illegal_transition"
    assert refused["message"] == single.get_json()["error"]["message"]
    assert results[mixed["c"]]["error"]["status"] == 409
    assert results[999_999]["error"]["code"] == "not_found"
    assert results[999_999]["error"]["status"] == 404
    with bridge.database.reading() as session:
        kinds = list(
            session.scalars(
                select(TimelineEntry.kind)
                .where(TimelineEntry.incident_id == mixed["a"])
                .order_by(TimelineEntry.id)
            )
        )
        actors = list(
            session.scalars(
                select(TimelineEntry.actor).where(
                    TimelineEntry.incident_id == mixed["a"], TimelineEntry.kind == "acknowledged"
                )
            )
        )
    assert kinds == ["triggered", "acknowledged"]
    assert actors == ["oncall@example.com"]


def test_bulk_resolve_changes_each_incident_with_a_timeline_entry(
    responder: Caller, bridge: Bridge, mixed: dict[str, int]
) -> None:
    body = responder.post(
        "/api/incidents/bulk", {"action": "resolve", "ids": [mixed["a"], mixed["b"]]}
    ).get_json()

    assert body["changed"] == 2
    assert {r["incident"]["status"] for r in body["results"]} == {"resolved"}
    assert _keys(responder, {"status": "open"}) == ["f", "e", "d"]
    with bridge.database.reading() as session:
        resolved = set(
            session.scalars(
                select(TimelineEntry.incident_id).where(TimelineEntry.kind == "resolved")
            )
        )
    assert {mixed["a"], mixed["b"]} <= resolved


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"action": "reopen", "ids": [1]}, "action"),
        ({"action": "resolve", "ids": []}, "ids"),
        ({"action": "resolve", "ids": list(range(1, 102))}, "ids"),
        ({"action": "resolve", "ids": ["1"]}, "ids"),
        ({"action": "resolve"}, "ids"),
    ],
)
def test_bulk_refuses_bad_bodies(responder: Caller, body: dict[str, Any], field: str) -> None:
    error = assert_error(responder.post("/api/incidents/bulk", body), 422, "invalid_input")

    assert field in error["fields"]


def test_bulk_needs_a_token(client: FlaskClient) -> None:
    response = client.post("/api/incidents/bulk", json={"action": "resolve", "ids": [1]})

    assert_error(response, 401)


def test_bulk_and_list_answers_validate_against_the_openapi_document(
    responder: Caller, client: FlaskClient, mixed: dict[str, int]
) -> None:
    spec = OpenAPI.from_dict(client.get("/api/openapi.json").get_json())
    headers = {"Authorization": f"Bearer {responder.token}"}

    def check(method: str, path: str, **kw: Any) -> int:
        response = client.open(path, method=method, headers=headers, **kw)
        replica = Request(
            EnvironBuilder(path=path, method=method, headers=headers, **kw).get_environ()
        )
        spec.validate_response(WerkzeugOpenAPIRequest(replica), WerkzeugOpenAPIResponse(response))
        return response.status_code

    bulk = {"action": "acknowledge", "ids": [mixed["a"], mixed["b"], 999_999]}
    assert check("POST", "/api/incidents/bulk", json=bulk) == 200
    assert check("POST", "/api/incidents/bulk", json={"action": "nope", "ids": [1]}) == 422
    assert check("GET", "/api/incidents?status=open&sort=urgency&limit=2") == 200
    assert check("GET", "/api/incidents?sort=-severity") == 200


def test_list_default_stays_newest_first(responder: Caller, mixed: dict[str, int]) -> None:
    """The API's default is unchanged (scripts page with it); the page defaults to urgency."""
    assert _keys(responder, {}) == ["g", "f", "e", "d", "c", "b", "a"]
