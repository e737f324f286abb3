"""The bridge wired to a fake Sentry on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app import create_app
from app.extensions import Bridge
from app.jobs.sentry import run_sentry_outbox
from app.services import catalog
from app.services.accounts import Role, create_token, create_user
from app.services.sentry_gateway import SentryGateway
from app.store import queries
from app.store.models import Base, User
from config.settings import Settings
from tests.fakes.sentry_server import (
    APP_UUID,
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSentry,
    start_fake_sentry,
)

APP_SLUG = "sentry-incident-bridge-4f1a2b"


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeSentry]:
    running = start_fake_sentry()
    yield running.state
    running.stop()


@pytest.fixture
def fake(fake_server: FakeSentry) -> Iterator[FakeSentry]:
    fake_server.reset()
    yield fake_server
    fake_server.reset()


@pytest.fixture(scope="session")
def sentry_app(settings: Settings, fake_server: FakeSentry) -> Iterator[Flask]:
    application = create_app(
        replace(
            settings,
            sentry_base_url=fake_server.base_url,
            sentry_client_id=CLIENT_ID,
            sentry_client_secret=CLIENT_SECRET,
            sentry_app_slug=APP_SLUG,
            sentry_app_uuid=APP_UUID,
            sentry_timeout_seconds=5,
            sentry_max_wait_seconds=5,
            sentry_job_max_attempts=3,
        )
    )
    yield application
    application.extensions["bridge"].database.dispose()


@pytest.fixture
def waits(sentry_app: Flask) -> list[float]:
    """Every wait the Sentry client asks for (429, backoff), recorded instead of slept."""
    recorded: list[float] = []
    sentry_app.extensions["bridge"].sentry_gateway.client.sleep = recorded.append
    return recorded


@pytest.fixture
def sbridge(sentry_app: Flask, fake: FakeSentry, waits: list[float]) -> Iterator[Bridge]:
    found: Bridge = sentry_app.extensions["bridge"]
    yield found
    with found.database.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())


@pytest.fixture
def gateway(sentry_app: Flask, sbridge: Bridge) -> SentryGateway:
    found: SentryGateway = sentry_app.extensions["bridge"].sentry_gateway
    return found


@pytest.fixture
def web(sentry_app: Flask, sbridge: Bridge) -> FlaskClient:
    return sentry_app.test_client()


@dataclass(frozen=True)
class Person:
    id: int
    token: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture
def make_person(sbridge: Bridge) -> Callable[..., Person]:
    def make(email: str = "admin@example.com", role: Role = Role.ADMIN) -> Person:
        now = datetime.now(UTC)
        with sbridge.database.transaction() as session:
            user: User = create_user(session, email, "correct horse battery staple", role, now)
            issued = create_token(session, email, "test", now)
            return Person(user.id, issued.token)

    return make


@pytest.fixture
def admin_person(make_person: Callable[..., Person]) -> Person:
    return make_person()


@dataclass(frozen=True)
class Hook:
    id: str
    secret: str

    @property
    def url(self) -> str:
        return f"/api/integrations/sentry?integrationId={self.id}"


@pytest.fixture
def hook(sbridge: Bridge) -> Hook:
    """A bridge integration signed with the public app's client secret, as Sentry signs."""
    now = datetime.now(UTC)
    with sbridge.database.transaction() as session:
        service = queries.get_service_by_name(session, "Payments") or catalog.create_service(
            session, "Payments", now
        )
        created = catalog.create_integration(
            session, sbridge.secrets, service, now, secret=CLIENT_SECRET
        )
        return Hook(created.integration.id, CLIENT_SECRET)


@pytest.fixture
def run_jobs(sbridge: Bridge, gateway: SentryGateway) -> Callable[[], int]:
    return lambda: run_sentry_outbox(sbridge, gateway)
