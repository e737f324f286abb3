"""Escalation runs of incidents: due rows written with the change, claimed, fired once.

An escalation run starts when an incident is triggered, reopened or its acknowledgement
times out; acknowledging or resolving cancels its pending rows. Each row is one step
instance (round, step) due at a time the pure decision (app/domain/escalation.py) gives.
The jobs process claims due rows under a lease (FOR UPDATE SKIP LOCKED on PostgreSQL) and
fires each through `fire_escalation`, which takes the sender as a `page` callable so the
notifications outbox plugs in without this module knowing it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from app.domain import escalation as domain
from app.domain.lifecycle import Status
from app.services import escalation_policies
from app.services.escalation_targets import PageTarget, described, resolve_target
from app.store.models import Escalation as EscalationRow
from app.store.models import (
    EscalationPolicy,
    EscalationStep,
    Incident,
    Service,
    TimelineEntry,
)
from app.store.time_scale import minute_of

PENDING, DONE, CANCELLED = "pending", "done", "cancelled"
DEFAULT_LEASE = timedelta(seconds=60)
ACTOR = "escalation"


# The sender: the notifications outbox writes its rows here, in the firing transaction.
Page = Callable[[PageTarget, Incident, EscalationStep], None]


def _timeline(
    session: Session, incident_id: int, now: datetime, message: str, **data: object
) -> None:
    session.add(
        TimelineEntry(
            incident_id=incident_id,
            at=now,
            kind="escalation",
            actor=ACTOR,
            message=message,
            data=dict(data),
        )
    )


def _rows_of_run(session: Session, incident_id: int, run: int) -> list[EscalationRow]:
    return list(
        session.scalars(
            select(EscalationRow)
            .where(EscalationRow.incident_id == incident_id, EscalationRow.run == run)
            .order_by(EscalationRow.repeat, EscalationRow.step_index)
        )
    )


@dataclass(frozen=True)
class _Run:
    incident_id: int
    number: int
    started_at: datetime
    reason: str


def _plan(session: Session, policy: EscalationPolicy, run: _Run, now: datetime) -> None:
    """Write the rows the decision asks for: superseded ones done, due and next pending."""
    incident_id, number, started_at, reason = (
        run.incident_id,
        run.number,
        run.started_at,
        run.reason,
    )
    existing = _rows_of_run(session, incident_id, number)
    known = {(row.repeat, row.step_index): row for row in existing}
    history = [
        domain.FiredStep(
            domain.StepRef(row.repeat, row.step_index),
            row.fired_at,
            domain.StepOutcome(row.outcome),
        )
        for row in existing
        if row.status == DONE and row.fired_at is not None and row.outcome is not None
    ]
    minute = minute_of(session.connection())
    decision = domain.decide(
        escalation_policies.as_domain(policy, minute), started_at, history, now
    )

    def add(step: domain.DueStep, status: str, outcome: str | None) -> None:
        planned = known.get((step.ref.repeat, step.ref.index))
        if planned is not None:
            # Planned before an earlier step paged nobody: it is due sooner now.
            if planned.status == PENDING and status == PENDING:
                planned.due_at = step.due_at
            return
        session.add(
            EscalationRow(
                incident_id=incident_id,
                policy_id=policy.id,
                run=number,
                reason=reason,
                started_at=started_at,
                repeat=step.ref.repeat,
                step_index=step.ref.index,
                status=status,
                outcome=outcome,
                due_at=step.due_at,
                fired_at=now if status == DONE else None,
                created_at=now,
            )
        )

    for step in decision.superseded:
        add(step, DONE, domain.StepOutcome.SUPERSEDED.value)
    for step in decision.due:
        add(step, PENDING, None)
    if decision.next_step is not None:
        add(decision.next_step, PENDING, None)
    session.flush()


def start_escalation(
    session: Session, incident: Incident, reason: str, now: datetime
) -> int | None:
    """Start a new run for the incident under its service's policy; returns the run number.

    None when the service has no policy or the incident is below the paging threshold
    (then only channels hear of it). Any pending rows of an earlier run are cancelled.
    """
    service = session.get(Service, incident.service_id)
    if service is None or service.escalation_policy_id is None:
        return None
    if not domain.pages_people(incident.severity, service.page_min_severity):
        return None
    policy = escalation_policies.get_policy(session, service.escalation_policy_id)
    stop_escalation(session, incident.id, now)
    previous = session.scalar(
        select(func.max(EscalationRow.run)).where(EscalationRow.incident_id == incident.id)
    )
    number = (previous or 0) + 1
    _plan(session, policy, _Run(incident.id, number, now, reason), now)
    _timeline(
        session,
        incident.id,
        now,
        f"Escalation started ({reason}) under policy {policy.name}.",
        policy=policy.name,
        run=number,
    )
    return number


def stop_escalation(session: Session, incident_id: int, now: datetime) -> int:
    """Cancel the incident's pending steps (acknowledged, resolved, or a new run)."""
    result = session.execute(
        update(EscalationRow)
        .where(EscalationRow.incident_id == incident_id, EscalationRow.status == PENDING)
        .values(status=CANCELLED, claimed_until=None, claimed_by=None)
    )
    session.flush()
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def claim_due_escalations(
    session: Session, now: datetime, worker: str, limit: int = 50, lease: timedelta = DEFAULT_LEASE
) -> list[int]:
    """Take up to `limit` due rows (or ones whose lease ran out) for `worker`.

    SKIP LOCKED lets several jobs processes claim side by side on PostgreSQL; SQLite's
    BEGIN IMMEDIATE (app/store/database.py) serialises claimers instead. The lease, not the
    lock, keeps a claimed row from a second claimer once this transaction commits.
    """
    rows = list(
        session.scalars(
            select(EscalationRow)
            .where(
                EscalationRow.status == PENDING,
                EscalationRow.due_at <= now,
                or_(EscalationRow.claimed_until.is_(None), EscalationRow.claimed_until < now),
            )
            .order_by(EscalationRow.due_at, EscalationRow.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    for row in rows:
        row.claimed_until = now + lease
        row.claimed_by = worker
    session.flush()
    return [row.id for row in rows]


@dataclass(frozen=True)
class Fired:
    escalation_id: int
    outcome: str  # paged | nobody | stopped
    paged: tuple[PageTarget, ...]
    problems: tuple[str, ...]


def fire_escalation(
    session: Session, escalation_id: int, worker: str, now: datetime, page: Page
) -> Fired | None:
    """Fire one claimed row: page its step's targets, record it, plan the next step.

    None when the row is no longer this worker's (its lease ran out and another took it,
    or it was cancelled): it is then not fired, so a step never fires twice.
    """
    row = session.scalar(
        select(EscalationRow).where(EscalationRow.id == escalation_id).with_for_update()
    )
    if row is None or row.status != PENDING or row.claimed_by != worker:
        return None
    incident = session.get(Incident, row.incident_id)
    assert incident is not None
    if incident.status != Status.TRIGGERED.value:
        stop_escalation(session, incident.id, now)
        return Fired(row.id, "stopped", (), ())
    policy = escalation_policies.get_policy(session, row.policy_id)
    step = policy.steps[row.step_index]
    paged: list[PageTarget] = []
    problems: list[str] = []
    for target in step.targets:
        found, why = resolve_target(session, target, incident, now)
        found = [
            replace(
                each,
                run=row.run,
                repeat=row.repeat,
                step_index=row.step_index,
                reason=row.reason,
                fired_at=now,
            )
            for each in found
        ]
        for each in found:
            page(each, incident, step)
        paged += found
        problems += why
    outcome = domain.StepOutcome.PAGED if paged else domain.StepOutcome.NOBODY
    row.status, row.outcome, row.fired_at = DONE, outcome.value, now
    row.claimed_until = None
    names = ", ".join(described(t) for t in paged) or "nobody"
    note = f" ({'; '.join(problems)})" if problems else ""
    moving_on = " Moving on at once." if not paged else ""
    _timeline(
        session,
        incident.id,
        now,
        f"Escalation step {row.step_index + 1} (round {row.repeat + 1}):"
        f" paged {names}{note}.{moving_on}",
        run=row.run,
        step=row.step_index,
        repeat=row.repeat,
        outcome=outcome.value,
        paged=[t.email or t.channel_name for t in paged],
        problems=problems,
    )
    session.flush()
    _plan(session, policy, _Run(incident.id, row.run, row.started_at, row.reason), now)
    return Fired(row.id, outcome.value, tuple(paged), tuple(problems))


def has_run_since(session: Session, incident_id: int, since: datetime) -> bool:
    """Whether an escalation of the incident is pending or was started at or after `since`
    (the incident's last trigger): a severity rise then starts none."""
    found = session.scalar(
        select(EscalationRow.id)
        .where(
            EscalationRow.incident_id == incident_id,
            or_(EscalationRow.status == PENDING, EscalationRow.started_at >= since),
        )
        .limit(1)
    )
    return found is not None
