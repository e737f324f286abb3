"""What the receiver remembers between deliveries besides incidents: the Sentry events
each incident has counted, and the names of Sentry projects. Core SQL on the session's
connection, like app/store/receiver_rows.py (the same hot path, the same reason)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Integer, String, Table, bindparam, exists, literal, select
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.store.models import IncidentEvent, SentryProjectName

_events: Table = IncidentEvent.__table__  # type: ignore[assignment]
_names: Table = SentryProjectName.__table__  # type: ignore[assignment]

# Each dialect's INSERT, for its ON CONFLICT (typed Any: the two share no such base).
_INSERTS: dict[str, Any] = {"postgresql": postgresql_insert, "sqlite": sqlite_insert}

# Built once per dialect: the claim of an event for an incident, or nothing when it was
# claimed before. The primary key decides, so two retries racing each other cannot both
# win (on PostgreSQL the second waits for the first to commit, then finds the conflict).
_CLAIM_EVENT = {
    dialect: insert(_events)
    .values(
        incident_id=bindparam("incident_id"),
        event_id=bindparam("event_id"),
        delivery_id=bindparam("delivery_id"),
        counted_at=bindparam("counted_at"),
    )
    .on_conflict_do_nothing(index_elements=["incident_id", "event_id"])
    .returning(_events.c.delivery_id)
    for dialect, insert in _INSERTS.items()
}


def claim_event(
    connection: Connection, incident_id: int, event_id: str, delivery_id: int, now: datetime
) -> int | None:
    """Count Sentry's event on the incident: None if this delivery is the first to count
    it, else the delivery that did."""
    params = {
        "incident_id": incident_id,
        "event_id": event_id,
        "delivery_id": delivery_id,
        "counted_at": now,
    }
    claimed = connection.execute(_CLAIM_EVENT[connection.dialect.name], params).scalar()
    if claimed is not None:
        return None
    earlier: int | None = connection.execute(
        select(_events.c.delivery_id).where(
            _events.c.incident_id == incident_id, _events.c.event_id == event_id
        )
    ).scalar()
    return earlier if earlier is not None else -1


def learned_project_name(connection: Connection, service_id: int, slug: str) -> str | None:
    """The name the service's deliveries gave the project with this slug, if any did."""
    name: str | None = connection.execute(
        select(_names.c.name).where(_names.c.service_id == service_id, _names.c.slug == slug)
    ).scalar()
    return name


def learn_project_name(
    connection: Connection, service_id: int, slug: str, name: str, now: datetime
) -> None:
    """Remember (or correct, after a rename in Sentry) the project's name for the service.

    The usual case, the name already known, writes and locks nothing: the row is offered
    only when no row has this name, so deliveries of one project never queue on it.
    """
    offered = select(
        literal(service_id, Integer),
        literal(slug, String),
        literal(name, String),
        literal(now, _names.c.learned_at.type),
    ).where(
        ~exists().where(
            _names.c.service_id == service_id, _names.c.slug == slug, _names.c.name == name
        )
    )
    insert = _INSERTS[connection.dialect.name](_names).from_select(
        ["service_id", "slug", "name", "learned_at"], offered
    )
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=["service_id", "slug"],
            set_={"name": insert.excluded.name, "learned_at": insert.excluded.learned_at},
        )
    )
