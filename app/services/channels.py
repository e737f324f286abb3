"""Notification channels of a service: create (target encrypted at rest), list, disable."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from app import channels as adapters
from app.channels.base import CHANNEL_KINDS, ChannelTarget
from app.domain.errors import InvalidInput, NotFound
from app.domain.incident import SEVERITY_RANK
from app.domain.notify import DEFAULT_EVENTS, parse_events
from app.store.encryption import SecretBox
from app.store.models import Service
from app.store.notify_models import NotificationChannel

MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class CreatedChannel:
    channel: NotificationChannel
    # The generated webhook signing secret: shown once, never again.
    secret: str | None


def create_channel(
    session: Session,
    secrets: SecretBox,
    service: Service,
    now: datetime,
    *,
    kind: str,
    name: str,
    url: str | None = None,
    recipients: Iterable[str] = (),
    routing_key: str | None = None,
    generate_secret: bool = False,
    min_severity: str = "error",
    events: str | Iterable[str] | None = None,
) -> CreatedChannel:
    """A channel for the service; the target is validated by its adapter, then encrypted."""
    name = (name or "").strip()
    problems: dict[str, list[str]] = {}
    if kind not in CHANNEL_KINDS:
        problems["kind"] = [f"one of {', '.join(CHANNEL_KINDS)}"]
    if not name or len(name) > MAX_NAME_LENGTH:
        problems["name"] = [f"between 1 and {MAX_NAME_LENGTH} characters"]
    if min_severity not in SEVERITY_RANK:
        problems["min_severity"] = [f"one of {', '.join(SEVERITY_RANK)}"]
    if generate_secret and kind != "webhook":
        problems["generate_secret"] = ["only webhook channels sign their messages"]
    try:
        wanted = DEFAULT_EVENTS if events is None else parse_events(events)
        if not wanted:
            problems["events"] = ["name at least one event"]
    except ValueError as error:
        problems["events"] = [str(error)]
    if problems:
        raise InvalidInput("The channel is not valid.", fields=problems)
    # A webhook is always signed (Standard Webhooks): without --generate-secret it gets a
    # secret all the same, shown once like a generated one.
    secret = adapters.generate_webhook_secret() if generate_secret or kind == "webhook" else None
    target = ChannelTarget(
        kind=kind,
        name=name,
        url=(url or "").strip() or None,
        recipients=tuple(r.strip() for r in recipients if r.strip()),
        routing_key=(routing_key or "").strip() or None,
        secret=secret,
    )
    adapters.validate_target(target)
    config = {
        "url": target.url,
        "recipients": list(target.recipients),
        "routing_key": target.routing_key,
        "secret": target.secret,
    }
    channel = NotificationChannel(
        service_id=service.id,
        kind=kind,
        name=name,
        enabled=True,
        min_severity=min_severity,
        events=",".join(sorted(e.value for e in wanted)),
        config_ciphertext=secrets.encrypt(json.dumps(config)),
        masked=adapters.mask(target),
        created_at=now,
    )
    session.add(channel)
    session.flush()
    return CreatedChannel(channel, secret)


def get_channel(session: Session, channel_id: int) -> NotificationChannel:
    channel = session.get(NotificationChannel, channel_id)
    if channel is None:
        raise NotFound(f"No notification channel with id {channel_id}.")
    return channel


def list_channels(session: Session, service: Service | None = None) -> list[NotificationChannel]:
    query = select(NotificationChannel).order_by(NotificationChannel.id)
    if service is not None:
        query = query.where(NotificationChannel.service_id == service.id)
    return list(session.scalars(query))


def set_channel_enabled(session: Session, channel_id: int, enabled: bool) -> NotificationChannel:
    channel = get_channel(session, channel_id)
    channel.enabled = enabled
    session.flush()
    return channel
