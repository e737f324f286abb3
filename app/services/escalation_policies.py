"""Escalation policies: create them from steps; attach one, with paging settings, to a service."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import escalation as domain
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.domain.severity import Severity
from app.services.schedules import find_schedule, find_user
from app.store.models import EscalationPolicy, EscalationStep, EscalationTarget, Service

KEEP = object()  # "leave this setting as it is" for update_service_paging


def _target_row(session: Session, target: domain.Target) -> EscalationTarget:
    if target.kind is domain.TargetKind.USER:
        return EscalationTarget(kind=target.kind.value, user_id=find_user(session, target.ref).id)
    if target.kind is domain.TargetKind.SCHEDULE:
        return EscalationTarget(
            kind=target.kind.value, schedule_id=find_schedule(session, target.ref).id
        )
    # Channels arrive with the notifications work: keep the name, resolve it when firing.
    return EscalationTarget(kind=target.kind.value, channel_name=target.ref)


def create_policy(
    session: Session,
    name: str,
    steps: Sequence[str],
    now: datetime,
    repeat: int = 0,
    repeat_after_minutes: int | None = None,
) -> EscalationPolicy:
    """Create a policy from steps written `MINUTES:KIND:NAME[,KIND:NAME...]`."""
    name = name.strip()
    if not name:
        raise InvalidInput("A policy needs a name.", fields={"name": ["must not be empty"]})
    try:
        policy = domain.Policy(
            tuple(domain.parse_step(step) for step in steps), repeat, repeat_after_minutes
        )
    except domain.PolicyError as error:
        raise InvalidInput(str(error), fields={"steps": [str(error)]}) from None
    if session.scalar(select(EscalationPolicy.id).where(EscalationPolicy.name == name)):
        raise Conflict(f"A policy named {name!r} already exists.")
    row = EscalationPolicy(
        name=name,
        repeat=repeat,
        repeat_after_minutes=repeat_after_minutes,
        created_at=now,
        steps=[
            EscalationStep(
                position=index,
                delay_minutes=step.delay_minutes,
                targets=[_target_row(session, target) for target in step.targets],
            )
            for index, step in enumerate(policy.steps)
        ],
    )
    session.add(row)
    session.flush()
    return row


def target_of(row: EscalationTarget) -> domain.Target:
    kind = domain.TargetKind(row.kind)
    if kind is domain.TargetKind.USER:
        assert row.user is not None
        return domain.Target(kind, row.user.email)
    if kind is domain.TargetKind.SCHEDULE:
        assert row.schedule is not None
        return domain.Target(kind, row.schedule.name)
    return domain.Target(kind, row.channel_name or "")


def as_domain(policy: EscalationPolicy, minute: timedelta = domain.ONE_MINUTE) -> domain.Policy:
    return domain.Policy(
        tuple(
            domain.Step(step.delay_minutes, tuple(target_of(t) for t in step.targets))
            for step in policy.steps
        ),
        policy.repeat,
        policy.repeat_after_minutes,
        minute,
    )


def step_texts(policy: EscalationPolicy) -> list[str]:
    """The steps as the CLI takes them, e.g. `15:user:lead@example.com`."""
    return [
        f"{step.delay_minutes}:" + ",".join(str(target_of(t)) for t in step.targets)
        for step in policy.steps
    ]


def get_policy(session: Session, policy_id: int) -> EscalationPolicy:
    policy = session.get(EscalationPolicy, policy_id)
    if policy is None:
        raise NotFound(f"No escalation policy with id {policy_id}.")
    return policy


def find_policy(session: Session, name: str) -> EscalationPolicy:
    policy = session.scalar(select(EscalationPolicy).where(EscalationPolicy.name == name.strip()))
    if policy is None:
        raise NotFound(f"No escalation policy named {name.strip()!r}.")
    return policy


def list_policies(session: Session) -> list[EscalationPolicy]:
    return list(session.scalars(select(EscalationPolicy).order_by(EscalationPolicy.name)))


def update_service_paging(
    session: Session,
    service: Service,
    policy: EscalationPolicy | object | None = KEEP,
    ack_timeout_minutes: int | object | None = KEEP,
    page_min_severity: str | object = KEEP,
) -> Service:
    """Attach (or detach, with None) a policy; set the ack timeout and paging threshold."""
    if policy is not KEEP:
        service.escalation_policy_id = policy.id if isinstance(policy, EscalationPolicy) else None
    if ack_timeout_minutes is not KEEP:
        if ack_timeout_minutes is not None and (
            not isinstance(ack_timeout_minutes, int) or ack_timeout_minutes < 1
        ):
            raise InvalidInput(
                "The acknowledgement timeout is at least a minute (or none).",
                fields={"ack_timeout_minutes": [">= 1"]},
            )
        service.ack_timeout_minutes = ack_timeout_minutes
    if page_min_severity is not KEEP:
        if page_min_severity not in set(Severity):
            raise InvalidInput(
                "The paging threshold is a severity: critical, error, warning or info.",
                fields={"page_min_severity": ["one of critical, error, warning, info"]},
            )
        service.page_min_severity = str(page_min_severity)
    session.flush()
    return service
