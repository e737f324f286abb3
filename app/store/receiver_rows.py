"""The receiver's rows, read and written with SQLAlchemy Core on the session's connection.

Every Sentry delivery passes through here, so this path skips the ORM's unit of work:
the benchmark's profiles (docs/benchmarks.md) measured about a millisecond of Python per
ORM statement on it, several times the database's own work. The rest of the bridge keeps
the ORM; these functions share its tables, types and transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, bindparam, literal, null, select, text, true
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from app.domain.incident import IncidentEvent
from app.domain.lifecycle import Status
from app.store.database import execute_at_commit
from app.store.models import (
    Delivery,
    DeliveryBodyClaim,
    DeliveryClaim,
    Incident,
    Integration,
    Service,
    TimelineEntry,
)
from app.store.queries import is_named, is_open_incident_of

_integrations: Table = Integration.__table__  # type: ignore[assignment]
_services: Table = Service.__table__  # type: ignore[assignment]
_incidents: Table = Incident.__table__  # type: ignore[assignment]
_deliveries: Table = Delivery.__table__  # type: ignore[assignment]
_claims: Table = DeliveryClaim.__table__  # type: ignore[assignment]
_body_claims: Table = DeliveryBodyClaim.__table__  # type: ignore[assignment]
_timeline: Table = TimelineEntry.__table__  # type: ignore[assignment]


@dataclass(frozen=True)
class ServiceRef:
    """What ingest needs of a service."""

    id: int
    name: str
    reopen_window_minutes: int


@dataclass(frozen=True)
class Receiver:
    """An integration as a delivery sees it: its credentials and the service it feeds."""

    id: str
    enabled: bool
    secret_ciphertext: str | None = field(repr=False)
    previous_secret_ciphertext: str | None = field(repr=False)
    previous_secret_expires_at: datetime | None
    service: ServiceRef


@dataclass
class IncidentRow:
    """An incident as the receiver reads and changes it (every column but enrichment)."""

    id: int
    service_id: int
    dedup_key: str
    title: str
    source: str
    severity: str
    status: str
    event_count: int
    first_event_at: datetime
    last_event_at: datetime
    triggered_at: datetime
    acknowledged_at: datetime | None
    resolved_at: datetime | None
    last_transition_at: datetime
    reopen_count: int
    assignee: str | None
    sentry_issue_id: str | None
    sentry_short_id: str | None
    sentry_issue_url: str | None
    sentry_project: str | None
    created_at: datetime
    updated_at: datetime
    culprit: str | None
    environment: str | None
    release: str | None
    platform: str | None
    tags: dict[str, Any] | None
    sentry_count: int | None
    sentry_user_count: int | None
    event_at: datetime | None
    is_test: bool

    def snapshot(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in _INCIDENT_FIELDS}


_INCIDENT_FIELDS = tuple(field.name for field in fields(IncidentRow))
_INCIDENT_COLUMNS = [_incidents.c[name] for name in _INCIDENT_FIELDS]

_SELECT_RECEIVER = (
    select(
        _integrations.c.id,
        _integrations.c.enabled,
        _integrations.c.secret_ciphertext,
        _integrations.c.previous_secret_ciphertext,
        _integrations.c.previous_secret_expires_at,
        _services.c.id.label("service_id"),
        _services.c.name.label("service_name"),
        _services.c.reopen_window_minutes,
    )
    .join_from(_integrations, _services, _services.c.id == _integrations.c.service_id)
    .where(_integrations.c.id == bindparam("integration_id"))
)


def load_receiver(connection: Connection, integration_id: str) -> Receiver | None:
    """The integration and its service in one query; None for an unknown id."""
    row = connection.execute(_SELECT_RECEIVER, {"integration_id": integration_id}).one_or_none()
    return _receiver(row) if row is not None else None


def _receiver(row: Any) -> Receiver:
    return Receiver(
        id=row.id,
        enabled=row.enabled,
        secret_ciphertext=row.secret_ciphertext,
        previous_secret_ciphertext=row.previous_secret_ciphertext,
        previous_secret_expires_at=row.previous_secret_expires_at,
        service=ServiceRef(row.service_id, row.service_name, row.reopen_window_minutes),
    )


def receive(
    connection: Connection, integration_id: str, delivery: dict[str, Any]
) -> tuple[Receiver, int] | None:
    """Store a delivery for the integration: the integration and the delivery's id.

    None, and nothing stored, when no integration has the id. On PostgreSQL the lookup and
    the INSERT are one statement (one round trip); `delivery` holds every column but
    `integration_id`.
    """
    if connection.dialect.name != "postgresql":
        receiver = load_receiver(connection, integration_id)
        if receiver is None:
            return None
        return receiver, insert_delivery(connection, {**delivery, "integration_id": receiver.id})
    names = tuple(delivery)
    statement = _RECEIVE_STATEMENTS.get(names)
    if statement is None:
        statement = _RECEIVE_STATEMENTS[names] = _receive_statement(names)
    row = connection.execute(
        statement,
        {"integration_id": integration_id, **{f"v_{name}": v for name, v in delivery.items()}},
    ).one_or_none()
    return (_receiver(row), row.delivery_id) if row is not None else None


_RECEIVE_STATEMENTS: dict[tuple[str, ...], Any] = {}


def _stored_delivery(receiver: Any, names: tuple[str, ...]) -> Any:
    """The CTE that inserts the delivery row for the integration `receiver` found (none
    when it found none), from the `v_<column>` parameters."""
    return (
        _deliveries.insert()
        .from_select(
            ["integration_id", *names],
            select(
                receiver.c.id,
                *(bindparam(f"v_{name}", type_=_deliveries.c[name].type) for name in names),
            ),
        )
        .returning(_deliveries.c.id)
        .cte("stored")
    )


def _receive_statement(names: tuple[str, ...]) -> Any:
    receiver = _SELECT_RECEIVER.cte("receiver")
    stored = _stored_delivery(receiver, names)
    return select(receiver, stored.c.id.label("delivery_id")).select_from(
        receiver.join(stored, true())
    )


@dataclass(frozen=True)
class Claimed:
    """What `receive_claiming` stored and found: the integration as it is now, the new
    delivery's id, whether the claims were made (only when the integration still is the
    one the delivery was read with), the claim an earlier delivery holds, if one does,
    and the open incident locked for `lock`."""

    receiver: Receiver
    delivery_id: int
    claims_made: bool
    taken: TakenClaim | None
    incident: IncidentRow | None
    # Whether the statement looked for (and locked) the open incident of `lock`.
    locked: bool = False


def receive_claiming(
    connection: Connection,
    delivery: dict[str, Any],
    read_with: Receiver,
    *,
    request_id: str | None,
    body_sha256: str | None,
    lock: tuple[int, str] | None,
) -> Claimed | None:
    """PostgreSQL: store a delivery read (and authenticated) with a cached copy of its
    integration, claim its Request-ID and signed body, and lock the open incident of
    `lock`, in one statement. The claims are made only if the integration row (and its
    service) still equals `read_with` when the statement runs: an edit made by any process
    is seen by the very next delivery, at no extra round trip. Otherwise `claims_made` is
    False (the lock may still have been taken: harmless, it ends with the transaction) and
    the caller reads the delivery again with `receiver` and claims it as usual.
    None, and nothing stored, when no integration has the id."""
    names = tuple(delivery)
    shape = (names, request_id is not None, body_sha256 is not None, lock is not None)
    statement = _RECEIVE_CLAIMING_STATEMENTS.get(shape)
    if statement is None:
        statement = _RECEIVE_CLAIMING_STATEMENTS[shape] = _receive_claiming_statement(*shape)
    params: dict[str, Any] = {
        "integration_id": read_with.id,
        "request_id": request_id,
        "body_sha256": body_sha256,
        "claimed_at": delivery["received_at"],
        **{f"v_{name}": value for name, value in delivery.items()},
        **_fingerprint(read_with),
    }
    if lock is not None:
        params.update(service_id=lock[0], dedup_key=lock[1])
    row = connection.execute(statement, params).one_or_none()
    if row is None:
        return None
    # By position: the receiver's and the incident's columns share names (id, service_id).
    (id_, enabled, secret, previous, expires, service_id, service_name, window) = row[:8]
    receiver = Receiver(
        id_, enabled, secret, previous, expires, ServiceRef(service_id, service_name, window)
    )
    delivery_id, matched_id, by_request, by_body, request_holder, body_holder = row[8:14]
    if matched_id is None:
        return Claimed(receiver, delivery_id, False, None, None)
    incident = IncidentRow(*row[14:]) if lock is not None and row[14] is not None else None
    if by_request is None and request_id is not None and request_holder is not None:
        taken: TakenClaim | None = TakenClaim("request_id", request_holder)
    elif by_body is None and body_sha256 is not None and body_holder is not None:
        taken = TakenClaim("body", body_holder)
    else:  # none taken, or taken by a delivery committed while this one waited on it
        taken = _taken_claim(
            connection,
            receiver.id,
            request_id,
            body_sha256,
            has_request=by_request is not None,
            has_body=by_body is not None,
        )
    return Claimed(receiver, delivery_id, True, taken, incident, lock is not None)


def _fingerprint(receiver: Receiver) -> dict[str, Any]:
    return {
        "f_enabled": receiver.enabled,
        "f_secret_ciphertext": receiver.secret_ciphertext,
        "f_previous_secret_ciphertext": receiver.previous_secret_ciphertext,
        "f_previous_secret_expires_at": receiver.previous_secret_expires_at,
        "f_service_id": receiver.service.id,
        "f_service_name": receiver.service.name,
        "f_reopen_window_minutes": receiver.service.reopen_window_minutes,
    }


_RECEIVE_CLAIMING_STATEMENTS: dict[Any, Any] = {}


def _receive_claiming_statement(
    names: tuple[str, ...], has_request: bool, has_body: bool, has_lock: bool
) -> Any:
    receiver = _SELECT_RECEIVER.cte("receiver")
    stored = _stored_delivery(receiver, names)
    # Every column a delivery is read with, compared with the copy it was read with.
    same = [
        receiver.c[column].is_not_distinct_from(
            bindparam(f"f_{column}", type_=receiver.c[column].type)
        )
        for column in (
            "enabled",
            "secret_ciphertext",
            "previous_secret_ciphertext",
            "previous_secret_expires_at",
            "service_id",
            "service_name",
            "reopen_window_minutes",
        )
    ]
    matched = (
        select(stored.c.id.label("id"))
        .select_from(stored.join(receiver, true()))
        .where(*same)
        .cte("matched")
    )
    source: Any = receiver.join(stored, true()).outerjoin(matched, true())
    columns: list[Any] = [
        *receiver.c,
        stored.c.id.label("delivery_id"),
        matched.c.id.label("matched_id"),
    ]
    claimed = None
    if has_request:
        claimed = _claim_for(_claims, "request_id", matched.c.id).cte("claimed")
        source = source.outerjoin(claimed, true())
        columns.append(claimed.c.delivery_id.label("by_request"))
    else:
        columns.append(null().label("by_request"))
    if has_body:
        # Only when the Request-ID was claimed (or there is none): a repeat never takes
        # the hash. A data-modifying CTE sees the other's RETURNING.
        body_id = claimed.c.delivery_id if claimed is not None else matched.c.id
        body_claimed = _claim_for(_body_claims, "body_sha256", body_id).cte("body_claimed")
        source = source.outerjoin(body_claimed, true())
        columns.append(body_claimed.c.delivery_id.label("by_body"))
    else:
        columns.append(null().label("by_body"))
    # Who holds a claim this delivery did not get, as of the statement's snapshot: a
    # repeat of a delivery committed before it (Sentry's retries, a replayed capture) is
    # told which one without another round trip. A NULL here when the claim was refused
    # means its holder committed during the wait: the caller asks again.
    columns.append(
        select(_claims.c.delivery_id)
        .where(
            _claims.c.integration_id == bindparam("integration_id"),
            _claims.c.request_id == bindparam("request_id"),
        )
        .scalar_subquery()
        .label("request_holder")
        if has_request
        else null().label("request_holder")
    )
    columns.append(
        select(_body_claims.c.delivery_id)
        .where(
            _body_claims.c.integration_id == bindparam("integration_id"),
            _body_claims.c.body_sha256 == bindparam("body_sha256"),
        )
        .scalar_subquery()
        .label("body_holder")
        if has_body
        else null().label("body_holder")
    )
    if has_lock:
        locked = _LOCK_OPEN_INCIDENT.subquery("locked")
        source = source.outerjoin(locked, true())
        columns.extend(locked.c)
    return select(*columns).select_from(source)


def insert_if_unchanged(
    connection: Connection, delivery: dict[str, Any], read_with: Receiver
) -> int | None:
    """SQLite: store a delivery read with a cached copy of its integration, in one
    statement, only if the integration row (and its service) still equals `read_with`:
    the new delivery's id, or None (nothing stored: unknown now, or edited since)."""
    names = tuple(delivery)
    statement = _INSERT_IF_UNCHANGED.get(names)
    if statement is None:
        statement = _INSERT_IF_UNCHANGED[names] = _insert_if_unchanged_statement(names)
    params = {
        "integration_id": read_with.id,
        **{f"v_{name}": value for name, value in delivery.items()},
        **_fingerprint(read_with),
    }
    delivery_id: int | None = connection.execute(statement, params).scalar()
    return delivery_id


_INSERT_IF_UNCHANGED: dict[tuple[str, ...], Any] = {}


def _insert_if_unchanged_statement(names: tuple[str, ...]) -> Any:
    current = {
        "enabled": _integrations.c.enabled,
        "secret_ciphertext": _integrations.c.secret_ciphertext,
        "previous_secret_ciphertext": _integrations.c.previous_secret_ciphertext,
        "previous_secret_expires_at": _integrations.c.previous_secret_expires_at,
        "service_id": _services.c.id,
        "service_name": _services.c.name,
        "reopen_window_minutes": _services.c.reopen_window_minutes,
    }
    same = [
        column.is_not_distinct_from(bindparam(f"f_{name}", type_=column.type))
        for name, column in current.items()
    ]
    return (
        _deliveries.insert()
        .from_select(
            ["integration_id", *names],
            select(
                _integrations.c.id,
                *(bindparam(f"v_{name}", type_=_deliveries.c[name].type) for name in names),
            )
            .join_from(_integrations, _services, _services.c.id == _integrations.c.service_id)
            .where(_integrations.c.id == bindparam("integration_id"), *same),
        )
        .returning(_deliveries.c.id)
    )


def find_service(connection: Connection, name: str) -> ServiceRef | None:
    """A service by name or slug (an alert rule may name either)."""
    row = connection.execute(
        select(_services.c.id, _services.c.name, _services.c.reopen_window_minutes).where(
            is_named(name)
        )
    ).first()
    return ServiceRef(row.id, row.name, row.reopen_window_minutes) if row is not None else None


# ---------------------------------------------------------------- deliveries


def insert_delivery(connection: Connection, values: dict[str, Any]) -> int:
    """Store a delivery; its id."""
    delivery_id: int = connection.execute(
        _deliveries.insert().returning(_deliveries.c.id), values
    ).scalar_one()
    return delivery_id


def update_delivery(connection: Connection, delivery_id: int, values: dict[str, Any]) -> None:
    _update_row(connection, _deliveries, delivery_id, values)


def _update_row(connection: Connection, table: Table, row_id: int, values: dict[str, Any]) -> None:
    """UPDATE <table> SET <values> WHERE id = <row_id>, with a statement built once per
    table and set of columns (every value a named parameter, `v_<name>`), not per
    delivery: building such a statement (its values and cache key) cost more than
    running it on SQLite."""
    shape = (table.name, tuple(values))
    statement = _UPDATES.get(shape)
    if statement is None:
        statement = _UPDATES[shape] = (
            table.update()
            .where(table.c.id == bindparam("row_id"))
            .values({name: bindparam(f"v_{name}") for name in values})
        )
    params = {f"v_{name}": value for name, value in values.items()}
    connection.execute(statement, {**params, "row_id": row_id})


# (table, column names) -> the UPDATE of those columns (a handful of shapes ever: what a
# decision or an incident change sets).
_UPDATES: dict[tuple[str, tuple[str, ...]], Any] = {}


@dataclass(frozen=True)
class TakenClaim:
    """A claim an earlier delivery holds: which one ("request_id" or "body") and its id."""

    claim: str
    delivery_id: int


def claim_delivery(
    connection: Connection,
    integration_id: str,
    delivery_id: int,
    now: datetime,
    *,
    request_id: str | None = None,
    body_sha256: str | None = None,
    lock: tuple[int, str] | None = None,
) -> tuple[TakenClaim | None, IncidentRow | None]:
    """Claim Sentry's Request-ID and the signed body's hash for this delivery: the claim an
    earlier delivery holds, if one does, and, when `lock` names a (service, key), its open
    incident, locked.

    Each claim is an `INSERT ... ON CONFLICT DO NOTHING` on a primary key: two concurrent
    deliveries of one Request-ID (or one body) cannot both win (on PostgreSQL the second
    waits for the first to commit, then finds the conflict), and no savepoint is needed.
    The body is claimed only when the Request-ID was, so a repeat never takes the hash.
    On PostgreSQL the claims and the lock are one statement, one round trip.
    """
    params: dict[str, Any] = {
        "integration_id": integration_id,
        "request_id": request_id,
        "body_sha256": body_sha256,
        "delivery_id": delivery_id,
        "claimed_at": now,
    }
    incident: IncidentRow | None = None
    if connection.dialect.name == "postgresql":
        shape = (request_id is not None, body_sha256 is not None, lock is not None)
        statement = _PG_CLAIMS.get(shape)
        if statement is None:
            statement = _PG_CLAIMS[shape] = _claims_statement(*shape)
        if lock is not None:
            params.update(service_id=lock[0], dedup_key=lock[1])
        row = connection.execute(statement, params).one()
        has_request, has_body = row.by_request is not None, row.by_body is not None
        if lock is not None and row.id is not None:
            incident = IncidentRow(*row[2:])
    else:
        has_request = has_body = False
        if request_id is not None:
            has_request = connection.execute(_CLAIM_REQUEST["sqlite"], params).scalar() is not None
        if body_sha256 is not None and (has_request or request_id is None):
            has_body = connection.execute(_CLAIM_BODY["sqlite"], params).scalar() is not None
        if lock is not None:
            incident = lock_open_incident(connection, *lock)
    taken = _taken_claim(
        connection,
        integration_id,
        request_id,
        body_sha256,
        has_request=has_request,
        has_body=has_body,
    )
    return taken, incident


def _taken_claim(
    connection: Connection,
    integration_id: str,
    request_id: str | None,
    body_sha256: str | None,
    *,
    has_request: bool,
    has_body: bool,
) -> TakenClaim | None:
    """The claim an earlier delivery holds, when this one's INSERT found it taken."""
    if request_id is not None and not has_request:
        earlier = connection.execute(
            select(_claims.c.delivery_id).where(
                _claims.c.integration_id == integration_id, _claims.c.request_id == request_id
            )
        ).scalar()
        return TakenClaim("request_id", earlier if earlier is not None else -1)
    if body_sha256 is not None and not has_body:
        earlier = connection.execute(
            select(_body_claims.c.delivery_id).where(
                _body_claims.c.integration_id == integration_id,
                _body_claims.c.body_sha256 == body_sha256,
            )
        ).scalar()
        return TakenClaim("body", earlier if earlier is not None else -1)
    return None


def _claim(insert: Any, table: Table, key: str) -> Any:
    columns = ("integration_id", key, "delivery_id", "claimed_at")
    return (
        insert(table)
        .values({name: bindparam(name) for name in columns})
        .on_conflict_do_nothing(index_elements=["integration_id", key])
        .returning(table.c.delivery_id)
    )


def _claim_for(table: Table, key: str, delivery_id: Any) -> Any:
    """PostgreSQL: claim `key` for the delivery id another part of the same statement
    gives (a CTE's column), or nothing when that part is empty."""
    return (
        postgresql_insert(table)
        .from_select(
            ["integration_id", key, "delivery_id", "claimed_at"],
            select(
                bindparam("integration_id"),
                bindparam(key),
                delivery_id,
                bindparam("claimed_at", type_=table.c.claimed_at.type),
            ),
        )
        .on_conflict_do_nothing(index_elements=["integration_id", key])
        .returning(table.c.delivery_id)
    )


# Built once per dialect: the INSERTs that claim a Request-ID or a body, or claim nothing.
_INSERTS = (("postgresql", postgresql_insert), ("sqlite", sqlite_insert))
_CLAIM_REQUEST = {name: _claim(insert, _claims, "request_id") for name, insert in _INSERTS}
_CLAIM_BODY = {name: _claim(insert, _body_claims, "body_sha256") for name, insert in _INSERTS}


def _insert_for(connection: Connection, table: Table) -> Any:
    insert = postgresql_insert if connection.dialect.name == "postgresql" else sqlite_insert
    return insert(table)


# ---------------------------------------------------------------- incidents


def lock_open_incident(
    connection: Connection, service_id: int, dedup_key: str
) -> IncidentRow | None:
    """The one unresolved incident for the key, locked until the transaction ends."""
    row = connection.execute(
        _LOCK_OPEN_INCIDENT, {"service_id": service_id, "dedup_key": dedup_key}
    ).first()
    return IncidentRow(*row) if row is not None else None


_LOCK_OPEN_INCIDENT = (
    select(*_INCIDENT_COLUMNS)
    .where(is_open_incident_of(bindparam("service_id"), bindparam("dedup_key")))
    .with_for_update()
)


def _claims_statement(has_request: bool, has_body: bool, has_lock: bool) -> Any:
    # The lock sees the snapshot taken when the statement starts: if a claim had to wait
    # for another delivery of the same Request-ID that then rolled back, an incident
    # committed during that wait is not in it. Callers that found no incident look again.
    source: Any = select(literal(1).label("one")).subquery("one")
    columns: list[Any] = []
    claimed = None
    if has_request:
        claimed = _CLAIM_REQUEST["postgresql"].cte("claimed")
        source = source.outerjoin(claimed, true())
        columns.append(claimed.c.delivery_id.label("by_request"))
    else:
        columns.append(null().label("by_request"))
    if has_body:
        body = _CLAIM_BODY["postgresql"]
        if claimed is not None:
            # Only when the Request-ID was claimed: a data-modifying CTE sees the other's
            # RETURNING, so an empty `claimed` inserts nothing here.
            body = _claim_for(_body_claims, "body_sha256", claimed.c.delivery_id)
        body_claimed = body.cte("body_claimed")
        source = source.outerjoin(body_claimed, true())
        columns.append(body_claimed.c.delivery_id.label("by_body"))
    else:
        columns.append(null().label("by_body"))
    if has_lock:
        locked = _LOCK_OPEN_INCIDENT.subquery("locked")
        source = source.outerjoin(locked, true())
        columns.extend(locked.c)
    return select(*columns).select_from(source)


_PG_CLAIMS: dict[tuple[bool, bool, bool], Any] = {}


def lock_open_incident_routed_from(
    connection: Connection, integration_id: str, dedup_key: str
) -> IncidentRow | None:
    """An open incident for the key that this integration's deliveries opened elsewhere
    (an alert-rule action chose another service), locked until the transaction ends."""
    touched = select(_deliveries.c.incident_id).where(
        _deliveries.c.integration_id == integration_id, _deliveries.c.dedup_key == dedup_key
    )
    return _incident(
        connection,
        select(*_INCIDENT_COLUMNS)
        .where(
            _incidents.c.dedup_key == dedup_key,
            _incidents.c.status != Status.RESOLVED.value,
            _incidents.c.id.in_(touched),
        )
        .order_by(_incidents.c.id.desc())
        .limit(1)
        .with_for_update(),
    )


def lock_latest_resolved_incident(
    connection: Connection, service_id: int, dedup_key: str
) -> IncidentRow | None:
    """The most recent resolved incident for the key (a reopen candidate), locked."""
    status: Any = _incidents.c.status
    if connection.dialect.name == "sqlite":
        # Without statistics SQLite walks the status index through every resolved incident
        # (seconds at a million). An expression on the column keeps that index out of the
        # plan, so the key index finds the handful of incidents for this key.
        status = _incidents.c.status + ""
    return _incident(
        connection,
        select(*_INCIDENT_COLUMNS)
        .where(
            _incidents.c.service_id == service_id,
            _incidents.c.dedup_key == dedup_key,
            status == Status.RESOLVED.value,
        )
        .order_by(_incidents.c.id.desc())
        .limit(1)
        .with_for_update(),
    )


def _incident(connection: Connection, query: Any) -> IncidentRow | None:
    row = connection.execute(query).first()
    return IncidentRow(*row) if row is not None else None


def insert_open_incident(connection: Connection, values: dict[str, Any]) -> int | None:
    """Open an incident; None when another delivery holds the key's open slot already.

    The partial unique index allows one unresolved incident per (service, key). A
    concurrent opener of the same key makes this one wait, then do nothing.
    """
    incident_id: int | None = connection.execute(
        _insert_for(connection, _incidents)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=["service_id", "dedup_key"],
            # The index's own predicate, as text: PostgreSQL infers the partial index
            # from it, which a bound parameter would not allow in a prepared plan.
            index_where=text("status <> 'resolved'"),
        )
        .returning(_incidents.c.id)
    ).scalar()
    return incident_id


@dataclass
class IncidentChange:
    """What a delivery did to an incident: its columns since `before` (None: nothing to
    update, e.g. just inserted) and the timeline rows to add."""

    incident: IncidentRow
    before: dict[str, Any] | None
    timeline: list[dict[str, Any]]
    # The incident events the change causes (notifications hang off these).
    events: tuple[IncidentEvent, ...] = ()

    def changed_columns(self) -> dict[str, Any]:
        if self.before is None:
            return {}
        before = self.before
        return {
            name: value
            for name, value in self.incident.snapshot().items()
            if before.get(name) != value
        }


def save_incident(connection: Connection, change: IncidentChange) -> None:
    """Write the incident's changed columns now (its timeline rows are left to the caller)."""
    changed = change.changed_columns()
    if changed:
        _update_incident(connection, change.incident.id, changed)


def _update_incident(connection: Connection, incident_id: int, changed: dict[str, Any]) -> None:
    _update_row(connection, _incidents, incident_id, changed)


def finish_delivery(
    connection: Connection,
    delivery_id: int,
    decision: dict[str, Any],
    change: IncidentChange | None,
    is_last: bool = False,
) -> None:
    """Store the delivery's decision and the incident change it made.

    On PostgreSQL one statement (the change as data-modifying CTEs): on two shared cores
    each round trip to the database costs more than the statement itself; `is_last` (the
    caller sends nothing more in this transaction) lets it go out with the COMMIT. SQLite
    runs in the process, so it takes them one by one.
    """
    changed = change.changed_columns() if change is not None else {}
    timeline = change.timeline if change is not None else []
    # Entries must get their ids in order (the timeline is read by id), which CTEs do not
    # promise; two entries from one delivery are rare enough to take separate statements.
    if connection.dialect.name != "postgresql" or len(timeline) > 1:
        if change is not None and changed:
            _update_incident(connection, change.incident.id, changed)
        for entry in timeline:
            connection.execute(_timeline.insert(), entry)
        update_delivery(connection, delivery_id, decision)
        return
    params = {f"d_{name}": value for name, value in decision.items()}
    params["d_id"] = delivery_id
    if change is not None and changed:
        params.update({f"i_{name}": value for name, value in changed.items()})
        params["i_id"] = change.incident.id
    for number, entry in enumerate(timeline):
        params.update({f"t{number}_{name}": value for name, value in entry.items()})
    shape = (tuple(decision), tuple(changed), tuple(tuple(entry) for entry in timeline))
    statement = _FINISH_STATEMENTS.get(shape)
    if statement is None:
        statement = _FINISH_STATEMENTS[shape] = _finish_statement(*shape)
    if is_last:
        # Nothing follows in this transaction: it goes out with the COMMIT, in one round
        # trip (database.execute_at_commit).
        execute_at_commit(connection, statement, params)
    else:
        connection.execute(statement, params)


# Built once per shape (which columns change, how many entries), with every value a named
# parameter: building and compiling such a statement costs more than running it.
_FINISH_STATEMENTS: dict[Any, Any] = {}


def _finish_statement(
    decision: tuple[str, ...], changed: tuple[str, ...], timeline: tuple[tuple[str, ...], ...]
) -> Any:
    statement = (
        _deliveries.update()
        .where(_deliveries.c.id == bindparam("d_id"))
        .values({name: bindparam(f"d_{name}") for name in decision})
    )
    if changed:
        statement = statement.add_cte(
            _incidents.update()
            .where(_incidents.c.id == bindparam("i_id"))
            .values({name: bindparam(f"i_{name}") for name in changed})
            .cte("changed_incident")
        )
    for number, names in enumerate(timeline):
        statement = statement.add_cte(
            _timeline.insert()
            .values({name: bindparam(f"t{number}_{name}") for name in names})
            .cte(f"new_entry_{number}")
        )
    return statement
