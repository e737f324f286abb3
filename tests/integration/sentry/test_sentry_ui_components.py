"""Sentry UI components: requests shaped and signed the way Sentry sends them."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from app.extensions import Bridge
from app.services import catalog
from app.services.sentry_installations import save_internal_token
from app.store.models import Incident, SentryJob
from tests.fakes.sentry_server import CLIENT_SECRET
from tests.support.integrations import MadeIntegration
from tests.support.payloads import sign

INSTALLATION = "7a3c9f2e-5b1d-4e8a-9c6f-2d4b8e1a0f37"


def post(
    client: FlaskClient, path: str, document: dict[str, Any], secret: str = CLIENT_SECRET
) -> TestResponse:
    body = json.dumps(document, separators=(",", ":")).encode()  # Sentry's json.dumps
    headers = {
        "Content-Type": "application/json",
        "Request-ID": uuid.uuid4().hex,
        "Sentry-App-Signature": sign(secret, body),
    }
    return client.post(path, data=body, headers=headers)


def get(
    client: FlaskClient, path: str, query: dict[str, str], secret: str = CLIENT_SECRET
) -> TestResponse:
    # Select-option requests sign the empty string; the query travels unsigned.
    headers = {"Request-ID": uuid.uuid4().hex, "Sentry-App-Signature": sign(secret, b"")}
    return client.get(path, query_string=query, headers=headers)


def connect(bridge: Bridge, hook: MadeIntegration) -> None:
    with bridge.database.transaction() as session:
        save_internal_token(
            session,
            bridge.secrets,
            user_id=None,
            integration_id=hook.id,
            org_slug="acme-gmbh",
            token="sntrys_x",
            installation_uuid=INSTALLATION,
            app_uuid=None,
            now=datetime.now(UTC),
        )


OTHER_INSTALLATION = "0d5c1e22-3f0a-4f7b-9a51-6e2b7c9d8a10"


def connect_other(bridge: Bridge, service_name: str, org_slug: str, uuid: str | None) -> str:
    """Another service fed by an integration connected to `org_slug`; its slug."""
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        service = catalog.create_service(session, service_name, now)
        created = catalog.create_integration(session, bridge.secrets, service, now)
        save_internal_token(
            session,
            bridge.secrets,
            user_id=None,
            integration_id=created.integration.id,
            org_slug=org_slug,
            token="sntrys_other",
            installation_uuid=uuid,
            app_uuid=None,
            now=now,
        )
        return service.slug


def issue_link_body(fields: dict[str, str]) -> dict[str, Any]:
    return {
        "fields": fields,
        "issueId": 4512345678,
        "installationId": INSTALLATION,
        "webUrl": "https://acme-gmbh.sentry.io/issues/4512345678/",
        "project": {"slug": "checkout", "id": 4504011},
        "actor": {"type": "user", "id": 2837461, "name": "Jürgen Müller"},
    }


def test_alert_rule_action_accepts_a_known_service_and_explains_an_unknown_one(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    connect(bridge, hook)
    body = {"fields": [{"name": "service", "value": "payments"}], "installationId": INSTALLATION}

    accepted = post(client, "/sentry/ui/alert-rule-action", body)
    refused = post(
        client,
        "/sentry/ui/alert-rule-action",
        {"fields": [{"name": "service", "value": "nope"}], "installationId": INSTALLATION},
    )

    assert accepted.status_code == 200
    assert "Payments" in accepted.get_json()["message"]
    assert refused.status_code == 400
    assert "nope" in refused.get_json()["message"]  # Sentry shows this message in its form


def test_ui_requests_must_carry_a_valid_sentry_app_signature(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    body = {"fields": [{"name": "service", "value": "payments"}], "installationId": INSTALLATION}

    forged = post(client, "/sentry/ui/alert-rule-action", body, secret="not-the-secret")
    unsigned = client.post("/sentry/ui/alert-rule-action", json=body)
    forged_get = get(client, "/sentry/ui/options/services", {"installationId": INSTALLATION}, "x")

    assert forged.status_code == unsigned.status_code == forged_get.status_code == 401
    assert forged.get_json()["code"] == "signature_mismatch"
    assert unsigned.get_json()["code"] == "signature_missing"
    assert CLIENT_SECRET not in forged.get_data(as_text=True)


def test_issue_link_create_opens_one_incident_and_answers_strings(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    connect(bridge, hook)

    first = post(client, "/sentry/ui/issue-link/create", issue_link_body({"title": "Cart broken"}))
    again = post(client, "/sentry/ui/issue-link/create", issue_link_body({"title": "Cart broken"}))

    assert first.status_code == 200, first.get_json()
    answer = first.get_json()
    assert set(answer) == {"webUrl", "project", "identifier"}
    assert all(isinstance(value, str) for value in answer.values())
    assert answer["project"] == "payments"
    assert answer["webUrl"].endswith(f"/incidents/{answer['identifier']}")
    assert again.get_json()["identifier"] == answer["identifier"]
    with bridge.database.transaction() as session:
        incident = session.get(Incident, int(answer["identifier"]))
        assert incident is not None
        assert (incident.title, incident.dedup_key, incident.sentry_issue_id) == (
            "Cart broken",
            "sentry-4512345678",
            "4512345678",
        )
        assert incident.sentry_issue_url == "https://acme-gmbh.sentry.io/issues/4512345678/"
        assert session.query(SentryJob).filter_by(kind="enrich").count() == 1


def test_issue_link_link_attaches_the_issue_to_an_existing_incident(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    connect(bridge, hook)
    created = post(client, "/sentry/ui/issue-link/create", issue_link_body({})).get_json()

    linked = post(
        client,
        "/sentry/ui/issue-link/link",
        issue_link_body({"incident": f"#{created['identifier']}"}),
    )
    missing = post(client, "/sentry/ui/issue-link/link", issue_link_body({"incident": "999999"}))

    assert linked.status_code == 200
    assert linked.get_json()["identifier"] == created["identifier"]
    assert missing.status_code == 400


def test_select_options_list_services_and_open_incidents(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    connect(bridge, hook)
    connect_other(bridge, "Search", "acme-gmbh", None)  # the same org, a second service
    created = post(client, "/sentry/ui/issue-link/create", issue_link_body({"title": "Cart"}))

    services = get(client, "/sentry/ui/options/services", {"installationId": INSTALLATION})
    filtered = get(
        client, "/sentry/ui/options/services", {"installationId": INSTALLATION, "query": "sea"}
    )
    incidents = get(client, "/sentry/ui/options/incidents", {"installationId": INSTALLATION})

    assert services.status_code == 200
    assert services.get_json() == [
        {"label": "Payments", "value": "payments"},
        {"label": "Search", "value": "search"},
    ]
    assert filtered.get_json() == [{"label": "Search", "value": "search"}]
    identifier = created.get_json()["identifier"]
    assert incidents.get_json() == [{"label": f"#{identifier} Cart", "value": identifier}]


# ---------------------------------------------------------------- boundaries (issue 13)


def test_an_organisation_cannot_choose_or_see_another_organisations_services(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    connect(bridge, hook)
    billing = connect_other(bridge, "Billing", "other-org", OTHER_INSTALLATION)
    other_body = issue_link_body({"title": "Theirs", "service": billing})
    other_body["installationId"] = OTHER_INSTALLATION
    theirs = post(client, "/sentry/ui/issue-link/create", other_body).get_json()["identifier"]

    rule = post(
        client,
        "/sentry/ui/alert-rule-action",
        {"fields": [{"name": "service", "value": billing}], "installationId": INSTALLATION},
    )
    services = get(client, "/sentry/ui/options/services", {"installationId": INSTALLATION})
    incidents = get(client, "/sentry/ui/options/incidents", {"installationId": INSTALLATION})
    linked = post(client, "/sentry/ui/issue-link/link", issue_link_body({"incident": theirs}))
    created = post(
        client, "/sentry/ui/issue-link/create", issue_link_body({"title": "x", "service": billing})
    )

    assert rule.status_code == 400
    assert services.get_json() == [{"label": "Payments", "value": "payments"}]
    assert incidents.get_json() == []
    assert linked.status_code == 400
    assert "for this organisation" in linked.get_json()["message"]
    assert created.status_code == 400
    with bridge.database.transaction() as session:
        incident = session.get(Incident, int(theirs))
        assert incident is not None and incident.sentry_issue_id == "4512345678"
        assert session.query(Incident).count() == 1


def test_select_options_need_an_installation_the_bridge_knows(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    connect(bridge, hook)

    for query in ({}, {"installationId": "no-such-installation"}, {"installationId": "a\x00"}):
        for kind in ("services", "incidents"):
            answer = get(client, f"/sentry/ui/options/{kind}", query)
            assert answer.status_code == 400, (kind, query)
            assert "installationId" in answer.get_json()["message"]


def test_no_typed_incident_number_gives_a_500(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    connect(bridge, hook)
    typed = ["²", "١٢", "99999999999999999999", "#-1", "0", "1e3", " 7 ", "\x00"]

    for text in typed:
        linked = post(client, "/sentry/ui/issue-link/link", issue_link_body({"incident": text}))
        options = get(
            client, "/sentry/ui/options/incidents", {"installationId": INSTALLATION, "query": text}
        )
        assert linked.status_code == 400, text
        assert options.status_code == 200, text
    huge_issue = issue_link_body({})
    huge_issue["issueId"] = "9" * 20_000
    assert post(client, "/sentry/ui/issue-link/create", huge_issue).status_code == 400
    long_names = issue_link_body({"title": "t"})
    long_names["project"] = {"slug": "p" * 5000}
    long_names["actor"] = {"name": "n" * 5000}
    assert post(client, "/sentry/ui/issue-link/create", long_names).status_code == 200


def test_an_incident_created_from_sentry_pages_the_services_channels(
    client: FlaskClient, bridge: Bridge, hook: MadeIntegration
) -> None:
    from tests.support.notify import make_channel, outbox

    connect(bridge, hook)
    with bridge.database.transaction() as session:
        [service] = catalog.list_services(session)
        name = service.name
    make_channel(bridge, name)

    first = post(client, "/sentry/ui/issue-link/create", issue_link_body({"title": "Cart broken"}))
    post(client, "/sentry/ui/issue-link/create", issue_link_body({"title": "Cart broken"}))

    assert [(n.type, n.incident_id) for n in outbox(bridge)] == [
        ("incident.triggered", int(first.get_json()["identifier"]))
    ]
