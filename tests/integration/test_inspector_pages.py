"""The delivery inspector names integrations and services; the integration pages show the
webhook URL the running server answers on, and say when Sentry's cloud cannot reach it."""

from __future__ import annotations

import html
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from flask.testing import FlaskClient

from app.extensions import Bridge
from app.served_url import LISTEN_FILE, record_listening
from app.services import catalog
from app.services.accounts import Role, create_user
from config.settings import Settings
from tests.support.payloads import build

PASSWORD = "correct horse battery staple"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@pytest.fixture
def admin_client(client: FlaskClient, bridge: Bridge) -> FlaskClient:
    with bridge.database.transaction() as session:
        create_user(session, "admin@example.com", PASSWORD, Role.ADMIN, datetime.now(UTC))
    page = client.get("/login").get_data(as_text=True)
    match = CSRF.search(page)
    assert match
    answer = client.post(
        "/login",
        data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": match.group(1)},
    )
    assert answer.status_code in {302, 303}
    return client


def two_same_named(bridge: Bridge) -> tuple[str, str]:
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        checkout = catalog.create_service(session, "Checkout", now)
        payments = catalog.create_service(session, "Payments", now)
        one = catalog.create_integration(session, bridge.secrets, checkout, now, name="Sentry")
        two = catalog.create_integration(session, bridge.secrets, payments, now, name="Sentry")
        return one.integration.id, two.integration.id


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))


# ---------------------------------------------------------------- inspector


def test_delivery_list_names_integration_and_service_and_the_filter_tells_them_apart(
    admin_client: FlaskClient, bridge: Bridge
) -> None:
    one, two = two_same_named(bridge)
    d = build("integration_issue_created")
    admin_client.post(
        f"/api/integrations/sentry?integrationId={two}", data=d.body, headers=d.headers
    )

    page = admin_client.get("/admin/deliveries").get_data(as_text=True)

    options = re.findall(r'<option value="([^"]+)"[^>]*>([^<]+)</option>', page)
    labels = {value: html.unescape(label) for value, label in options}
    assert labels[one] == f"Sentry — Checkout ({one[:6]}…)"
    assert labels[two] == f"Sentry — Payments ({two[:6]}…)"
    [row] = re.findall(r'<td data-label="Integration">(.*?)</td>', page, re.DOTALL)
    assert "Sentry" in text_of(row) and "Payments" in text_of(row) and two[:6] in row
    # The whole id is a credential of an unsigned integration: never in the row itself.
    assert two not in row


def test_delivery_detail_names_integration_and_service(
    admin_client: FlaskClient, bridge: Bridge
) -> None:
    _one, two = two_same_named(bridge)
    d = build("integration_issue_created")
    url = f"/api/integrations/sentry?integrationId={two}"
    delivery_id = admin_client.post(url, data=d.body, headers=d.headers).get_json()["delivery_id"]

    page = admin_client.get(f"/admin/deliveries/{delivery_id}").get_data(as_text=True)

    facts = text_of(page)
    assert "Integration Sentry" in facts
    assert "Service Payments" in facts
    assert 'class="facts delivery-facts"' in page
    assert 'class="actions replay"' in page


# ---------------------------------------------------------------- webhook URLs


@pytest.fixture
def listening_on_8081(settings: Settings) -> Iterator[None]:
    """As if gunicorn had started on port 8081 with this instance folder."""
    record_listening(settings.instance_path, [("127.0.0.1", 8081)], os.getpid())
    yield
    (settings.instance_path / LISTEN_FILE).unlink()


@pytest.mark.usefixtures("listening_on_8081")
def test_the_integrations_page_shows_the_servers_address_and_the_loopback_note(
    admin_client: FlaskClient, bridge: Bridge
) -> None:
    one, _two = two_same_named(bridge)

    page = admin_client.get("/admin/integrations").get_data(as_text=True)

    assert f'value="http://127.0.0.1:8081/api/integrations/sentry?integrationId={one}"' in page
    note = text_of(page)
    assert "http://127.0.0.1:8081 is a loopback address" in note
    assert "Sentry's cloud cannot deliver to it" in note and "BRIDGE_PUBLIC_URL" in note


@pytest.mark.usefixtures("listening_on_8081")
def test_the_created_page_shows_the_same_url_as_the_api(
    admin_client: FlaskClient, bridge: Bridge
) -> None:
    with bridge.database.transaction() as session:
        service_id = catalog.create_service(session, "Checkout", datetime.now(UTC)).id
    form = admin_client.get("/admin/integrations").get_data(as_text=True)
    token = CSRF.search(form)
    assert token

    page = admin_client.post(
        "/admin/integrations",
        data={"service_id": str(service_id), "secret_mode": "none", "csrf_token": token.group(1)},
    ).get_data(as_text=True)

    [shown] = re.findall(r'id="webhook-url" readonly value="([^"]+)"', page)
    assert shown.startswith("http://127.0.0.1:8081/api/integrations/sentry?integrationId=")
    assert "loopback address" in page


def test_with_a_public_url_there_is_no_loopback_note(
    client: FlaskClient, bridge: Bridge, settings: Settings
) -> None:
    from dataclasses import replace

    from app import create_app

    public = create_app(replace(settings, public_base_url="https://bridge.example.com"))
    try:
        web = public.test_client()
        with bridge.database.transaction() as session:
            create_user(session, "admin@example.com", PASSWORD, Role.ADMIN, datetime.now(UTC))
        token = CSRF.search(web.get("/login").get_data(as_text=True))
        assert token
        web.post(
            "/login",
            data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token.group(1)},
        )
        one, _two = two_same_named(bridge)

        page = web.get("/admin/integrations").get_data(as_text=True)
    finally:
        public.extensions["bridge"].database.dispose()

    assert f'value="https://bridge.example.com/api/integrations/sentry?integrationId={one}"' in page
    assert "loopback" not in page


def test_a_pasted_secret_is_not_shown_back_on_the_page_a_generated_one_once(
    admin_client: FlaskClient, bridge: Bridge
) -> None:
    with bridge.database.transaction() as session:
        service_id = catalog.create_service(session, "Checkout", datetime.now(UTC)).id
    token = CSRF.search(admin_client.get("/admin/integrations").get_data(as_text=True))
    assert token
    form = {"service_id": str(service_id), "csrf_token": token.group(1)}

    pasted = admin_client.post(
        "/admin/integrations", data={**form, "secret_mode": "paste", "secret": "pasted-on-page"}
    ).get_data(as_text=True)
    generated = admin_client.post(
        "/admin/integrations", data={**form, "secret_mode": "generate"}
    ).get_data(as_text=True)

    assert "pasted-on-page" not in pasted
    assert "stored encrypted and is not shown again" in pasted
    assert re.search(r'id="secret" readonly value="[0-9a-f]{64}"', generated)
