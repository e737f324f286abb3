"""`bridge channel ...`, `bridge silence ...`, `bridge notification ...`: paging people.

Registered on the `bridge` group by app/cli.py; prints JSON like the other commands.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime, timedelta
from types import ModuleType

import click

from app.extensions import Bridge
from app.services import catalog, channels, notification_outbox, silences
from app.web.notify_schemas import (
    ChannelSchema,
    CreatedChannelSchema,
    NotificationSchema,
    SilenceSchema,
)


def _cli() -> ModuleType:
    # app.cli imports this module at its end; its helpers are defined by then.
    from app import cli

    return cli


def _split(text: str | None) -> list[str]:
    return [part.strip() for part in (text or "").split(",") if part.strip()]


@click.group()
def channel() -> None:
    """Notification channels of services (admin)."""


@channel.command("create")
@click.option("--service", "service_name", required=True, help="Service name or slug.")
@click.option(
    "--kind",
    required=True,
    type=click.Choice(["webhook", "slack", "email", "pagerduty", "apprise"]),
)
@click.option("--name", required=True)
@click.option("--url", default=None, help="Webhook, Slack incoming-webhook or Apprise URL.")
@click.option("--to", "recipients", default=None, help="Email addresses, comma-separated.")
@click.option("--routing-key", default=None, help="PagerDuty Events v2 integration key.")
@click.option("--generate-secret", is_flag=True, help="Sign webhooks; the secret is shown once.")
@click.option(
    "--min-severity",
    default="error",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info"]),
)
@click.option("--events", default=None, help="E.g. triggered,reopened,resolved.")
def channel_create(
    service_name: str,
    kind: str,
    name: str,
    url: str | None,
    recipients: str | None,
    routing_key: str | None,
    generate_secret: bool,
    min_severity: str,
    events: str | None,
) -> None:
    """Create a channel; prints it with its masked target (and, once, a generated secret)."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            created = channels.create_channel(
                session,
                bridge.secrets,
                catalog.find_service(session, service_name),
                datetime.now(UTC),
                kind=kind,
                name=name,
                url=url,
                recipients=_split(recipients),
                routing_key=routing_key,
                generate_secret=generate_secret,
                min_severity=min_severity,
                events=_split(events) if events is not None else None,
            )
            document = CreatedChannelSchema().dump(created.channel)
            document["secret"] = created.secret
            _cli()._print(document)

    _cli()._run(work)


@channel.command("list")
@click.option("--service", "service_name", default=None)
def channel_list(service_name: str | None) -> None:
    """List channels (targets masked)."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            target = catalog.find_service(session, service_name) if service_name else None
            _cli()._print(ChannelSchema(many=True).dump(channels.list_channels(session, target)))

    _cli()._run(work)


@channel.command("test")
@click.argument("channel_id", type=int)
def channel_test(channel_id: int) -> None:
    """Queue a test notification; the jobs process sends it."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            queued = notification_outbox.queue_test(
                session, channels.get_channel(session, channel_id), datetime.now(UTC)
            )
            _cli()._print(NotificationSchema().dump(queued))

    _cli()._run(work)


@channel.command("disable")
@click.argument("channel_id", type=int)
def channel_disable(channel_id: int) -> None:
    """Stop sending to a channel."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            changed = channels.set_channel_enabled(session, channel_id, False)
            _cli()._print(ChannelSchema().dump(changed))

    _cli()._run(work)


@click.group()
def silence() -> None:
    """Silences: hold a service's notifications back for a while (never its incidents)."""


@silence.command("create")
@click.option("--service", "service_name", required=True)
@click.option("--minutes", type=click.IntRange(min=1), default=None)
@click.option("--until", "until_text", default=None, help="ISO time with zone, e.g. ...+00:00.")
@click.option("--match", "match_text", default=None, help="Only titles/dedup keys with this.")
@click.option("--reason", required=True)
def silence_create(
    service_name: str,
    minutes: int | None,
    until_text: str | None,
    match_text: str | None,
    reason: str,
) -> None:
    """Create a silence (--minutes N or --until ISO)."""
    if (minutes is None) == (until_text is None):
        raise click.UsageError("give --minutes N or --until ISO (one of them)")
    now = datetime.now(UTC)
    try:
        until = (
            now + timedelta(minutes=minutes)
            if minutes
            else datetime.fromisoformat(until_text or "")
        )
    except ValueError:
        raise click.UsageError(f"--until {until_text!r} is not an ISO time") from None

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            created = silences.create_silence(
                session,
                catalog.find_service(session, service_name),
                now,
                until=until,
                reason=reason,
                created_by=f"cli:{getpass.getuser()}",
                match_text=match_text,
            )
            _cli()._print(SilenceSchema().dump(created))

    _cli()._run(work)


@silence.command("list")
@click.option("--all", "include_ended", is_flag=True, help="Ended silences too.")
def silence_list(include_ended: bool) -> None:
    """List active silences."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            found = silences.list_silences(session, datetime.now(UTC), include_ended)
            _cli()._print(SilenceSchema(many=True).dump(found))

    _cli()._run(work)


@silence.command("end")
@click.argument("silence_id", type=int)
def silence_end(silence_id: int) -> None:
    """End a silence now; what it held back and is still triggered is notified."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            _cli()._print(
                SilenceSchema().dump(silences.end_silence(session, silence_id, datetime.now(UTC)))
            )

    _cli()._run(work)


@click.group()
def notification() -> None:
    """The notification outbox (admin)."""


@notification.command("list")
@click.option(
    "--status", type=click.Choice(["queued", "sending", "sent", "failed", "held"]), default=None
)
def notification_list(status: str | None) -> None:
    """Recent notifications, newest first."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            found = notification_outbox.list_notifications(session, status)
            _cli()._print(NotificationSchema(many=True).dump(found))

    _cli()._run(work)


@notification.command("retry")
@click.argument("notification_id")
def notification_retry(notification_id: str) -> None:
    """Send a failed notification again (same id)."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            retried = notification_outbox.retry_failed(session, notification_id, datetime.now(UTC))
            _cli()._print(NotificationSchema().dump(retried))

    _cli()._run(work)
