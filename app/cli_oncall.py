"""`bridge schedule`, `bridge policy`, `bridge contact` and `bridge service update`.

Times without an offset are read in the schedule's own zone; a bare date is its midnight.
"""

from __future__ import annotations

from datetime import UTC, datetime

import click

from app.cli import _base_url, _print, _run, main, service
from app.extensions import Bridge
from app.services import catalog, contacts, escalation_policies, notification_outbox, schedules
from app.web.oncall_schemas import (
    ContactMethodSchema,
    OnCallSchema,
    OverrideSchema,
    PolicySchema,
    ScheduleSchema,
    ServicePagingSchema,
)

SEVERITIES = ["critical", "error", "warning", "info"]


def _iso(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.strip())
    except ValueError:
        raise click.BadParameter(f"{value!r} is not an ISO 8601 date or time.") from None


@main.group()
def schedule() -> None:
    """On-call schedules: rotations and overrides."""


@schedule.command("create")
@click.argument("name")
@click.option("--timezone", required=True, help="IANA zone, e.g. Europe/Berlin.")
@click.option("--rotation", type=click.Choice(["hourly", "daily", "weekly"]), default=None)
@click.option("--shift-hours", type=click.IntRange(min=1), default=None)
@click.option("--handoff", default=None, help='"mon 09:00" or "09:00", local to the zone.')
@click.option("--members", required=True, help="Emails in rotation order, comma-separated.")
@click.option("--start", default=None, help="ISO date/time; default: now.")
def schedule_create(
    name: str,
    timezone: str,
    rotation: str | None,
    shift_hours: int | None,
    handoff: str | None,
    members: str,
    start: str | None,
) -> None:
    """Create a schedule with one rotation layer; prints it and its feed token."""
    if rotation is None and shift_hours is None:
        rotation = "weekly"

    def work(bridge: Bridge) -> None:
        now = datetime.now(UTC)
        with bridge.database.transaction() as session:
            spec = schedules.layer_spec(
                timezone, members.split(","), now, rotation, shift_hours, handoff, _iso(start)
            )
            created = schedules.create_schedule(session, bridge.secrets, name, timezone, spec, now)
            document = ScheduleSchema().dump(created.schedule)
            document["feed_url"] = (
                f"{_base_url(bridge).rstrip('/')}/calendars/schedules/{created.feed_token}.ics"
            )
            _print(document)

    _run(work)


@schedule.command("override")
@click.argument("name")
@click.option("--user", "email", required=True)
@click.option("--from", "start", required=True, help="ISO date/time.")
@click.option("--until", "end", required=True, help="ISO date/time.")
def schedule_override(name: str, email: str, start: str, end: str) -> None:
    """Let USER cover NAME from --from until --until."""

    def work(bridge: Bridge) -> None:
        now = datetime.now(UTC)
        with bridge.database.transaction() as session:
            found = schedules.find_schedule(session, name)
            starts = schedules.in_zone(_iso(start) or now, found.timezone)
            ends = schedules.in_zone(_iso(end) or now, found.timezone)
            override = schedules.add_override(session, found, email, starts, ends, now)
            _print(OverrideSchema().dump(override))

    _run(work)


@schedule.command("who")
@click.argument("name")
@click.option("--at", "moment", default=None, help="ISO date/time; default: now.")
def schedule_who(name: str, moment: str | None) -> None:
    """Who is on call: {"user", "from", "until"}; user null is a gap."""

    def work(bridge: Bridge) -> None:
        with bridge.database.reading() as session:
            found = schedules.find_schedule(session, name)
            at = schedules.in_zone(_iso(moment) or datetime.now(UTC), found.timezone)
            _print(OnCallSchema().dump(schedules.who_is_on_call(found, at)))

    _run(work)


@main.group()
def policy() -> None:
    """Escalation policies."""


@policy.command("create")
@click.argument("name")
@click.option("--step", "steps", multiple=True, required=True, help='"MINUTES:KIND:NAME"')
@click.option("--repeat", type=click.IntRange(min=0), default=0, show_default=True)
@click.option("--repeat-after-minutes", type=click.IntRange(min=0), default=None)
def policy_create(
    name: str, steps: tuple[str, ...], repeat: int, repeat_after_minutes: int | None
) -> None:
    """Create a policy, e.g. --step 0:schedule:primary --step 15:user:lead@example.com."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            created = escalation_policies.create_policy(
                session, name, steps, datetime.now(UTC), repeat, repeat_after_minutes
            )
            _print(PolicySchema().dump(created))

    _run(work)


@service.command("update")
@click.argument("name")
@click.option("--policy", "policy_name", default=None, help='A policy name; "none" detaches.')
@click.option("--ack-timeout-minutes", type=click.IntRange(min=0), default=None, help="0: none.")
@click.option("--page-min-severity", type=click.Choice(SEVERITIES), default=None)
def service_update(
    name: str,
    policy_name: str | None,
    ack_timeout_minutes: int | None,
    page_min_severity: str | None,
) -> None:
    """Set a service's escalation policy, acknowledgement timeout and paging threshold."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            target = catalog.find_service(session, name)
            changes: dict[str, object] = {}
            if policy_name is not None:
                changes["policy"] = (
                    None
                    if policy_name.lower() == "none"
                    else escalation_policies.find_policy(session, policy_name)
                )
            if ack_timeout_minutes is not None:
                changes["ack_timeout_minutes"] = ack_timeout_minutes or None
            if page_min_severity is not None:
                changes["page_min_severity"] = page_min_severity
            updated = escalation_policies.update_service_paging(session, target, **changes)
            _print(ServicePagingSchema().dump(updated))

    _run(work)


@main.group()
def contact() -> None:
    """How people are reached: their email and Apprise URLs."""


@contact.command("add")
@click.option("--user", "email", required=True)
@click.option("--apprise", "url", required=True, help="e.g. ntfy://ntfy.sh/my-topic")
@click.option("--label", default=None)
def contact_add(email: str, url: str, label: str | None) -> None:
    """Add an Apprise URL (kept encrypted); it pages once tested or verified."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            method = contacts.add_apprise(
                session, bridge.secrets, email, url, datetime.now(UTC), label
            )
            _print(ContactMethodSchema().dump(method))

    _run(work)


@contact.command("list")
@click.option("--user", "email", required=True)
def contact_list(email: str) -> None:
    """A person's contact methods (Apprise URLs masked)."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            person = schedules.find_user(session, email)
            found = contacts.list_methods(session, person, datetime.now(UTC))
            _print(ContactMethodSchema(many=True).dump(found))

    _run(work)


@contact.command("verify")
@click.argument("method_id", type=int)
def contact_verify(method_id: int) -> None:
    """Mark a contact method verified by an admin (at the command line)."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            method = contacts.verify(session, method_id, "cli", datetime.now(UTC))
            _print(ContactMethodSchema().dump(method))

    _run(work)


@contact.command("test")
@click.argument("method_id", type=int)
def contact_test(method_id: int) -> None:
    """Queue a test message to a contact method; once it is sent, the method may be paged."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            method = contacts.get_method(session, method_id)
            queued = notification_outbox.queue_method_test(session, method, datetime.now(UTC))
            _print({"notification_id": queued.id, "contact_method_id": method.id})

    _run(work)
