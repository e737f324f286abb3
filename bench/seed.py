"""Seed a migrated database with many incidents, fast: COPY on PostgreSQL, one executemany
transaction on SQLite. Rows match app/store/models.py column for column.

The history looks like two years of a busy organisation: 24 more services (with one
integration each) beside the benchmark's own, which gets ~30% of the incidents; times
spread over two years in id order; most incidents resolved, open ones mostly recent;
severities, event counts, acknowledgements, reopens and assignees in plausible shares.
Sentry issues regress, so ~30% of the resolved incidents reuse a key that an earlier
incident had; open incidents always have a key of their own (one open per key).
"""

from __future__ import annotations

import random
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy.engine import make_url

EXTRA_SERVICES = 24
HISTORY = timedelta(days=730)
# Issue ids of seeded incidents with a key of their own; far from the benchmark's ranges.
UNIQUE_ISSUE_BASE = 3_000_000_000
PROJECTS = ["payments-api", "checkout-web", "search", "auth", "mobile-ios", "ledger"]
TITLES = [
    "TypeError: Cannot read properties of undefined (reading 'id')",
    "OperationalError: could not connect to server: Connection refused",
    "ZahlungFehler: Zahlung fehlgeschlagen \u2013 Kartenpr\u00fcfung abgelehnt (\u00fc)",
    "TimeoutError: upstream request timed out after 30s",
    "KeyError: 'customer_id'",
    "IntegrityError: duplicate key value violates unique constraint",
    "ValueError: invalid literal for int() with base 10: ''",
    "NullPointerException in CheckoutActivity.onResume",
    "ConnectionResetError: [Errno 104] Connection reset by peer",
    "Deadlock detected while updating ledger entries",
]
SEVERITIES = (["error"] * 55) + (["warning"] * 20) + (["critical"] * 10) + (["info"] * 15)
INCIDENT_COLUMNS = (
    "service_id",
    "dedup_key",
    "title",
    "source",
    "severity",
    "status",
    "event_count",
    "first_event_at",
    "last_event_at",
    "triggered_at",
    "acknowledged_at",
    "resolved_at",
    "last_transition_at",
    "reopen_count",
    "assignee",
    "sentry_issue_id",
    "sentry_short_id",
    "sentry_issue_url",
    "sentry_project",
    "enrichment",
    "created_at",
    "updated_at",
)


@dataclass(frozen=True)
class SeedPlan:
    count: int
    bench_service_id: int
    # Issues the "ingest with 1M stored" scenario sends: their keys exist as resolved
    # incidents of the benchmark's service, as after a past outage.
    regressing_issue_base: int
    regressing_pool: int = 20_000
    random_seed: int = 20261123


def _open_status(rng: random.Random, age: timedelta) -> str:
    roll = rng.random()
    if age < timedelta(days=7):
        triggered, acknowledged = 0.25, 0.25
    elif age < timedelta(days=90):
        triggered, acknowledged = 0.02, 0.03
    else:
        triggered, acknowledged = 0.002, 0.003
    if roll < triggered:
        return "triggered"
    if roll < triggered + acknowledged:
        return "acknowledged"
    return "resolved"


def incident_rows(
    plan: SeedPlan, service_ids: list[int], now: datetime
) -> Iterator[tuple[Any, ...]]:
    """Incident rows in chronological (and so id) order."""
    rng = random.Random(plan.random_seed)
    others = [s for s in service_ids if s != plan.bench_service_id]
    start = now - HISTORY
    step = (HISTORY - timedelta(hours=2)) / plan.count
    for number in range(plan.count):
        service_id = plan.bench_service_id if rng.random() < 0.3 else rng.choice(others)
        triggered_at = start + step * number + timedelta(seconds=rng.random() * 60)
        age = now - triggered_at
        status = _open_status(rng, age)
        if status == "resolved" and rng.random() < 0.3:
            if service_id == plan.bench_service_id:
                issue_id = plan.regressing_issue_base + rng.randrange(plan.regressing_pool)
            else:
                issue_id = UNIQUE_ISSUE_BASE + rng.randrange(max(1, number))
        else:
            issue_id = UNIQUE_ISSUE_BASE + number
        events = min(100_000, int(rng.paretovariate(1.1)))
        span = timedelta(seconds=min(age.total_seconds() - 60, rng.expovariate(1 / 3600)))
        first_event_at = triggered_at
        last_event_at = first_event_at + (span if events > 1 else timedelta(0))
        acknowledged_at = resolved_at = assignee = None
        if status != "triggered" and rng.random() < 0.6:
            acknowledged_at = first_event_at + timedelta(seconds=rng.uniform(30, 1800))
            assignee = rng.choice(["alice@example.com", "bob@example.com", None])
        if status == "resolved":
            resolved_at = last_event_at + timedelta(seconds=rng.uniform(60, 86_400))
            resolved_at = min(resolved_at, now - timedelta(hours=1))
            acknowledged_at = min(acknowledged_at, resolved_at) if acknowledged_at else None
        last_transition_at = resolved_at or acknowledged_at or triggered_at
        project = PROJECTS[issue_id % len(PROJECTS)]
        yield (
            service_id,
            f"sentry-{issue_id}",
            f"{rng.choice(TITLES)} #{issue_id % 997}",
            f"Sentry - {project.replace('-', ' ').title()}",
            rng.choice(SEVERITIES),
            status,
            max(1, events),
            first_event_at,
            last_event_at,
            triggered_at,
            acknowledged_at,
            resolved_at,
            last_transition_at,
            1 if rng.random() < 0.05 else 0,
            assignee,
            str(issue_id),
            f"{project.upper()}-{issue_id % 100_000:X}",
            f"https://acme-gmbh.sentry.io/issues/{issue_id}/",
            project,
            None,
            triggered_at,
            max(last_event_at, last_transition_at),
        )


def _service_rows(now: datetime) -> list[tuple[str, str, int, datetime]]:
    return [
        (f"Seeded service {n:02d}", f"seeded-service-{n:02d}", 30, now - HISTORY)
        for n in range(EXTRA_SERVICES)
    ]


def _integration_row(service_id: int, name: str, now: datetime) -> tuple[Any, ...]:
    # Unsigned integrations: their unguessable id is the credential (SPEC 2).
    return (
        secrets.token_urlsafe(24),
        service_id,
        "sentry",
        f"{name} Sentry",
        True,
        None,
        None,
        None,
        now - HISTORY,
        now - HISTORY,
        False,
    )


INTEGRATION_COLUMNS = (
    "id, service_id, kind, name, enabled, secret_ciphertext, previous_secret_ciphertext, "
    "previous_secret_expires_at, created_at, updated_at, write_back"
)


def seed_postgres(url: str, plan: SeedPlan) -> None:
    """COPY the incidents in; VACUUM ANALYZE afterwards, as autovacuum would soon do (and
    would otherwise do in the middle of the measurements)."""
    parsed = make_url(url)
    options = parsed.query.get("options")
    conninfo = parsed.set(drivername="postgresql", query={}).render_as_string(False)
    now = datetime.now(UTC)
    extra = {"options": options} if isinstance(options, str) else {}
    with psycopg.connect(conninfo, **extra) as connection:
        with connection.cursor() as cursor:
            cursor.execute("SET maintenance_work_mem = '256MB'")
            service_ids = [plan.bench_service_id]
            for row in _service_rows(now):
                cursor.execute(
                    "INSERT INTO services (name, slug, reopen_window_minutes, created_at) "
                    "VALUES (%s, %s, %s, %s) RETURNING id",
                    row,
                )
                fetched = cursor.fetchone()
                assert fetched is not None
                service_ids.append(fetched[0])
                cursor.execute(
                    f"INSERT INTO integrations ({INTEGRATION_COLUMNS}) "  # noqa: S608  # constant
                    "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                    _integration_row(fetched[0], row[0], now),
                )
            # Loading then indexing is several times faster than maintaining seven indexes
            # row by row; the indexes are re-created from their own definitions.
            cursor.execute(
                "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'incidents' "
                "AND schemaname = current_schema() AND indexname <> 'pk_incidents'"
            )
            indexes = cursor.fetchall()
            for name, _definition in indexes:
                cursor.execute(f'DROP INDEX "{name}"')
            columns = ", ".join(INCIDENT_COLUMNS)
            with cursor.copy(f"COPY incidents ({columns}) FROM STDIN") as copy:
                for row in incident_rows(plan, service_ids, now):
                    copy.write_row(row)
            for _name, definition in indexes:
                cursor.execute(definition)
        connection.commit()
        connection.autocommit = True
        connection.execute("VACUUM ANALYZE")


def _sqlite_time(value: datetime | None) -> str | None:
    # SQLAlchemy's SQLite DATETIME storage format, which UTCDateTime writes (naive UTC).
    return None if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def seed_sqlite(path: str, plan: SeedPlan) -> None:
    """executemany in one transaction. No ANALYZE: the bridge never runs one on SQLite."""
    import sqlite3

    now = datetime.now(UTC)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("BEGIN IMMEDIATE")
        service_ids = [plan.bench_service_id]
        for name, slug, window, created in _service_rows(now):
            cursor = connection.execute(
                "INSERT INTO services (name, slug, reopen_window_minutes, created_at) "
                "VALUES (?, ?, ?, ?)",
                (name, slug, window, _sqlite_time(created)),
            )
            assert cursor.lastrowid is not None
            service_ids.append(cursor.lastrowid)
            row = _integration_row(cursor.lastrowid, name, now)
            connection.execute(
                f"INSERT INTO integrations ({INTEGRATION_COLUMNS}) "  # noqa: S608  # constant
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(_sqlite_time(v) if isinstance(v, datetime) else v for v in row),
            )
        indexes = connection.execute(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' "
            "AND tbl_name = 'incidents' AND sql IS NOT NULL"
        ).fetchall()
        for name, _definition in indexes:
            connection.execute(f'DROP INDEX "{name}"')
        placeholders = ", ".join("?" for _ in INCIDENT_COLUMNS)
        connection.executemany(
            f"INSERT INTO incidents ({', '.join(INCIDENT_COLUMNS)}) "  # noqa: S608  # constant
            f"VALUES ({placeholders})",
            (
                tuple(_sqlite_time(v) if isinstance(v, datetime) else v for v in row)
                for row in incident_rows(plan, service_ids, now)
            ),
        )
        for _name, definition in indexes:
            connection.execute(definition)
        connection.execute("COMMIT")
    finally:
        connection.close()


def seed(url: str, plan: SeedPlan) -> None:
    """Seed the database at a SQLAlchemy URL (sqlite:/// or postgresql+psycopg://)."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database
        seed_sqlite(parsed.database, plan)
    else:
        seed_postgres(url, plan)
