"""The incident and what Sentry sent (issue 16), on SQLite and PostgreSQL: the payload's
facts in the API and on the page, triggered vs event time, search by short id, timeline
order and title changes, assignment (web, API, CLI), and test alerts."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.cli import main
from app.extensions import Bridge
from app.services.accounts import Role, create_token, create_user, find_user, set_active
from app.services.alert_probe import sample_delivery
from tests.support.databases import cli_env
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load, seen_at

Make = Callable[..., MadeIntegration]
PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


class Api:
    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client, self.token = client, token

    def get(self, path: str) -> Any:
        response = self.client.get(path, headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def post(self, path: str, body: Any) -> TestResponse:
        return self.client.post(path, json=body, headers={"Authorization": f"Bearer {self.token}"})


@pytest.fixture
def api(client: FlaskClient, bridge: Bridge) -> Api:
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, "bob@example.com", PASSWORD, Role.RESPONDER, now)
        create_user(session, "alice@example.com", PASSWORD, Role.RESPONDER, now)
        token = create_token(session, "bob@example.com", "tests", now).token
    return Api(client, token)


def deliver(client: FlaskClient, integration: MadeIntegration, delivery: Any) -> dict[str, Any]:
    response = client.post(integration.url, data=delivery.body, headers=delivery.headers)
    assert response.status_code == 202, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


def issue(
    action: str = "created", seen: float | None = None, **changes: Any
) -> tuple[dict[str, Any], str]:
    _resource, payload = load("integration_issue_created")
    payload["action"] = action
    payload["data"]["issue"].update(changes)
    seen_at(payload, seen if seen is not None else datetime.now(UTC).timestamp())
    return payload, "issue"


def send(client: FlaskClient, integration: MadeIntegration, payload: Any, resource: str) -> Any:
    return deliver(client, integration, build(payload, resource=resource))


def iso(moment: datetime) -> datetime:
    return moment.astimezone(UTC)


def parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


# ---------------------------------------------------------------- facts in the API


def test_an_issue_webhooks_facts_are_in_the_api_without_enrichment(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    integration = make_integration()
    answer = deliver(client, integration, build("integration_issue_created"))

    incident = api.get(f"/api/incidents/{answer['incident']['id']}")

    assert incident["enrichment"] is None
    assert incident["sentry"] == {
        "issue_id": "4512345678",
        "short_id": "PAYMENTS-API-3F",
        "issue_url": "https://acme-gmbh.sentry.io/issues/4512345678/",
        "project": "payments-api",
        "culprit": "payments.service in charge_card",
        "environment": None,
        "release": None,
        "platform": "python",
        "tags": None,
        "count": 1,
        "user_count": 1,
    }
    assert incident["is_test"] is False
    assert parse(incident["event_at"]) == datetime(2026, 11, 23, 9, 21, 7, 482000, tzinfo=UTC)


def test_later_deliveries_update_the_facts_and_absent_ones_erase_nothing(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    integration = make_integration()
    event = deliver(client, integration, build("integration_event_alert_triggered"))
    incident_id = event["incident"]["id"]

    first = api.get(f"/api/incidents/{incident_id}")["sentry"]
    assert first["environment"] == "production"
    assert first["release"] == "payments-api@2.14.1"
    assert first["tags"]["handled"] == "no"
    assert first["count"] is None  # an event payload carries no issue counts

    # The issue webhook (same issue) brings counts and the short id; the event's stay.
    payload, resource = issue(action="unresolved", count="43", userCount=18)
    deliver(client, integration, build(payload, resource=resource))
    later = api.get(f"/api/incidents/{incident_id}")["sentry"]

    assert (later["count"], later["user_count"]) == (43, 18)
    assert later["short_id"] == "PAYMENTS-API-3F"
    assert later["environment"] == "production" and later["tags"]["handled"] == "no"

    # A resolve carries Sentry's newest counts too.
    _res, resolved = load("integration_issue_resolved")
    seen_at(resolved, datetime.now(UTC).timestamp())
    deliver(client, integration, build(resolved, resource="issue"))
    assert api.get(f"/api/incidents/{incident_id}")["sentry"]["count"] == 42


def test_a_legacy_event_from_last_year_triggers_now_and_keeps_its_own_time(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    integration = make_integration()
    _resource, payload = load("legacy_webhooks_plugin")
    payload["event"]["timestamp"] = 1705312800  # 2024-01-15T10:00:00Z
    payload["event"].pop("datetime", None)
    before = datetime.now(UTC)
    answer = deliver(client, integration, build(payload))

    incident = api.get(f"/api/incidents/{answer['incident']['id']}")

    assert parse(incident["triggered_at"]) >= before - timedelta(seconds=1)
    assert parse(incident["event_at"]) == datetime(2024, 1, 15, 10, 0, tzinfo=UTC)
    assert incident["sentry"]["culprit"] == "payments.jp.service in capture"
    assert incident["sentry"]["environment"] == "production"
    assert incident["sentry"]["tags"]["logger"] == "payments.jp"


def test_the_incident_page_shows_the_facts_and_the_event_time(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    integration = make_integration()
    answer = deliver(client, integration, build("integration_event_alert_triggered"))
    log_in(client, "bob@example.com")

    page = client.get(f"/incidents/{answer['incident']['id']}").get_data(as_text=True)

    assert "What Sentry sent" in page
    assert "payments.service in charge_card" in page
    assert "payments-api@2.14.1" in page
    assert "handled: no" in page
    assert "Event time" in page
    # Times: UTC in the datetime attribute (with Z) and the tooltip; bridge.js localises.
    assert re.search(
        r'<time datetime="2026-11-23T09:21:07Z" title="2026-11-23 09:21:07 UTC" data-local>',
        page,
    )


# ---------------------------------------------------------------- search by short id


def test_search_finds_the_short_id_in_any_case_in_api_page_and_cli(
    client: FlaskClient, api: Api, bridge: Bridge, make_integration: Make, cli: Any
) -> None:
    integration = make_integration()
    found = deliver(client, integration, build("integration_issue_created"))["incident"]["id"]
    other, resource = issue(id="4512340000", shortId="CHECKOUT-77", title="Cart failed")
    other_id = send(client, integration, other, resource)["incident"]["id"]

    def ids(query: str) -> list[int]:
        return [item["id"] for item in api.get(f"/api/incidents?q={query}")["items"]]

    assert ids("checkout-77") == [other_id]
    assert ids("PAYMENTS-API-3f") == [found]
    log_in(client, "bob@example.com")
    rows = client.get("/incidents/rows?status=all&q=Checkout-77").get_data(as_text=True)
    assert f'data-incident-id="{other_id}"' in rows
    assert f'data-incident-id="{found}"' not in rows
    listed = cli("incident", "list", "--json", "--search", "checkout-77")
    assert [item["id"] for item in listed] == [other_id]


# ---------------------------------------------------------------- timeline


def kinds(api: Api, incident_id: int) -> list[str]:
    timeline = api.get(f"/api/incidents/{incident_id}")["timeline"]
    assert [entry["id"] for entry in timeline] == sorted(entry["id"] for entry in timeline)
    return [entry["kind"] for entry in timeline]


def test_a_reopen_reads_reopened_before_severity_changed(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    integration = make_integration()
    start = datetime.now(UTC).timestamp() - 600
    created, resource = issue(seen=start, level="warning")
    incident_id = send(client, integration, created, resource)["incident"]["id"]
    _r, resolved = load("integration_issue_resolved")
    seen_at(resolved, start + 60)
    deliver(client, integration, build(resolved, resource="issue", timestamp=int(start + 60)))
    again, resource = issue(action="unresolved", seen=start + 120, level="fatal")
    answer = deliver(
        client, integration, build(again, resource=resource, timestamp=int(start + 120))
    )

    assert answer["action"] == "reopened"
    assert kinds(api, incident_id) == ["triggered", "resolved", "reopened", "severity_changed"]


def test_a_title_change_is_on_the_timeline(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    integration = make_integration()
    start = datetime.now(UTC).timestamp() - 600
    created, resource = issue(seen=start, title="TypeError: cart is undefined")
    incident_id = send(client, integration, created, resource)["incident"]["id"]
    renamed, resource = issue(
        action="unresolved", seen=start + 30, title="TypeError: basket is undefined"
    )
    deliver(client, integration, build(renamed, resource=resource, timestamp=int(start + 30)))

    document = api.get(f"/api/incidents/{incident_id}")
    assert document["title"] == "TypeError: basket is undefined"
    assert kinds(api, incident_id) == ["triggered", "retriggered", "title_changed"]
    change = document["timeline"][-1]
    assert "cart is undefined" in change["message"] and "basket is undefined" in change["message"]


# ---------------------------------------------------------------- assignment


def test_assign_through_the_api_with_a_timeline_entry_and_the_mine_filter(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    integration = make_integration()
    incident_id = deliver(client, integration, build("integration_issue_created"))["incident"]["id"]
    other, resource = issue(id="4512340001")
    send(client, integration, other, resource)

    assigned = api.post(f"/api/incidents/{incident_id}/assign", {"user": "Alice@Example.com"})
    assert assigned.status_code == 200, assigned.get_json()
    assert assigned.get_json()["assignee"] == "alice@example.com"
    entry = api.get(f"/api/incidents/{incident_id}")["timeline"][-1]
    assert (entry["kind"], entry["actor"]) == ("assigned", "bob@example.com")
    assert entry["message"] == "Assigned to alice@example.com by bob@example.com"

    assert api.get("/api/incidents?assignee=me")["items"] == []
    mine = api.post(f"/api/incidents/{incident_id}/assign", {"user": "bob"})  # the local part
    assert mine.get_json()["assignee"] == "bob@example.com"
    assert [item["id"] for item in api.get("/api/incidents?assignee=me")["items"]] == [incident_id]
    by_email = api.get("/api/incidents?assignee=BOB@example.com")["items"]
    assert [item["id"] for item in by_email] == [incident_id]

    cleared = api.post(f"/api/incidents/{incident_id}/assign", {"user": None})
    assert cleared.get_json()["assignee"] is None
    timeline = api.get(f"/api/incidents/{incident_id}")["timeline"]
    assert timeline[-1]["message"] == "Unassigned (was bob@example.com) by bob@example.com"
    assert [entry["kind"] for entry in timeline].count("assigned") == 2


def test_assigning_an_unknown_or_deactivated_user_is_a_422_naming_them(
    client: FlaskClient, api: Api, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration()
    incident_id = deliver(client, integration, build("integration_issue_created"))["incident"]["id"]

    unknown = api.post(f"/api/incidents/{incident_id}/assign", {"user": "carol@example.com"})
    assert unknown.status_code == 422
    message = unknown.get_json()["error"]["message"]
    assert "carol@example.com" in message and "alice@example.com" in message
    assert api.post(f"/api/incidents/{incident_id}/assign", {}).status_code == 422
    missing = api.post("/api/incidents/999999/assign", {"user": "alice@example.com"})
    assert missing.status_code == 404

    with bridge.database.transaction() as session:
        set_active(session, find_user(session, "alice@example.com"), False)
    gone = api.post(f"/api/incidents/{incident_id}/assign", {"user": "alice@example.com"})
    assert gone.status_code == 422
    assert "deactivated" in gone.get_json()["error"]["message"]
    assert api.get(f"/api/incidents/{incident_id}")["assignee"] is None


def log_in(client: FlaskClient, email: str) -> None:
    token = CSRF.search(client.get("/login").get_data(as_text=True))
    assert token
    response = client.post(
        "/login", data={"email": email, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert response.status_code == 302


def page_token(client: FlaskClient, path: str) -> str:
    match = CSRF.search(client.get(path).get_data(as_text=True))
    assert match
    return match.group(1)


def test_assign_from_the_incident_page_needs_the_csrf_token(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    integration = make_integration()
    incident_id = deliver(client, integration, build("integration_issue_created"))["incident"]["id"]
    log_in(client, "bob@example.com")
    path = f"/incidents/{incident_id}"

    client.post(f"{path}/assign", data={"user": "alice@example.com"})  # no token
    assert api.get(path.replace("/incidents", "/api/incidents"))["assignee"] is None

    token = page_token(client, path)
    done = client.post(f"{path}/assign", data={"user": "me", "csrf_token": token})
    assert done.status_code == 302
    assert api.get(f"/api/incidents/{incident_id}")["assignee"] == "bob@example.com"
    unknown = client.post(f"{path}/assign", data={"user": "carol@example.com", "csrf_token": token})
    page = client.get(unknown.headers["Location"]).get_data(as_text=True)
    assert "carol@example.com" in page  # the refusal, flashed

    mine = client.get("/incidents/rows?status=all&mine=1").get_data(as_text=True)
    assert f'data-incident-id="{incident_id}"' in mine
    client.post(f"{path}/assign", data={"user": "", "csrf_token": token})
    mine = client.get("/incidents/rows?status=all&mine=1").get_data(as_text=True)
    assert f'data-incident-id="{incident_id}"' not in mine


@pytest.fixture
def cli(bridge: Bridge, encryption_key: str, tmp_path: Path) -> Callable[..., Any]:
    env = cli_env(bridge.database.url, encryption_key, tmp_path)
    runner = CliRunner()

    def run(*args: str, status: int = 0) -> Any:
        result = runner.invoke(main, list(args), env=env, catch_exceptions=False)
        assert result.exit_code == status, result.output
        return json.loads(result.stdout) if status == 0 and "--json" in args else result.output

    return run


def test_assign_from_the_cli_and_list_mine(
    client: FlaskClient, api: Api, make_integration: Make, cli: Callable[..., Any]
) -> None:
    integration = make_integration()
    incident_id = deliver(client, integration, build("integration_issue_created"))["incident"]["id"]

    said = cli(
        "incident", "assign", str(incident_id), "alice@example.com", "--as", "bob@example.com"
    )
    assert "assigned to alice@example.com" in said
    entry = api.get(f"/api/incidents/{incident_id}")["timeline"][-1]
    assert entry["message"] == "Assigned to alice@example.com by bob@example.com"

    mine = cli("incident", "list", "--json", "--mine", "--as", "alice@example.com")
    assert [item["id"] for item in mine] == [incident_id]
    assert cli("incident", "list", "--json", "--mine", "--as", "bob@example.com") == []
    assert "--as" in cli("incident", "list", "--mine", status=2)

    refused = cli("incident", "assign", str(incident_id), "carol@example.com", status=1)
    assert "carol@example.com" in refused
    cli("incident", "assign", str(incident_id), "--unassign")
    entry = api.get(f"/api/incidents/{incident_id}")["timeline"][-1]
    assert entry["kind"] == "unassigned" and entry["actor"].startswith("cli")


# ---------------------------------------------------------------- test alerts


def test_test_alerts_are_marked_and_can_be_hidden(
    client: FlaskClient, api: Api, make_integration: Make, cli: Callable[..., Any]
) -> None:
    integration = make_integration(secret="s3cr3t")
    body, headers = sample_delivery(integration.id, "s3cr3t", datetime.now(UTC))
    answer = client.post(integration.url, data=body, headers=headers)
    assert answer.status_code == 202, answer.get_json()
    test_id = answer.get_json()["incident"]["id"]
    real = build("integration_issue_created", secret="s3cr3t")
    real_id = deliver(client, integration, real)["incident"]["id"]

    assert api.get(f"/api/incidents/{test_id}")["is_test"] is True
    assert api.get(f"/api/incidents/{real_id}")["is_test"] is False
    shown = {item["id"] for item in api.get("/api/incidents")["items"]}
    hidden = [item["id"] for item in api.get("/api/incidents?test=hide")["items"]]
    only = [item["id"] for item in api.get("/api/incidents?test=only")["items"]]
    assert shown == {test_id, real_id}  # shown by default: the sender wants to see it arrive
    assert hidden == [real_id]
    assert only == [test_id]
    assert [item["id"] for item in cli("incident", "list", "--json", "--test", "hide")] == [real_id]

    log_in(client, "bob@example.com")
    rows = client.get("/incidents/rows?status=all").get_data(as_text=True)
    test_row = rows.split(f'data-incident-id="{test_id}"')[1].split("</tr>")[0]
    real_row = rows.split(f'data-incident-id="{real_id}"')[1].split("</tr>")[0]
    assert 'class="badge test"' in test_row and ">Test</span>" in test_row
    assert "badge test" not in real_row
    without = client.get("/incidents/rows?status=all&test=hide").get_data(as_text=True)
    assert f'data-incident-id="{test_id}"' not in without
    assert f'data-incident-id="{real_id}"' in without
    detail = client.get(f"/incidents/{test_id}").get_data(as_text=True)
    assert 'class="badge test"' in detail


# ---------------------------------------------------------------- the OpenAPI document


def test_the_new_fields_and_assign_are_in_the_openapi_document_and_validate(
    client: FlaskClient, api: Api, make_integration: Make
) -> None:
    from openapi_core import OpenAPI
    from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
    from werkzeug.test import EnvironBuilder
    from werkzeug.wrappers import Request

    document = client.get("/api/openapi.json").get_json()
    spec = OpenAPI.from_dict(document)
    incident_schema = document["components"]["schemas"]["Incident"]["properties"]
    assert {"event_at", "is_test", "sentry"} <= set(incident_schema)
    sentry = document["components"]["schemas"]["SentryLinks"]["properties"]
    assert {"culprit", "environment", "release", "platform", "tags", "count", "user_count"} <= set(
        sentry
    )
    assign = document["paths"]["/api/incidents/{incident_id}/assign"]["post"]
    assert "422" in assign["responses"]
    query = {p.get("name") for p in document["paths"]["/api/incidents"]["get"]["parameters"]}
    assert query  # the list's query parameters are documented (a schema reference)

    integration = make_integration()
    incident_id = deliver(client, integration, build("integration_event_alert_triggered"))[
        "incident"
    ]["id"]
    headers = {"Authorization": f"Bearer {api.token}"}

    def checked(method: str, path: str, **kw: Any) -> TestResponse:
        response = client.open(path, method=method, headers=headers, **kw)
        replica = Request(
            EnvironBuilder(path=path, method=method, headers=headers, **kw).get_environ()
        )
        spec.validate_response(WerkzeugOpenAPIRequest(replica), WerkzeugOpenAPIResponse(response))
        return response

    assert checked("GET", f"/api/incidents/{incident_id}").status_code == 200
    assert checked("GET", "/api/incidents?assignee=me&test=hide&q=x").status_code == 200
    path = f"/api/incidents/{incident_id}/assign"
    assert checked("POST", path, json={"user": "alice@example.com"}).status_code == 200
    assert checked("POST", path, json={"user": "nobody@example.com"}).status_code == 422
    assert checked("POST", path, json={"user": None}).status_code == 200
