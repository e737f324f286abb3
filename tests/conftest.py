"""Shared fixtures: the database tests run on SQLite and on PostgreSQL.

PostgreSQL comes from TEST_POSTGRES_URL (default: the machine's local server, database
`test`). Each test session gets a schema of its own there. Without CI=true a missing
server skips the PostgreSQL half; under CI=true it is a failure. Redis (TEST_REDIS_URL,
default the local server) is the same: a skip, or under CI=true a failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime

import pytest
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app import create_app
from app.extensions import Bridge
from app.services import catalog
from app.store import queries
from app.store.database import Database
from app.store.migrate import upgrade
from app.store.models import Base
from config.settings import Settings
from tests.support.databases import POSTGRES_URL, make_settings, with_search_path
from tests.support.integrations import MadeIntegration

IS_CI = os.environ.get("CI", "").lower() == "true"
# Redis for the shared rate limits (BRIDGE_RATE_LIMIT_URL): required under CI=true too.
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")

# A property holds or not however long an example takes: no per-example deadline (200 ms by
# default) nor a too-slow health check, which a test on the other core (make test runs two
# processes) or a busy host would trip. Tests' own @settings start from this profile.
hypothesis_settings.register_profile(
    "bridge", deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
hypothesis_settings.load_profile("bridge")


def _postgres_problem() -> str | None:
    engine = create_engine(POSTGRES_URL, connect_args={"connect_timeout": 3})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as error:
        return f"PostgreSQL at {make_url(POSTGRES_URL).render_as_string()} is unreachable: {error}"
    finally:
        engine.dispose()
    return None


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A freshly migrated schema of its own on the PostgreSQL server."""
    problem = _postgres_problem()
    if problem is not None:
        if IS_CI:
            pytest.fail(f"{problem} (CI=true: PostgreSQL is required)")
        pytest.skip(problem)
    schema = f"bridge_test_{uuid.uuid4().hex[:12]}"
    admin_engine = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin_engine.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = with_search_path(POSTGRES_URL, schema)
    try:
        upgrade(url)
        yield url
    finally:
        with admin_engine.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin_engine.dispose()


def _redis_problem() -> str | None:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=3, socket_timeout=3)
    try:
        client.ping()
    except Exception as error:
        return f"Redis at {REDIS_URL} is unreachable: {error}"
    finally:
        client.close()
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis server; missing, a skip (a failure under CI=true, like PostgreSQL)."""
    problem = _redis_problem()
    if problem is not None:
        if IS_CI:
            pytest.fail(f"{problem} (CI=true: Redis is required)")
        pytest.skip(problem)
    return REDIS_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own in Redis; its keys are deleted afterwards."""
    import redis

    prefix = f"bridge-test-{uuid.uuid4().hex[:12]}"
    yield prefix
    client = redis.Redis.from_url(redis_url)
    try:
        for key in client.scan_iter(match=f"{prefix}:*", count=500):
            client.delete(key)
    finally:
        client.close()


@pytest.fixture(scope="session")
def sqlite_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'bridge.db'}"
    upgrade(url)
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> str:
    url = request.getfixturevalue(f"{request.param}_url")
    assert isinstance(url, str)
    return url


@pytest.fixture(scope="session")
def encryption_key() -> str:
    return Fernet.generate_key().decode("ascii")


@pytest.fixture(scope="session")
def settings(
    database_url: str, tmp_path_factory: pytest.TempPathFactory, encryption_key: str
) -> Settings:
    return make_settings(
        database_url,
        tmp_path_factory.mktemp("instance"),
        encryption_key,
        max_body_bytes=64 * 1024,
        secret_grace_seconds=3600,
    )


@pytest.fixture(scope="session")
def app(settings: Settings) -> Iterator[Flask]:
    application = create_app(settings)
    yield application
    application.extensions["bridge"].database.dispose()


@pytest.fixture
def bridge(app: Flask) -> Iterator[Bridge]:
    """The app's collaborators, with every table and the spool emptied after the test."""
    found: Bridge = app.extensions["bridge"]
    yield found
    with found.database.transaction() as session:
        for table in reversed(Base.metadata.sorted_tables):
            session.execute(table.delete())
    # A delivery spooled on a loaded host (past its deadline) must not be the next test's:
    # /readyz and the drain tests count what the spool holds.
    for path in found.spool.pending():
        found.spool.remove(path)


@pytest.fixture
def database(bridge: Bridge) -> Database:
    return bridge.database


@pytest.fixture
def client(app: Flask, bridge: Bridge) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def make_integration(bridge: Bridge) -> Callable[..., MadeIntegration]:
    """Create a service (if new) and an integration of it; returns its id and secret."""

    def make(
        service: str = "Payments", secret: str | None = None, reopen_window_minutes: int = 30
    ) -> MadeIntegration:
        now = datetime.now(UTC)
        with bridge.database.transaction() as session:
            existing = queries.get_service_by_name(session, service)
            target = existing or catalog.create_service(
                session, service, now, reopen_window_minutes
            )
            created = catalog.create_integration(
                session, bridge.secrets, target, now, secret=secret
            )
            return MadeIntegration(created.integration.id, target.name, created.secret)

    return make
