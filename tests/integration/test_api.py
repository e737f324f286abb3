"""The JSON API on SQLite and PostgreSQL: every route for success, 401, 403, 404 and 422."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask.testing import FlaskClient

from app.extensions import Bridge
from app.services.accounts import Role
from tests.support.api import Caller, Make, _token, assert_error, trigger
from tests.support.payloads import build, load


@pytest.fixture
def admin(client: FlaskClient, bridge: Bridge) -> Caller:
    return Caller(client, _token(bridge, "admin@example.com", Role.ADMIN))


@pytest.fixture
def responder(client: FlaskClient, bridge: Bridge) -> Caller:
    return Caller(client, _token(bridge, "oncall@example.com", Role.RESPONDER))


@pytest.fixture
def anonymous(client: FlaskClient) -> Caller:
    return Caller(client, None)


# ---------------------------------------------------------------- authentication


def test_requests_without_a_token_are_401_with_a_hint(anonymous: Caller) -> None:
    response = anonymous.get("/api/incidents")

    error = assert_error(response, 401, "authentication_required")
    assert "Bearer" in error["message"]
    assert response.headers["WWW-Authenticate"] == "Bearer"


@pytest.mark.parametrize("header", ["Bearer nope", "Basic YWRtaW46YWRtaW4=", "Bearer "])
def test_unknown_or_malformed_tokens_are_401(
    client: FlaskClient, bridge: Bridge, header: str
) -> None:
    response = client.get("/api/incidents", headers={"Authorization": header})

    assert_error(response, 401, "invalid_credentials")


def test_revoked_token_is_401(admin: Caller, bridge: Bridge) -> None:
    from sqlalchemy import update

    from app.store.models import ApiToken

    with bridge.database.transaction() as session:
        session.execute(update(ApiToken).values(revoked_at=datetime.now(UTC)))

    assert_error(admin.get("/api/incidents"), 401, "invalid_credentials")


def test_deactivated_user_is_401(admin: Caller, bridge: Bridge) -> None:
    from sqlalchemy import update

    from app.store.models import User

    with bridge.database.transaction() as session:
        session.execute(update(User).values(is_active=False))

    assert_error(admin.get("/api/incidents"), 401, "invalid_credentials")


# ---------------------------------------------------------------- the incident list


def test_list_filters_by_status_severity_service_key_and_text(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    payments = make_integration(service="Payments")
    search = make_integration(service="Search")
    trigger(client, payments, "1", "Card declined", "fatal")
    trigger(client, payments, "2", "Timeout talking to PSP", "warning")
    trigger(client, search, "3", "Index 100% full", "error", project="Search Indexer")

    def ids(query: str) -> list[str]:
        response = responder.get(f"/api/incidents?{query}")
        assert response.status_code == 200, response.get_json()
        return [item["dedup_key"] for item in response.get_json()["items"]]

    assert ids("") == ["sentry-3", "sentry-2", "sentry-1"]
    assert ids("severity=critical") == ["sentry-1"]
    assert ids("service=search") == ["sentry-3"]
    assert ids("service=Payments&severity=warning") == ["sentry-2"]
    assert ids("dedup_key=sentry-2") == ["sentry-2"]
    assert ids("q=psp") == ["sentry-2"]
    assert ids("q=100%25") == ["sentry-3"]  # % is matched literally, not as a wildcard
    assert ids("q=sentry%20-%20payments") == ["sentry-2", "sentry-1"]
    assert ids("status=resolved") == []
    assert ids("sort=id") == ["sentry-1", "sentry-2", "sentry-3"]


def test_list_time_range_bounds_the_last_event(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    now = int(datetime.now(UTC).timestamp())
    trigger(client, integration, "old", at=now - 7200)
    trigger(client, integration, "new", at=now - 60)
    since = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    until = (datetime.now(UTC) - timedelta(hours=1)).isoformat()

    recent = responder.get("/api/incidents", query_string={"since": since}).get_json()["items"]
    older = responder.get("/api/incidents", query_string={"until": until}).get_json()["items"]

    assert [item["dedup_key"] for item in recent] == ["sentry-new"]
    assert [item["dedup_key"] for item in older] == ["sentry-old"]


@pytest.mark.parametrize("sort", ["-id", "id", "-last_event_at", "last_event_at"])
def test_keyset_pages_cover_every_incident_once_in_order(
    responder: Caller, client: FlaskClient, make_integration: Make, sort: str
) -> None:
    integration = make_integration()
    base = int(datetime.now(UTC).timestamp()) - 1000
    # Event times in a different order from ids, and two equal times, to test the tie-break.
    for index, offset in enumerate([50, 10, 30, 30, 90, 70, 20]):
        trigger(client, integration, f"i{index}", at=base + offset)

    seen: list[dict[str, Any]] = []
    cursor: str | None = None
    for _page in range(10):
        query: dict[str, Any] = {"sort": sort, "limit": 3}
        if cursor:
            query["cursor"] = cursor
        body = responder.get("/api/incidents", query_string=query).get_json()
        seen.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            break

    assert len(seen) == 7
    assert len({item["id"] for item in seen}) == 7
    field = "id" if sort.lstrip("-") == "id" else "last_event_at"
    keys = [(item[field], item["id"]) for item in seen]
    assert keys == sorted(keys, reverse=sort.startswith("-"))


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("status=burning", "status"),
        ("severity=loud", "severity"),
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("sort=title", "sort"),
        ("since=yesterday", "since"),
        ("cursor=not-a-cursor", "cursor"),
        ("service=nope", "service"),
        ("colour=red", "colour"),
    ],
)
def test_list_refuses_invalid_queries_with_field_errors(
    responder: Caller, query: str, field: str
) -> None:
    error = assert_error(responder.get(f"/api/incidents?{query}"), 422, "invalid_input")

    assert field in error["fields"]


def test_cursor_from_another_sort_is_refused(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    for index in range(3):
        trigger(client, integration, f"c{index}")
    cursor = responder.get("/api/incidents?limit=1").get_json()["next_cursor"]

    response = responder.get(f"/api/incidents?limit=1&sort=-last_event_at&cursor={cursor}")

    assert "cursor" in assert_error(response, 422)["fields"]


# ---------------------------------------------------------------- one incident and its lifecycle


def test_incident_detail_has_timeline_and_deliveries(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    first = trigger(client, integration, "42")
    second = trigger(client, integration, "42")
    incident_id = first["incident"]["id"]

    body = responder.get(f"/api/incidents/{incident_id}").get_json()

    assert body["id"] == incident_id
    assert body["event_count"] == 2
    assert [entry["kind"] for entry in body["timeline"]] == ["triggered", "retriggered"]
    assert [d["id"] for d in body["deliveries"]] == [first["delivery_id"], second["delivery_id"]]
    assert body["sentry"]["short_id"] == "PAYMENTS-API-3F"
    assert "body" not in body["deliveries"][0]


def test_unknown_incident_is_404(responder: Caller) -> None:
    for path in ("/api/incidents/999999", "/api/incidents/999999/timeline"):
        assert responder.get(path).status_code == 404
    for action in ("acknowledge", "resolve", "reopen"):
        assert_error(responder.post(f"/api/incidents/999999/{action}"), 404, "not_found")
    assert_error(responder.post("/api/incidents/999999/notes", {"text": "x"}), 404, "not_found")


def test_people_acknowledge_resolve_and_reopen_with_their_name_in_the_timeline(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    incident_id = trigger(client, integration, "7")["incident"]["id"]

    acknowledged = responder.post(f"/api/incidents/{incident_id}/acknowledge")
    resolved = responder.post(f"/api/incidents/{incident_id}/resolve")
    reopened = responder.post(f"/api/incidents/{incident_id}/reopen")

    assert acknowledged.status_code == 200
    assert acknowledged.get_json()["status"] == "acknowledged"
    assert resolved.get_json()["status"] == "resolved"
    assert reopened.get_json()["status"] == "triggered"
    detail = responder.get(f"/api/incidents/{incident_id}").get_json()
    assert detail["reopen_count"] == 1
    people = [(e["kind"], e["actor"]) for e in detail["timeline"][1:]]
    assert people == [
        ("acknowledged", "oncall@example.com"),
        ("resolved", "oncall@example.com"),
        ("reopened", "oncall@example.com"),
    ]


def test_illegal_transitions_are_409_saying_why(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    incident_id = trigger(client, integration, "8")["incident"]["id"]

    reopen_open = assert_error(responder.post(f"/api/incidents/{incident_id}/reopen"), 409)
    responder.post(f"/api/incidents/{incident_id}/acknowledge")
    twice = assert_error(responder.post(f"/api/incidents/{incident_id}/acknowledge"), 409)
    responder.post(f"/api/incidents/{incident_id}/resolve")
    ack_resolved = assert_error(responder.post(f"/api/incidents/{incident_id}/acknowledge"), 409)
    resolve_resolved = assert_error(responder.post(f"/api/incidents/{incident_id}/resolve"), 409)

    assert "only a resolved incident" in reopen_open["message"].lower()
    assert "already acknowledged" in twice["message"]
    assert "reopen it first" in ack_resolved["message"]
    assert "already resolved" in resolve_resolved["message"]
    assert reopen_open["code"] == "illegal_transition"


def test_reopen_is_refused_while_another_incident_is_open_for_the_key(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration(reopen_window_minutes=0)
    first = trigger(client, integration, "9")["incident"]["id"]
    responder.post(f"/api/incidents/{first}/resolve")
    # Sentry sends issue.created once per issue; what comes after a resolve is a regression.
    second = trigger(client, integration, "9", action="unresolved")["incident"]["id"]
    assert second != first

    error = assert_error(responder.post(f"/api/incidents/{first}/reopen"), 409)

    assert str(second) in error["message"]


def test_a_person_resolving_makes_an_older_sentry_resolve_stale(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    incident_id = trigger(client, integration, "10")["incident"]["id"]
    responder.post(f"/api/incidents/{incident_id}/resolve")
    responder.post(f"/api/incidents/{incident_id}/reopen")
    _resource, payload = load("integration_issue_resolved")
    payload["data"]["issue"]["id"] = "10"
    old = build(payload, resource="issue", timestamp=int(datetime.now(UTC).timestamp()) - 3600)

    answer = client.post(integration.url, data=old.body, headers=old.headers).get_json()

    assert answer["action"] == "ignored"
    assert "stale" in answer["reason"]


def test_notes_are_added_to_the_timeline(
    responder: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    incident_id = trigger(client, integration, "11")["incident"]["id"]

    response = responder.post(f"/api/incidents/{incident_id}/notes", {"text": "Rolled back 2.14"})

    assert response.status_code == 201
    note = response.get_json()
    assert (note["kind"], note["actor"], note["message"]) == (
        "note",
        "oncall@example.com",
        "Rolled back 2.14",
    )
    timeline = responder.get(f"/api/incidents/{incident_id}").get_json()["timeline"]
    assert timeline[-1]["id"] == note["id"]


@pytest.mark.parametrize("body", [{}, {"text": ""}, {"text": 5}, {"text": "x" * 10_001}, ["x"]])
def test_invalid_notes_are_422_with_field_errors(
    responder: Caller, client: FlaskClient, make_integration: Make, body: Any
) -> None:
    integration = make_integration()
    incident_id = trigger(client, integration, "12")["incident"]["id"]

    error = assert_error(responder.post(f"/api/incidents/{incident_id}/notes", body), 422)

    assert set(error["fields"]) & {"text", "_body"}


# ---------------------------------------------------------------- services and integrations


ADMIN_ROUTES = [
    ("GET", "/api/services"),
    ("POST", "/api/services"),
    ("GET", "/api/services/1"),
    ("PATCH", "/api/services/1"),
    ("GET", "/api/integrations"),
    ("POST", "/api/integrations"),
    ("GET", "/api/integrations/x"),
    ("PATCH", "/api/integrations/x"),
    ("POST", "/api/integrations/x/secret"),
    ("DELETE", "/api/integrations/x/secret"),
    ("GET", "/api/deliveries"),
    ("GET", "/api/deliveries/1"),
    ("POST", "/api/deliveries/1/replay"),
]
RESPONDER_ROUTES = [
    ("GET", "/api/incidents"),
    ("GET", "/api/incidents/1"),
    ("POST", "/api/incidents/1/acknowledge"),
    ("POST", "/api/incidents/1/resolve"),
    ("POST", "/api/incidents/1/reopen"),
    ("POST", "/api/incidents/1/notes"),
]


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES + RESPONDER_ROUTES)
def test_every_route_is_401_without_a_token(anonymous: Caller, method: str, path: str) -> None:
    assert_error(anonymous.call(method, path, json={}), 401, "authentication_required")


@pytest.mark.parametrize(("method", "path"), ADMIN_ROUTES)
def test_admin_routes_are_403_for_responders(responder: Caller, method: str, path: str) -> None:
    error = assert_error(responder.call(method, path, json={}), 403, "forbidden")

    assert "admin" in error["message"]


def test_admins_create_list_show_and_update_services(admin: Caller) -> None:
    created = admin.post("/api/services", {"name": "Billing Core", "reopen_window_minutes": 5})
    assert created.status_code == 201
    service = created.get_json()
    assert (service["slug"], service["reopen_window_minutes"]) == ("billing-core", 5)

    assert [s["name"] for s in admin.get("/api/services").get_json()] == ["Billing Core"]
    assert admin.get(f"/api/services/{service['id']}").get_json() == service
    updated = admin.call("PATCH", f"/api/services/{service['id']}", json={"name": "Billing"})
    assert (updated.get_json()["name"], updated.get_json()["slug"]) == ("Billing", "billing")
    window = admin.call(
        "PATCH", f"/api/services/{service['id']}", json={"reopen_window_minutes": 60}
    )
    assert window.get_json()["reopen_window_minutes"] == 60


def test_duplicate_service_is_409(admin: Caller) -> None:
    admin.post("/api/services", {"name": "Billing"})

    assert_error(admin.post("/api/services", {"name": "billing"}), 409, "conflict")


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/services", {}, "name"),
        (
            "POST",
            "/api/services",
            {"name": "x", "reopen_window_minutes": -1},
            "reopen_window_minutes",
        ),
        (
            "PATCH",
            "/api/services/{service}",
            {"reopen_window_minutes": "soon"},
            "reopen_window_minutes",
        ),
        ("POST", "/api/integrations", {}, "service_id"),
        (
            "POST",
            "/api/integrations",
            {"service_id": "{service}", "secret": "a", "generate_secret": True},
            "secret",
        ),
        ("PATCH", "/api/integrations/{integration}", {"enabled": "maybe"}, "enabled"),
        ("POST", "/api/integrations/{integration}/secret", {}, "secret"),
        (
            "POST",
            "/api/integrations/{integration}/secret",
            {"secret": "a", "generate": True},
            "secret",
        ),
        ("GET", "/api/deliveries?limit=500", None, "limit"),
    ],
)
def test_admin_input_errors_are_422_with_field_errors(
    admin: Caller, make_integration: Make, method: str, path: str, body: Any, field: str
) -> None:
    integration = make_integration()
    service_id = admin.get("/api/services").get_json()[0]["id"]
    path = path.format(service=service_id, integration=integration.id)
    if isinstance(body, dict) and body.get("service_id") == "{service}":
        body["service_id"] = service_id

    error = assert_error(admin.call(method, path, json=body), 422, "invalid_input")

    assert field in error["fields"]


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/services/999999"),
        ("PATCH", "/api/services/999999"),
        ("GET", "/api/integrations/nope"),
        ("PATCH", "/api/integrations/nope"),
        ("POST", "/api/integrations/nope/secret"),
        ("DELETE", "/api/integrations/nope/secret"),
        ("GET", "/api/deliveries/999999"),
        ("POST", "/api/deliveries/999999/replay"),
    ],
)
def test_admin_routes_for_unknown_ids_are_404(admin: Caller, method: str, path: str) -> None:
    body = {"generate": True} if path.endswith("/secret") and method == "POST" else {}
    assert_error(admin.call(method, path, json=body), 404, "not_found")


def test_integration_for_unknown_service_is_404(admin: Caller) -> None:
    assert_error(admin.post("/api/integrations", {"service_id": 999999}), 404, "not_found")


def test_integration_lifecycle_through_the_api_drives_the_webhook(
    admin: Caller, client: FlaskClient
) -> None:
    service = admin.post("/api/services", {"name": "Checkout"}).get_json()
    created = admin.post(
        "/api/integrations", {"service_id": service["id"], "secret": "pasted-client-secret"}
    )
    assert created.status_code == 201
    integration = created.get_json()
    assert "secret" not in integration  # a pasted secret is never echoed back
    assert integration["webhook_url"].endswith(f"integrationId={integration['id']}")
    url = f"/api/integrations/sentry?integrationId={integration['id']}"

    def deliver(secret: str | None) -> int:
        delivery = build("integration_issue_created", secret=secret)
        return client.post(url, data=delivery.body, headers=delivery.headers).status_code

    shown = admin.get(f"/api/integrations/{integration['id']}").get_json()
    assert "secret" not in shown
    assert shown["has_secret"] is True
    assert deliver("pasted-client-secret") == 202

    rotated = admin.post(f"/api/integrations/{integration['id']}/secret", {"generate": True})
    new_secret = rotated.get_json()["secret"]
    assert rotated.get_json()["previous_secret_valid_until"] is not None
    assert (deliver("pasted-client-secret"), deliver(new_secret), deliver("wrong")) == (
        202,
        202,
        401,
    )

    pasted = admin.post(f"/api/integrations/{integration['id']}/secret", {"secret": "sentry-2"})
    assert pasted.get_json()["secret"] is None  # never echoed back
    assert deliver("sentry-2") == 202

    disabled = admin.call(
        "PATCH", f"/api/integrations/{integration['id']}", json={"enabled": False}
    )
    assert disabled.get_json()["enabled"] is False
    assert deliver("sentry-2") == 403
    admin.call("PATCH", f"/api/integrations/{integration['id']}", json={"enabled": True})

    unsigned = admin.call("DELETE", f"/api/integrations/{integration['id']}/secret")
    assert unsigned.get_json()["has_secret"] is False
    assert deliver(None) == 202
    listed = admin.get("/api/integrations").get_json()
    assert [i["id"] for i in listed] == [integration["id"]]


# ---------------------------------------------------------------- deliveries


def test_admins_list_filter_and_inspect_deliveries(
    admin: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    good = build("integration_issue_created", secret="s3cr3t", request_id="r" * 32)
    bad = build("integration_issue_created", secret="wrong")
    client.post(integration.url, data=good.body, headers=good.headers)
    client.post(integration.url, data=bad.body, headers=bad.headers)
    other = make_integration(service="Other")
    client.post(other.url, data=good.body, headers=good.headers)

    everything = admin.get("/api/deliveries").get_json()["items"]
    mine = admin.get(f"/api/deliveries?integration_id={integration.id}").get_json()["items"]
    refused = admin.get("/api/deliveries?decision=refused").get_json()["items"]
    page = admin.get("/api/deliveries?limit=2").get_json()
    rest = admin.get(f"/api/deliveries?limit=2&cursor={page['next_cursor']}").get_json()

    assert len(everything) == 3
    assert [d["decision"] for d in mine] == ["refused", "triggered"]
    assert [d["signature_outcome"] for d in refused] == ["mismatch"]
    assert [d["id"] for d in page["items"] + rest["items"]] == [d["id"] for d in everything]
    assert rest["next_cursor"] is None

    detail = admin.get(f"/api/deliveries/{mine[1]['id']}").get_json()
    assert detail["headers"]["Request-ID"] == "r" * 32
    assert detail["headers"]["Sentry-Hook-Resource"] == "issue"
    assert detail["body"] == good.body.decode()
    assert detail["http_status"] == 202
    assert "s3cr3t" not in str(detail)
    assert good.headers["Sentry-Hook-Signature"] not in str(detail)


def test_replay_applies_a_stored_delivery_again_as_a_new_delivery(
    admin: Caller, client: FlaskClient, bridge: Bridge, make_integration: Make
) -> None:
    integration = make_integration(secret="s3cr3t")
    admin.call("PATCH", f"/api/integrations/{integration.id}", json={"enabled": False})
    delivery = build("integration_issue_created", secret="s3cr3t", request_id="q" * 32)
    refused = client.post(integration.url, data=delivery.body, headers=delivery.headers)
    assert refused.status_code == 403
    original_id = admin.get("/api/deliveries").get_json()["items"][0]["id"]
    admin.call("PATCH", f"/api/integrations/{integration.id}", json={"enabled": True})

    first = admin.post(f"/api/deliveries/{original_id}/replay")
    again = admin.post(f"/api/deliveries/{original_id}/replay")

    assert first.status_code == 200
    assert first.get_json()["action"] == "triggered"
    assert first.get_json()["error"] is None
    assert again.get_json()["action"] == "deduplicated"  # a replay is exempt from Request-ID
    replayed = admin.get(f"/api/deliveries/{first.get_json()['delivery_id']}").get_json()
    assert replayed["replay_of_id"] == original_id
    assert replayed["replayed_by"] == "admin@example.com"
    assert replayed["signature_outcome"] == "replayed_by_person"


def test_replay_of_a_delivery_without_body_is_409(
    admin: Caller, client: FlaskClient, make_integration: Make, settings: Any
) -> None:
    integration = make_integration()
    client.post(
        integration.url,
        data=b"{" + b" " * settings.max_body_bytes + b"}",
        headers={"Content-Type": "application/json"},
    )
    delivery_id = admin.get("/api/deliveries").get_json()["items"][0]["id"]

    error = assert_error(admin.post(f"/api/deliveries/{delivery_id}/replay"), 409, "conflict")

    assert "not kept" in error["message"]


def test_replay_of_a_disabled_integrations_delivery_reports_the_refusal(
    admin: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    delivery = build("integration_issue_created")
    client.post(integration.url, data=delivery.body, headers=delivery.headers)
    admin.call("PATCH", f"/api/integrations/{integration.id}", json={"enabled": False})
    delivery_id = admin.get("/api/deliveries").get_json()["items"][0]["id"]

    answer = admin.post(f"/api/deliveries/{delivery_id}/replay").get_json()

    assert answer["action"] == "refused"
    assert answer["error"]["code"] == "integration_disabled"
    # The one error document, with the status the webhook would have answered.
    assert answer["error"]["status"] == 403


def test_inspector_never_shows_the_oauth_grant_code(
    admin: Caller, client: FlaskClient, make_integration: Make
) -> None:
    integration = make_integration()
    delivery = build("integration_installation_created")
    code = load("integration_installation_created")[1]["data"]["installation"]["code"]
    client.post(integration.url, data=delivery.body, headers=delivery.headers)
    delivery_id = admin.get("/api/deliveries").get_json()["items"][0]["id"]

    detail = admin.get(f"/api/deliveries/{delivery_id}").get_json()

    assert code not in detail["body"]
    assert "[redacted]" in detail["body"]
