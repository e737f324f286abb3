"""Who an escalation step pages: a policy's targets (a person, a schedule's person on call,
a channel) resolved to the contact methods and channels to notify, with why not."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import escalation as domain
from app.services import schedules
from app.services.contacts import masked_target, pageable_methods
from app.store.models import EscalationTarget, Incident
from app.store.notify_models import NotificationChannel


@dataclass(frozen=True)
class PageTarget:
    """One thing to notify for a step: a person (through these methods) or a channel."""

    kind: str  # "user" | "channel"
    email: str | None = None
    user_id: int | None = None
    contact_method_ids: tuple[int, ...] = ()
    channel_name: str | None = None
    via_schedule: str | None = None  # set when the person is paged as on call
    channel_id: int | None = None  # the service's channel of that name
    methods: tuple[str, ...] = ()  # how each contact method is shown ("email a@x")
    # Which step instance pages: filled in by fire_escalation for the sender.
    run: int = 0
    repeat: int = 0
    step_index: int = 0
    reason: str = ""
    fired_at: datetime | None = None


def resolve_target(
    session: Session, target: EscalationTarget, incident: Incident, now: datetime
) -> tuple[list[PageTarget], list[str]]:
    """The things to notify for one target, and why anyone could not be."""
    if target.kind == domain.TargetKind.CHANNEL.value:
        # Policies name channels; each service has its own channel of that name.
        channel = session.scalar(
            select(NotificationChannel).where(
                NotificationChannel.service_id == incident.service_id,
                NotificationChannel.name == target.channel_name,
            )
        )
        if channel is None or not channel.enabled:
            state = "no channel" if channel is None else "only a disabled channel"
            return [], [f"the service has {state} named {target.channel_name}"]
        return [PageTarget("channel", channel_name=channel.name, channel_id=channel.id)], []
    if target.kind == domain.TargetKind.SCHEDULE.value:
        assert target.schedule is not None
        on_call = schedules.who_is_on_call(target.schedule, now)
        if on_call.person is None:
            return [], [f"nobody is on call for schedule {target.schedule.name}"]
        user = schedules.find_user(session, on_call.person)
        via = target.schedule.name
    else:
        assert target.user is not None
        user, via = target.user, None
    methods = pageable_methods(session, user.id)
    if not methods:
        return [], [f"{user.email} has no tested or verified contact method"]
    return [
        PageTarget(
            "user",
            email=user.email,
            user_id=user.id,
            contact_method_ids=tuple(m.id for m in methods),
            via_schedule=via,
            methods=tuple(f"{m.kind} {masked_target(m)}" for m in methods),
        )
    ], []


def described(target: PageTarget) -> str:
    """`a@x (on call for primary; email a@x, apprise ntfy://…)`, `channel ops-slack`."""
    if target.kind == "channel":
        return f"channel {target.channel_name}"
    how = "; ".join(
        part
        for part in (
            f"on call for {target.via_schedule}" if target.via_schedule else "",
            ", ".join(target.methods),
        )
        if part
    )
    return f"{target.email} ({how})" if how else str(target.email)
