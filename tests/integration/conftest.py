"""Fixtures shared by the integration tests beyond those of tests/conftest.py."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask import Flask

from app import create_app
from tests.support.databases import make_settings


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
