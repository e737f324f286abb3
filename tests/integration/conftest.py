"""Fixtures shared by the integration tests beyond those of tests/conftest.py."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from app.extensions import Bridge
from app.services.accounts import Role, create_user
from tests.support.databases import make_settings
from tests.support.pages import PASSWORD


@pytest.fixture
def unreachable_app(tmp_path: Path, encryption_key: str) -> Flask:
    """The app pointed at a database that does not answer (nothing listens on port 9)."""
    return create_app(
        make_settings(
            "postgresql+psycopg://postgres@127.0.0.1:9/none",
            tmp_path,
            encryption_key,
            database_connect_timeout_seconds=1,
        )
    )


@pytest.fixture
def people(bridge: Bridge) -> None:
    """An admin and a responder who can log in (tests/support/pages.py's password)."""
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, "admin@example.com", PASSWORD, Role.ADMIN, now)
        create_user(session, "oncall@example.com", PASSWORD, Role.RESPONDER, now)
