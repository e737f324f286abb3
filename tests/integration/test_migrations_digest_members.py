"""Migration 0014 (digest_members) on SQLite and PostgreSQL: a digest still waiting when
it runs gets the incidents its window suppressed; one already counted stays as it was;
the downgrade takes the table away again."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, inspect, text

from app.store.database import make_engine
from app.store.migrate import alembic_config, upgrade
from tests.support.databases import POSTGRES_URL, with_search_path

BEFORE = "0011_i17b_job_runs"
WINDOW = {"window_start": "2026-01-01T10:00:00+00:00", "window_end": "2026-01-01T10:05:00+00:00"}


@pytest.fixture(params=["sqlite", "postgres"])
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of its own with no tables yet."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'old.db'}"
        return
    request.getfixturevalue("postgres_url")  # skips (or fails under CI) without a server
    schema = f"bridge_migration_{uuid.uuid4().hex[:12]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    try:
        yield with_search_path(POSTGRES_URL, schema)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _insert(connection: object, sql: str, **values: object) -> None:
    connection.execute(text(sql), values)  # type: ignore[attr-defined]


def _digest(connection: object, digest_id: str, **document: object) -> None:
    _insert(
        connection,
        "INSERT INTO notifications (id, channel_id, type, document, status, attempts,"
        " next_attempt_at, created_at) VALUES (:id, 1, 'incidents.digest', :document,"
        " 'queued', 0, :at, :at)",
        id=digest_id,
        document=json.dumps({"service": {"id": 1, "name": "s"}, **WINDOW, **document}),
        at="2026-01-01 10:05:00",
    )


def test_the_migration_gives_a_waiting_digest_the_incidents_its_window_held_back(
    empty_url: str,
) -> None:
    upgrade(empty_url, BEFORE)
    engine = make_engine(empty_url)
    is_postgresql = engine.dialect.name == "postgresql"
    with engine.begin() as connection:
        _insert(
            connection,
            "INSERT INTO services (id, name, slug, reopen_window_minutes, created_at,"
            " storm_threshold, storm_window_minutes, page_min_severity)"
            " VALUES (1, 's', 's', 60, '2026-01-01 00:00:00', 10, 5, 'error')",
        )
        _insert(
            connection,
            "INSERT INTO notification_channels (id, service_id, kind, name, enabled,"
            " min_severity, events, config_ciphertext, masked, created_at)"
            " VALUES (1, 1, 'webhook', 'w', true, 'error', 'triggered', 'x', 'm', '2026-01-01')",
        )
        # Before the window, in it (one of them sent alone), at its end.
        for incident_id, minute in ((1, "09:59"), (2, "10:00"), (3, "10:02"), (4, "10:05")):
            _insert(
                connection,
                "INSERT INTO incidents (id, service_id, dedup_key, title, source, severity,"
                " status, event_count, first_event_at, last_event_at, triggered_at,"
                " last_transition_at, reopen_count, created_at, updated_at)"
                " VALUES (:id, 1, :key, 't', 'Sentry', 'error', 'triggered', 1,"
                " :at, :at, :at, :at, 0, :at, :at)",
                id=incident_id,
                key=f"sentry-{incident_id}",
                # UTC: PostgreSQL would read a bare time in its session's time zone.
                at=f"2026-01-01 {minute}:30" + ("+00" if is_postgresql else ""),
            )
        _insert(
            connection,
            "INSERT INTO notifications (id, channel_id, incident_id, type, document, status,"
            " attempts, next_attempt_at, created_at) VALUES ('alone', 1, 3,"
            " 'incident.triggered', '{}', 'sent', 1, '2026-01-01', '2026-01-01')",
        )
        _digest(connection, "waiting")
        _digest(connection, "counted", count=7, incidents=[])
    engine.dispose()

    upgrade(empty_url)

    engine = make_engine(empty_url)
    with engine.connect() as connection:
        found = connection.execute(
            text("SELECT notification_id, incident_id FROM digest_members")
        ).all()
    engine.dispose()
    assert [tuple(row) for row in found] == [("waiting", 2)]

    command.downgrade(alembic_config(empty_url), BEFORE)
    engine = make_engine(empty_url)
    try:
        assert "digest_members" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()
