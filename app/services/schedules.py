"""Schedules: create them, add layers and overrides, ask who is on call, find feed tokens."""

from __future__ import annotations

import hashlib
import secrets as random_source
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain import schedule as domain
from app.domain.errors import Conflict, InvalidInput, NotFound
from app.services.accounts import normalise_email
from app.store.encryption import SecretBox
from app.store.models import (
    Schedule,
    ScheduleLayer,
    ScheduleLayerMember,
    ScheduleOverride,
    User,
)

FEED_TOKEN_BYTES = 24  # 192 bits: the feed URL is the only credential a calendar app has
ROTATIONS = {
    "hourly": (1, domain.ShiftUnit.HOURS),
    "daily": (1, domain.ShiftUnit.DAYS),
    "weekly": (1, domain.ShiftUnit.WEEKS),
}
DEFAULT_HANDOFF = {
    domain.ShiftUnit.HOURS: "00:00",
    domain.ShiftUnit.DAYS: "09:00",
    domain.ShiftUnit.WEEKS: "mon 09:00",
}


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def new_feed_token() -> str:
    return random_source.token_urlsafe(FEED_TOKEN_BYTES)


def find_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"No user with the email {email.strip()!r}.")
    return user


@dataclass(frozen=True)
class LayerSpec:
    """A rotation as asked for: members by email, a shift, a handoff, a start."""

    members: Sequence[str]
    shift_count: int
    shift_unit: domain.ShiftUnit
    handoff: str | None
    starts_at: datetime
    ends_at: datetime | None = None


def shift_of(rotation: str | None, shift_hours: int | None) -> tuple[int, domain.ShiftUnit]:
    """`--rotation weekly` or `--shift-hours 12` as a shift length."""
    if shift_hours is not None:
        if rotation is not None:
            raise InvalidInput("Give a rotation or a shift length in hours, not both.")
        if not 1 <= shift_hours <= domain.MAX_SHIFT_COUNT:
            raise InvalidInput(
                f"A shift lasts 1 to {domain.MAX_SHIFT_COUNT} hours.",
                fields={"shift_hours": [f"1 to {domain.MAX_SHIFT_COUNT}"]},
            )
        return shift_hours, domain.ShiftUnit.HOURS
    if rotation not in ROTATIONS:
        raise InvalidInput(
            "The rotation is hourly, daily or weekly (or give a shift length in hours).",
            fields={"rotation": ["one of hourly, daily, weekly"]},
        )
    return ROTATIONS[rotation]


def _invalid(error: domain.ScheduleError, field: str) -> InvalidInput:
    return InvalidInput(str(error), fields={field: [str(error)]})


def _zone(name: str) -> ZoneInfo:
    try:
        return domain.load_zone(name)
    except domain.ScheduleError as error:
        raise _invalid(error, "timezone") from None


def _layer_row(session: Session, spec: LayerSpec, position: int, zone_name: str) -> ScheduleLayer:
    handoff_text = spec.handoff or DEFAULT_HANDOFF[spec.shift_unit]
    try:
        handoff = domain.parse_handoff(handoff_text)
    except domain.ScheduleError as error:
        raise _invalid(error, "handoff") from None
    members = [find_user(session, email) for email in spec.members]
    try:  # the domain checks what a layer must be; the row only stores it
        domain.Layer(
            tuple(member.email for member in members),
            spec.shift_count,
            spec.shift_unit,
            handoff,
            spec.starts_at,
            spec.ends_at,
        )
    except domain.ScheduleError as error:
        raise _invalid(error, "members" if not members else "layer") from None
    if spec.ends_at is not None and spec.ends_at <= spec.starts_at:
        raise InvalidInput("A layer must end after it starts.", fields={"ends_at": ["too early"]})
    return ScheduleLayer(
        position=position,
        shift_unit=spec.shift_unit.value,
        shift_count=spec.shift_count,
        handoff_weekday=handoff.weekday,
        handoff_time=handoff.at.strftime("%H:%M"),
        starts_at=spec.starts_at,
        ends_at=spec.ends_at,
        members=[
            ScheduleLayerMember(position=index, user_id=member.id)
            for index, member in enumerate(members)
        ],
    )


@dataclass(frozen=True)
class CreatedSchedule:
    schedule: Schedule
    feed_token: str


def create_schedule(
    session: Session, box: SecretBox, name: str, timezone: str, layer: LayerSpec, now: datetime
) -> CreatedSchedule:
    """Create a schedule with its first rotation layer and a secret feed token."""
    name = name.strip()
    if not name:
        raise InvalidInput("A schedule needs a name.", fields={"name": ["must not be empty"]})
    _zone(timezone)
    if session.scalar(select(Schedule.id).where(Schedule.name == name)) is not None:
        raise Conflict(f"A schedule named {name!r} already exists.")
    token = new_feed_token()
    schedule = Schedule(
        name=name,
        timezone=timezone,
        feed_token_hash=token_hash(token),
        feed_token_ciphertext=box.encrypt(token),
        created_at=now,
        layers=[_layer_row(session, layer, 0, timezone)],
    )
    session.add(schedule)
    session.flush()
    return CreatedSchedule(schedule, token)


def add_layer(session: Session, schedule: Schedule, layer: LayerSpec) -> ScheduleLayer:
    """Add a rotation layer above the existing ones (it wins where it is active)."""
    position = max((existing.position for existing in schedule.layers), default=-1) + 1
    row = _layer_row(session, layer, position, schedule.timezone)
    schedule.layers.append(row)
    session.flush()
    return row


def add_override(
    session: Session, schedule: Schedule, email: str, start: datetime, end: datetime, now: datetime
) -> ScheduleOverride:
    """This person covers [start, end); a later override wins over an earlier one."""
    user = find_user(session, email)
    try:
        domain.Override(user.email, start, end)
    except domain.ScheduleError as error:
        raise _invalid(error, "until") from None
    override = ScheduleOverride(user_id=user.id, starts_at=start, ends_at=end, created_at=now)
    schedule.overrides.append(override)
    session.flush()
    return override


def get_schedule(session: Session, schedule_id: int) -> Schedule:
    schedule = session.get(Schedule, schedule_id)
    if schedule is None:
        raise NotFound(f"No schedule with id {schedule_id}.")
    return schedule


def find_schedule(session: Session, name: str) -> Schedule:
    schedule = session.scalar(select(Schedule).where(Schedule.name == name.strip()))
    if schedule is None:
        raise NotFound(f"No schedule named {name.strip()!r}.")
    return schedule


def list_schedules(session: Session) -> list[Schedule]:
    return list(session.scalars(select(Schedule).order_by(Schedule.name)))


def as_domain(schedule: Schedule) -> domain.Schedule:
    """The stored schedule as the pure model, people named by email."""
    return domain.Schedule(
        domain.load_zone(schedule.timezone),
        tuple(
            domain.Layer(
                tuple(member.user.email for member in layer.members),
                layer.shift_count,
                domain.ShiftUnit(layer.shift_unit),
                domain.parse_handoff(
                    layer.handoff_time
                    if layer.handoff_weekday is None
                    else f"{domain.WEEKDAYS[layer.handoff_weekday]} {layer.handoff_time}"
                ),
                layer.starts_at,
                layer.ends_at,
            )
            for layer in schedule.layers
        ),
        tuple(
            domain.Override(override.user.email, override.starts_at, override.ends_at)
            for override in schedule.overrides
        ),
    )


def who_is_on_call(schedule: Schedule, at: datetime) -> domain.OnCall:
    return domain.on_call_at(as_domain(schedule), at)


def schedule_by_feed_token(session: Session, token: str) -> Schedule | None:
    return session.scalar(select(Schedule).where(Schedule.feed_token_hash == token_hash(token)))


def user_by_feed_token(session: Session, token: str) -> User | None:
    return session.scalar(select(User).where(User.feed_token_hash == token_hash(token)))


def user_feed_token(session: Session, box: SecretBox, user: User) -> str:
    """The person's feed token, made on first request (users predate the feed)."""
    if user.feed_token_ciphertext is None:
        token = new_feed_token()
        user.feed_token_hash = token_hash(token)
        user.feed_token_ciphertext = box.encrypt(token)
        session.flush()
        return token
    return box.decrypt(user.feed_token_ciphertext)


def schedules_of(session: Session, user: User) -> list[Schedule]:
    """The schedules the person is a member of or covers an override in."""
    in_layers = (
        select(ScheduleLayer.schedule_id)
        .join(ScheduleLayerMember)
        .where(ScheduleLayerMember.user_id == user.id)
    )
    in_overrides = select(ScheduleOverride.schedule_id).where(ScheduleOverride.user_id == user.id)
    return list(
        session.scalars(
            select(Schedule)
            .where(Schedule.id.in_(in_layers) | Schedule.id.in_(in_overrides))
            .order_by(Schedule.name)
        )
    )


def in_zone(value: datetime, timezone: str) -> datetime:
    """An instant from input: a time without an offset is read in the schedule's zone."""
    if value.tzinfo is None:
        return domain.local_to_utc(value, _zone(timezone))
    return value


def layer_spec(
    timezone: str,
    members: Sequence[str],
    now: datetime,
    rotation: str | None = None,
    shift_hours: int | None = None,
    handoff: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> LayerSpec:
    """A layer from CLI/API input; the start defaults to now (the first handoff after it)."""
    count, unit = shift_of(rotation, shift_hours)
    return LayerSpec(
        [member.strip() for member in members if member.strip()],
        count,
        unit,
        handoff,
        in_zone(start, timezone) if start is not None else now,
        in_zone(end, timezone) if end is not None else None,
    )
