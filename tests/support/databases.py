"""Databases and settings as the tests make them (the fixtures are in tests/conftest.py)."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy.engine import make_url

from config.settings import Settings

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def with_search_path(url: str, schema: str) -> str:
    return (
        make_url(url)
        .update_query_dict({"options": f"-csearch_path={schema}"})
        .render_as_string(hide_password=False)
    )


def make_settings(
    database_url: str, instance_path: Path, key: str, **overrides: object
) -> Settings:
    values: dict[str, object] = {
        "database_url": database_url,
        "instance_path": instance_path,
        "encryption_keys": (key,),
        "log_level": "WARNING",
        # Admission control off (room for every test's concurrent deliveries) and a patient
        # sender: on a loaded 2-core machine a delivery of an in-process test may take
        # longer than Sentry's second, and would be spooled, which is not what most tests
        # are about. The tests of it (tests/integration/test_admission.py) install their own.
        "apply_concurrency": 64,
        "admission_wait_ms": 10_000,
        "sender_deadline_ms": 30_000,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def cli_env(database_url: str, key: str, instance_path: Path, **extra: str) -> dict[str, str]:
    """The environment a `bridge` command run through click's CliRunner gets in the
    integration tests: the test's database, key and instance folder, a public URL."""
    return {
        "DATABASE_URL": database_url,
        "BRIDGE_ENCRYPTION_KEYS": key,
        "BRIDGE_INSTANCE_PATH": str(instance_path),
        "BRIDGE_PUBLIC_URL": "https://bridge.example.com",
        **extra,
    }
