"""The bridge wired to a fake Sentry on loopback, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime

import pytest
from flask import Flask

from app import create_app
from app.extensions import Bridge
from app.jobs.sentry import run_sentry_outbox
from app.services.accounts import Role, create_token, create_user
from app.services.sentry_gateway import SentryGateway
from app.store.models import User
from config.settings import Settings
from tests.fakes.sentry_server import (
    APP_UUID,
    CLIENT_ID,
    CLIENT_SECRET,
    FakeSentry,
    start_fake_sentry,
)
from tests.support.integrations import MadeIntegration
from tests.support.sentry import APP_SLUG, Person


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
def app(settings: Settings, fake_server: FakeSentry) -> Iterator[Flask]:
    """tests/conftest.py's app, wired to the fake Sentry (the fixtures built on it follow)."""
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
def waits(app: Flask) -> list[float]:
    """Every wait the Sentry client asks for (429, backoff), recorded instead of slept."""
    recorded: list[float] = []
    app.extensions["bridge"].sentry_gateway.client.sleep = recorded.append
    return recorded


@pytest.fixture
def bridge(bridge: Bridge, fake: FakeSentry, waits: list[float]) -> Bridge:
    """tests/conftest.py's (tables emptied after the test) of the app wired to the fake,
    with the fake reset and the client's waits recorded."""
    return bridge


@pytest.fixture
def gateway(app: Flask, bridge: Bridge) -> SentryGateway:
    found: SentryGateway = app.extensions["bridge"].sentry_gateway
    return found


@pytest.fixture
def make_person(bridge: Bridge) -> Callable[..., Person]:
    def make(email: str = "admin@example.com", role: Role = Role.ADMIN) -> Person:
        now = datetime.now(UTC)
        with bridge.database.transaction() as session:
            user: User = create_user(session, email, "correct horse battery staple", role, now)
            issued = create_token(session, email, "test", now)
            return Person(user.id, issued.token)

    return make


@pytest.fixture
def admin_person(make_person: Callable[..., Person]) -> Person:
    return make_person()


@pytest.fixture
def hook(make_integration: Callable[..., MadeIntegration]) -> MadeIntegration:
    """A bridge integration signed with the public app's client secret, as Sentry signs."""
    return make_integration(secret=CLIENT_SECRET)


@pytest.fixture
def run_jobs(bridge: Bridge, gateway: SentryGateway) -> Callable[[], int]:
    return lambda: run_sentry_outbox(bridge, gateway)
