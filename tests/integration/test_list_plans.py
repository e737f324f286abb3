"""On PostgreSQL the incident list's usual queries read an index in order: no sort step.

A million incidents make a sort of the filtered set the slow part of a page; these plans
prove the indexes match the keyset queries (the benchmarks measure the speed itself).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy import create_engine, event, text

from app.services.incidents import IncidentFilters, encode_cursor, list_incidents
from app.store.database import Database
from app.store.migrate import upgrade
from tests.support.databases import POSTGRES_URL, with_search_path


@pytest.fixture(scope="module")
def postgres(postgres_url: str) -> Iterator[Database]:
    """A schema of its own, migrated and empty: other tests' rows and the statistics
    they leave would make the planner's choice depend on test order."""
    schema = f"bridge_plans_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = with_search_path(POSTGRES_URL, schema)
    upgrade(url)
    database = Database(url)
    try:
        yield database
    finally:
        database.dispose()
        with admin.connect() as connection:
            connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        admin.dispose()


def _nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from _nodes(child)


def plan_of_list(database: Database, filters: IncidentFilters, cursor: str | None) -> list[str]:
    """The node types PostgreSQL would run for list_incidents' main query."""
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM incidents" in statement:
            captured.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        with database.transaction() as session:
            list_incidents(session, filters, 50, cursor)
    finally:
        event.remove(database.engine, "before_cursor_execute", capture)
    statement, parameters = captured[0]
    with database.engine.connect() as connection:
        # The test tables hold a handful of rows, where any plan is cheap; forbidding the
        # table-wide scans asks whether an index can serve the order, not which is cheaper.
        connection.execute(text("SET enable_seqscan = off"))
        connection.execute(text("SET enable_bitmapscan = off"))
        raw = connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {statement}", parameters)
        document = raw.scalar_one()
    plan = (json.loads(document) if isinstance(document, str) else document)[0]["Plan"]
    return [node["Node Type"] for node in _nodes(plan)]


@pytest.mark.parametrize(
    ("filters", "cursor_value"),
    [
        (IncidentFilters(), 10_000),
        (IncidentFilters(status="triggered"), 10_000),
        (IncidentFilters(sort="-last_event_at"), "2026-11-23T10:00:00+00:00"),
        (
            IncidentFilters(status="acknowledged", sort="-last_event_at"),
            "2026-11-23T10:00:00+00:00",
        ),
        (IncidentFilters(sort="last_event_at"), None),
        # The page's Open tab and its on-fire order, and the severity sorts: each segment
        # (one status and severity, or one severity) reads its index in id order.
        (IncidentFilters(status="open"), 10_000),
        (IncidentFilters(status="open", sort="urgency"), ["triggered", "critical"]),
        (IncidentFilters(sort="urgency"), None),
        (IncidentFilters(sort="-severity"), ["error"]),
        (IncidentFilters(status="triggered", sort="-severity"), ["warning"]),
    ],
)
def test_incident_list_pages_come_straight_from_an_index(
    postgres: Database, filters: IncidentFilters, cursor_value: Any
) -> None:
    if isinstance(cursor_value, str):
        cursor_value = datetime.fromisoformat(cursor_value)
    cursor = encode_cursor(filters.sort, cursor_value, 10_000) if cursor_value else None

    nodes = plan_of_list(postgres, filters, cursor)

    assert "Sort" not in nodes, nodes
    assert any("Index" in node for node in nodes), nodes


def test_sqlite_finds_the_reopen_candidate_by_its_key_not_by_status(tmp_path: Any) -> None:
    """Without statistics SQLite would walk every resolved incident for this lookup."""
    from app.store import receiver_rows

    url = f"sqlite:///{tmp_path / 'plans.db'}"
    upgrade(url)
    database = Database(url)
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(database.engine, "before_cursor_execute", capture)
    try:
        with database.transaction() as session:
            receiver_rows.lock_latest_resolved_incident(session.connection(), 1, "sentry-1")
        statement, parameters = captured[-1]
        with database.engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
            details = " ".join(str(row[-1]) for row in plan)
    finally:
        database.dispose()

    assert "USING INDEX ix_incidents_service_key_id" in details, details
    assert "TEMP B-TREE" not in details, details
