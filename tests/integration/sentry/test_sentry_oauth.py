"""Connecting Sentry organisations through HTTP, against the fake Sentry on loopback."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlparse

from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import TestResponse

from app.extensions import Bridge
from app.jobs.sentry import run_token_refresh
from app.services.accounts import Role
from app.services.sentry_gateway import SentryGateway
from app.store.models import SentryInstallation, SentryJob
from tests.fakes.sentry_server import FakeInstallation, FakeSentry
from tests.support.integrations import MadeIntegration
from tests.support.payloads import build, load
from tests.support.sentry import APP_SLUG, Person

API = "/api/v2/integrations/sentry"


def initiate(client: FlaskClient, person: Person, **body: Any) -> str:
    response = client.post(f"{API}/initiate", json=body, headers=person.headers)
    assert response.status_code == 201, response.get_json()
    document = response.get_json()
    assert document["success"] is True and document["error"] is None
    url = urlparse(document["data"]["install_url"])
    assert url.path == f"/sentry-apps/{APP_SLUG}/external-install/"
    state: str = parse_qs(url.query)["state"][0]
    assert state == document["data"]["state"]
    return state


def redirect(client: FlaskClient, installed: FakeInstallation, state: str | None) -> TestResponse:
    query: dict[str, str] = {
        "code": installed.code or "",
        "installationId": installed.uuid,
        "orgSlug": installed.org_slug,
    }
    if state is not None:
        query["state"] = state
    return client.get(f"{API}/oauth/callback", query_string=query)


def installation_webhook(
    client: FlaskClient, hook: MadeIntegration, installed: FakeInstallation, action: str = "created"
) -> TestResponse:
    resource, payload = load(f"integration_installation_{action}")
    payload["installation"]["uuid"] = installed.uuid
    payload["data"]["installation"]["uuid"] = installed.uuid
    payload["data"]["installation"]["organization"]["slug"] = installed.org_slug
    if action == "created":
        payload["data"]["installation"]["code"] = installed.code
    delivery = build(payload, resource=resource, secret=hook.secret)
    return client.post(hook.url, data=delivery.body, headers=delivery.headers)


def installation(bridge: Bridge, uuid: str) -> SentryInstallation:
    with bridge.database.transaction() as session:
        found = session.scalar(select(SentryInstallation).where(SentryInstallation.uuid == uuid))
        assert found is not None
        return found


def test_setup_redirect_exchanges_the_code_verifies_and_stores_tokens_encrypted(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    admin_person: Person,
    hook: MadeIntegration,
) -> None:
    state = initiate(client, admin_person, integration_id=hook.id)
    installed = fake.install("acme-gmbh")

    response = redirect(client, installed, state)

    assert response.status_code == 200, response.get_json()
    document = response.get_json()
    assert document["success"] is True
    assert document["data"]["status"] == "installed"
    assert document["data"]["outcome"] == "exchanged"
    assert document["data"]["org_slug"] == "acme-gmbh"
    assert fake.installations[installed.uuid].status == "installed"
    stored = installation(bridge, installed.uuid)
    assert stored.integration_id == hook.id and stored.user_id == admin_person.id
    [token] = list(fake.tokens)
    [refresh] = list(fake.refresh_tokens)
    assert stored.token_ciphertext and token not in stored.token_ciphertext
    assert stored.refresh_token_ciphertext and refresh not in stored.refresh_token_ciphertext
    assert bridge.secrets.decrypt(stored.token_ciphertext) == token
    assert bridge.secrets.decrypt(stored.refresh_token_ciphertext) == refresh
    assert stored.expires_at is not None and stored.expires_at > datetime.now(UTC)
    assert token not in response.get_data(as_text=True)
    verify = fake.calls("PUT", rf"^/api/0/sentry-app-installations/{installed.uuid}/$")
    assert verify[0].body == {"status": "installed"}
    assert verify[0].authorization == f"Bearer {token}"


def test_the_webhook_after_the_redirect_does_not_exchange_the_code_again(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    admin_person: Person,
    hook: MadeIntegration,
    run_jobs: Callable[[], int],
) -> None:
    installed = fake.install()
    assert redirect(client, installed, initiate(client, admin_person)).status_code == 200

    answered = installation_webhook(client, hook, installed)
    assert answered.status_code == 202
    assert run_jobs() == 1

    exchanges = fake.calls("POST", "/authorizations/$")
    assert len(exchanges) == 1
    with bridge.database.transaction() as session:
        job = session.scalars(select(SentryJob)).one()
        assert (job.kind, job.status, job.last_error) == (
            "exchange_grant",
            "done",
            "installation already_installed",
        )
    assert installation(bridge, installed.uuid).status == "installed"


def test_the_webhook_alone_installs_and_a_later_redirect_is_harmless(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    admin_person: Person,
    hook: MadeIntegration,
    run_jobs: Callable[[], int],
) -> None:
    installed = fake.install()

    answered = installation_webhook(client, hook, installed)
    # Answered before any call to Sentry: the exchange is a job for the jobs process.
    assert answered.status_code == 202
    assert "queued" in answered.get_json()["reason"]
    assert fake.calls("POST", "/authorizations/$") == []
    assert run_jobs() == 1
    stored = installation(bridge, installed.uuid)
    assert (stored.status, stored.integration_id, stored.org_slug) == (
        "installed",
        hook.id,
        "acme-gmbh",
    )
    # The code inside the job row was kept encrypted.
    with bridge.database.transaction() as session:
        job = session.scalars(select(SentryJob)).one()
        assert installed.code not in str(job.payload)

    again = redirect(client, installed, initiate(client, admin_person))

    assert again.status_code == 200
    assert again.get_json()["data"]["outcome"] == "already_installed"
    assert len(fake.calls("POST", "/authorizations/$")) == 1


def test_a_refused_code_is_reported_and_nothing_is_stored(
    client: FlaskClient, bridge: Bridge, fake: FakeSentry, admin_person: Person
) -> None:
    installed = fake.install()
    fake.used_codes.add(installed.code or "")

    response = redirect(client, installed, initiate(client, admin_person))

    assert response.status_code == 400
    document = response.get_json()
    assert document["success"] is False and document["data"] is None
    assert document["error"]["code"] == "sentry_grant_rejected"
    assert installed.code not in response.get_data(as_text=True)
    stored = installation(bridge, installed.uuid)
    assert stored.token_ciphertext is None and stored.status == "pending"


def test_the_callback_refuses_a_missing_unknown_or_reused_state(
    client: FlaskClient, fake: FakeSentry, admin_person: Person
) -> None:
    installed = fake.install()

    missing = redirect(client, installed, None)
    unknown = redirect(client, installed, "not-a-state-we-gave")

    assert missing.status_code == unknown.status_code == 400
    assert missing.get_json()["error"]["code"] == "oauth_state_invalid"
    assert fake.calls("POST", "/authorizations/$") == []
    state = initiate(client, admin_person)
    assert redirect(client, installed, state).status_code == 200
    reused = redirect(client, installed, state)
    assert reused.status_code == 400
    assert reused.get_json()["error"]["code"] == "oauth_state_invalid"


def test_an_expired_state_is_refused(
    client: FlaskClient, bridge: Bridge, fake: FakeSentry, admin_person: Person
) -> None:
    from app.store.models import SentryOAuthState

    state = initiate(client, admin_person)
    with bridge.database.transaction() as session:
        for row in session.scalars(select(SentryOAuthState)):
            row.expires_at = datetime.now(UTC) - timedelta(seconds=1)

    response = redirect(client, fake.install(), state)

    assert response.status_code == 400
    assert fake.calls("POST", "/authorizations/$") == []


def test_installation_deleted_revokes_the_tokens(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    admin_person: Person,
    hook: MadeIntegration,
) -> None:
    installed = fake.install()
    state = initiate(client, admin_person, integration_id=hook.id)
    assert redirect(client, installed, state).status_code == 200

    answered = installation_webhook(client, hook, installed, action="deleted")

    assert answered.status_code == 202
    assert "revoked" in answered.get_json()["reason"]
    stored = installation(bridge, installed.uuid)
    assert stored.status == "revoked"
    assert stored.token_ciphertext is None and stored.refresh_token_ciphertext is None
    assert stored.revoked_at is not None


def test_installation_deleted_through_another_signed_integration_is_ignored(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    admin_person: Person,
    hook: MadeIntegration,
) -> None:
    # Another organisation's internal integration: its own secret, which that org knows,
    # signs an installation.deleted naming this org's installation.
    installed = fake.install()
    state = initiate(client, admin_person, integration_id=hook.id)
    assert redirect(client, installed, state).status_code == 200
    other = other_integration(bridge, secret="another-orgs-internal-secret")

    answered = installation_webhook(client, other, installed, action="deleted")

    assert answered.status_code == 202
    assert answered.get_json()["action"] == "ignored"
    assert "does not deliver through this integration" in answered.get_json()["reason"]
    stored = installation(bridge, installed.uuid)
    assert stored.status == "installed" and stored.token_ciphertext is not None


def test_installation_deleted_through_an_unsigned_integration_is_ignored(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    admin_person: Person,
    hook: MadeIntegration,
) -> None:
    installed = fake.install()
    state = initiate(client, admin_person, integration_id=hook.id)
    assert redirect(client, installed, state).status_code == 200
    unsigned = other_integration(bridge, secret=None)

    answered = installation_webhook(client, unsigned, installed, action="deleted")

    assert answered.get_json()["action"] == "ignored"
    assert "no signing secret" in answered.get_json()["reason"]
    assert installation(bridge, installed.uuid).status == "installed"


def other_integration(bridge: Bridge, secret: str | None) -> MadeIntegration:
    from app.services import catalog

    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        service = catalog.create_service(session, "Elsewhere", now)
        created = catalog.create_integration(session, bridge.secrets, service, now, secret=secret)
        return MadeIntegration(created.integration.id, "Elsewhere", secret or "")


def test_an_admin_stores_an_internal_token_that_never_expires(
    client: FlaskClient, bridge: Bridge, admin_person: Person, hook: MadeIntegration
) -> None:
    response = client.post(
        f"{API}/save",
        json={"org_slug": "acme-gmbh", "token": "sntrys_internal_abc", "integration_id": hook.id},
        headers=admin_person.headers,
    )

    assert response.status_code == 201, response.get_json()
    data = response.get_json()["data"]
    assert (data["kind"], data["status"], data["expires_at"]) == ("internal", "installed", None)
    assert data["has_token"] is True and data["has_refresh_token"] is False
    assert "sntrys_internal_abc" not in response.get_data(as_text=True)
    with bridge.database.transaction() as session:
        stored = session.get(SentryInstallation, data["id"])
        assert stored is not None and stored.token_ciphertext is not None
        assert bridge.secrets.decrypt(stored.token_ciphertext) == "sntrys_internal_abc"

    status = client.get(f"{API}/status/{admin_person.id}", headers=admin_person.headers)
    assert status.status_code == 200
    assert status.get_json()["data"]["connected"] is True
    assert "sntrys_internal_abc" not in status.get_data(as_text=True)

    revoked = client.delete(f"{API}/revoke/{admin_person.id}", headers=admin_person.headers)
    assert revoked.status_code == 200
    assert [r["status"] for r in revoked.get_json()["data"]["revoked"]] == ["revoked"]
    after = client.get(f"{API}/status/{admin_person.id}", headers=admin_person.headers).get_json()
    assert after["data"]["connected"] is False


def test_management_api_needs_a_token_and_the_right_person(
    client: FlaskClient, admin_person: Person, make_person: Callable[..., Person]
) -> None:
    responder = make_person("r@example.com", Role.RESPONDER)

    anonymous = client.post(f"{API}/initiate", json={})
    not_admin = client.post(
        f"{API}/save", json={"org_slug": "a", "token": "t"}, headers=responder.headers
    )
    someone_else = client.get(f"{API}/status/{admin_person.id}", headers=responder.headers)
    own = client.get(f"{API}/status/{responder.id}", headers=responder.headers)

    assert anonymous.status_code == 401
    assert anonymous.get_json()["success"] is False
    assert anonymous.headers["WWW-Authenticate"] == "Bearer"
    assert not_admin.status_code == 403
    assert someone_else.status_code == 403
    assert own.status_code == 200 and own.get_json()["data"]["installations"] == []


def test_save_refuses_missing_fields(client: FlaskClient, admin_person: Person) -> None:
    response = client.post(f"{API}/save", json={"org_slug": ""}, headers=admin_person.headers)

    assert response.status_code == 422
    assert set(response.get_json()["error"]["fields"]) == {"org_slug", "token"}


def test_scheduled_refresh_rotates_the_pair_and_stores_it_before_use(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    gateway: SentryGateway,
    admin_person: Person,
) -> None:
    fake.token_lifetime = timedelta(minutes=5)  # inside the 15-minute refresh margin
    installed = fake.install()
    assert redirect(client, installed, initiate(client, admin_person)).status_code == 200
    before = installation(bridge, installed.uuid)
    old_refresh = bridge.secrets.decrypt(before.refresh_token_ciphertext or "")
    fake.token_lifetime = timedelta(hours=8)

    assert run_token_refresh(bridge, gateway) == (1, 0)

    after = installation(bridge, installed.uuid)
    assert after.token_version == before.token_version + 1
    new_token = bridge.secrets.decrypt(after.token_ciphertext or "")
    new_refresh = bridge.secrets.decrypt(after.refresh_token_ciphertext or "")
    assert list(fake.tokens) == [new_token]  # the old token no longer works at Sentry
    assert list(fake.refresh_tokens) == [new_refresh] and new_refresh != old_refresh
    assert after.expires_at is not None and after.expires_at > datetime.now(UTC) + timedelta(
        hours=7
    )
    refreshes = [
        c
        for c in fake.calls("POST", "/authorizations/$")
        if c.body["grant_type"] == "refresh_token"
    ]
    assert len(refreshes) == 1 and refreshes[0].body["refresh_token"] == old_refresh
    # Nothing is due any more.
    assert run_token_refresh(bridge, gateway) == (0, 0)


def test_a_refused_refresh_token_is_recorded_without_losing_the_installation(
    client: FlaskClient,
    bridge: Bridge,
    fake: FakeSentry,
    gateway: SentryGateway,
    admin_person: Person,
) -> None:
    fake.token_lifetime = timedelta(minutes=5)
    installed = fake.install()
    assert redirect(client, installed, initiate(client, admin_person)).status_code == 200
    fake.refresh_tokens.clear()  # Sentry no longer knows our refresh token

    assert run_token_refresh(bridge, gateway) == (0, 1)

    stored = installation(bridge, installed.uuid)
    assert stored.status == "installed"
    assert stored.last_error is not None and "reconnect" in stored.last_error
