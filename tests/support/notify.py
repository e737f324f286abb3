"""Helpers for the notification tests: channels, a recording fake `send`, outbox reads."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from app.channels.base import ChannelSettings, ChannelTarget, Message, SendResult
from app.extensions import Bridge
from app.jobs.notify import NotificationSender
from app.services import channels
from app.store import queries
from app.store.notify_models import Notification, NotificationAttempt


def make_channel(
    bridge: Bridge,
    service: str = "Payments",
    name: str = "ops",
    kind: str = "webhook",
    **options: Any,
) -> int:
    """A webhook channel (by default) of the service; its id."""
    with bridge.database.transaction() as session:
        target = queries.get_service_by_name(session, service)
        assert target is not None, f"no service {service!r}"
        created = channels.create_channel(
            session,
            bridge.secrets,
            target,
            datetime.now(UTC),
            kind=kind,
            name=name,
            url=options.pop("url", "https://hooks.example.com/bridge" if kind != "email" else None),
            **options,
        )
        return created.channel.id


@dataclass
class FakeSend:
    """A `send` that records each message and answers from a script (then `sent`)."""

    script: list[SendResult] = field(default_factory=list)
    calls: list[tuple[ChannelTarget, Message]] = field(default_factory=list)

    def __call__(
        self, target: ChannelTarget, message: Message, settings: ChannelSettings
    ) -> SendResult:
        self.calls.append((target, message))
        return self.script.pop(0) if self.script else SendResult("sent", status_code=200)

    def types(self) -> list[str]:
        return [message.type for _target, message in self.calls]


def sender(
    bridge: Bridge, send: FakeSend, clock: Clock | None = None, worker: str = "w1"
) -> NotificationSender:
    """The jobs process's sender with `send` for the channels, no jitter, and `clock`
    (by default the real one)."""
    if clock is None:
        return NotificationSender(bridge, send, worker=worker, jitter=lambda: 0.0)
    return NotificationSender(bridge, send, clock=clock, worker=worker, jitter=lambda: 0.0)


def outbox(bridge: Bridge, channel_id: int | None = None) -> list[Notification]:
    with bridge.database.reading() as session:
        query = select(Notification).order_by(Notification.created_at, Notification.id)
        if channel_id is not None:
            query = query.where(Notification.channel_id == channel_id)
        return list(session.scalars(query))


def attempts(bridge: Bridge, notification_id: str) -> list[NotificationAttempt]:
    with bridge.database.reading() as session:
        return list(
            session.scalars(
                select(NotificationAttempt)
                .where(NotificationAttempt.notification_id == notification_id)
                .order_by(NotificationAttempt.id)
            )
        )


def send_sentry(
    client: Any,
    integration: Any,
    action: str = "created",
    issue_id: str = "4512345678",
    *,
    title: str | None = None,
    level: str | None = None,
    at: int | None = None,
) -> dict[str, Any]:
    """One signed Sentry issue webhook (the fixtures in tests/fixtures/sentry, as Sentry
    sends them) for `issue_id`; the bridge's answer."""
    from tests.support.payloads import build, load

    fixture = {
        "created": "integration_issue_created",
        "resolved": "integration_issue_resolved",
        "unresolved": "integration_issue_unresolved",
    }[action]
    _resource, payload = load(fixture)
    issue = payload["data"]["issue"]
    issue["id"] = issue_id
    if title is not None:
        issue["title"] = title
    if level is not None:
        issue["level"] = level
    delivery = build(payload, resource="issue", secret=integration.secret, timestamp=at)
    response = client.post(integration.url, data=delivery.body, headers=delivery.headers)
    assert response.status_code == 202, response.get_json()
    answer: dict[str, Any] = response.get_json()
    return answer


class Clock:
    """A clock the test moves by hand, starting now."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        from datetime import timedelta

        self.now += timedelta(**delta)
        return self.now
