"""The `bridge` command: database, services, integrations, incidents, and the jobs process."""

from __future__ import annotations

import json
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from app.domain.errors import BridgeError
from app.extensions import Bridge
from app.services import catalog
from app.web.schemas import IncidentSchema, IntegrationSchema, ServiceSchema
from config.settings import load_settings

T = TypeVar("T")


def _bridge() -> Bridge:
    return Bridge(load_settings())


def _base_url(bridge: Bridge) -> str:
    settings = bridge.settings
    return settings.public_base_url or f"http://{settings.host}:{settings.port}"


def _print(document: Any) -> None:
    click.echo(json.dumps(document, indent=2, ensure_ascii=False))


def _run(work: Callable[[Bridge], T]) -> T:
    """Run one command's work; a BridgeError becomes a one-line message and exit status 1."""
    bridge = _bridge()
    try:
        return work(bridge)
    except BridgeError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(1)
    finally:
        bridge.database.dispose()


@click.group()
def main() -> None:
    """Sentry Incident Bridge administration."""


@main.group()
def db() -> None:
    """The database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply all migrations to DATABASE_URL."""
    from app.store.migrate import upgrade

    upgrade(load_settings().database_url)
    click.echo("database is up to date", err=True)


@main.group()
def service() -> None:
    """Services: what is on call."""


@service.command("create")
@click.argument("name")
@click.option("--reopen-window-minutes", type=click.IntRange(min=0), default=30, show_default=True)
def service_create(name: str, reopen_window_minutes: int) -> None:
    """Create a service and print it as JSON."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            created = catalog.create_service(
                session, name, datetime.now(UTC), reopen_window_minutes
            )
            _print(ServiceSchema().dump(created))

    _run(work)


@main.group()
def integration() -> None:
    """Inbound Sentry endpoints of a service."""


@integration.command("create")
@click.option("--service", "service_name", required=True, help="Service name or slug.")
@click.option("--name", default=None)
@click.option("--secret", default=None, help="Paste Sentry's Client Secret.")
@click.option("--generate-secret", is_flag=True, help="Let the bridge make a secret.")
def integration_create(
    service_name: str, name: str | None, secret: str | None, generate_secret: bool
) -> None:
    """Create an integration; prints its id, webhook URL and (once) its secret."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            target = catalog.find_service(session, service_name)
            created = catalog.create_integration(
                session,
                bridge.secrets,
                target,
                datetime.now(UTC),
                name=name,
                secret=secret,
                generate=generate_secret,
            )
            document = IntegrationSchema(_base_url(bridge)).dump(created.integration)
            if created.secret is not None:
                document["secret"] = created.secret
            _print(document)

    _run(work)


@integration.command("rotate-secret")
@click.argument("integration_id")
@click.option("--secret", default=None, help="The new secret (Sentry's Client Secret).")
def integration_rotate_secret(integration_id: str, secret: str | None) -> None:
    """Replace the signing secret; the old one stays valid for BRIDGE_SECRET_GRACE_SECONDS."""

    def work(bridge: Bridge) -> None:
        now = datetime.now(UTC)
        grace = timedelta(seconds=bridge.settings.secret_grace_seconds)
        with bridge.database.transaction() as session:
            new_secret = catalog.rotate_secret(
                session, bridge.secrets, integration_id, now, grace, new_secret=secret
            )
            document = IntegrationSchema(_base_url(bridge)).dump(
                catalog.get_integration(session, integration_id)
            )
            document["secret"] = new_secret
            document["previous_secret_valid_until"] = (now + grace).isoformat()
            _print(document)

    _run(work)


def _set_enabled(integration_id: str, enabled: bool) -> None:
    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            changed = catalog.set_enabled(session, integration_id, enabled, datetime.now(UTC))
            _print(IntegrationSchema(_base_url(bridge)).dump(changed))

    _run(work)


@integration.command("disable")
@click.argument("integration_id")
def integration_disable(integration_id: str) -> None:
    """Stop applying deliveries (they are still recorded, answered 403)."""
    _set_enabled(integration_id, False)


@integration.command("enable")
@click.argument("integration_id")
def integration_enable(integration_id: str) -> None:
    """Apply deliveries again."""
    _set_enabled(integration_id, True)


@main.group()
def incident() -> None:
    """Incidents."""


@incident.command("list")
@click.option("--service", "service_name", default=None)
@click.option(
    "--status", type=click.Choice(["triggered", "acknowledged", "resolved"]), default=None
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def incident_list(service_name: str | None, status: str | None, as_json: bool) -> None:
    """List incidents, oldest first."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            target = catalog.find_service(session, service_name) if service_name else None
            found = catalog.all_incidents(session, target, status)
            documents = IncidentSchema(many=True).dump(found)
        if as_json:
            _print(documents)
            return
        for item in documents:
            click.echo(
                f"{item['id']:>6}  {item['status']:<12} {item['severity']:<8} "
                f"x{item['event_count']:<5} {item['dedup_key']:<28} {item['title']}"
            )

    _run(work)


@main.group()
def user() -> None:
    """People who work incidents."""


@user.command("create")
@click.argument("email")
@click.option("--admin", "is_admin", is_flag=True, help="Admin role (default: responder).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_create(email: str, is_admin: bool, password_stdin: bool) -> None:
    """Create a user; without --password-stdin a password is generated and printed once."""
    from app.services.accounts import Role, create_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else secrets.token_urlsafe(18)

    def work(bridge: Bridge) -> None:
        role = Role.ADMIN if is_admin else Role.RESPONDER
        with bridge.database.transaction() as session:
            created = create_user(session, email, password, role, datetime.now(UTC))
            document = {"id": created.id, "email": created.email, "role": created.role}
        if not password_stdin:
            document["password"] = password
        _print(document)

    _run(work)


@user.command("deactivate")
@click.argument("email")
def user_deactivate(email: str) -> None:
    """Deactivate EMAIL: no login, no API token, and every open browser session ends."""
    _set_active(email, active=False)


@user.command("activate")
@click.argument("email")
def user_activate(email: str) -> None:
    """Let a deactivated EMAIL log in (and use their tokens) again."""
    _set_active(email, active=True)


def _set_active(email: str, active: bool) -> None:
    from app.services.accounts import find_user, set_active

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            changed = set_active(session, find_user(session, email), active)
            _print({"id": changed.id, "email": changed.email, "active": changed.is_active})

    _run(work)


@user.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_set_password(email: str, password_stdin: bool) -> None:
    """Set EMAIL's password (generated and printed once unless --password-stdin); every
    open browser session of theirs ends."""
    from app.services.accounts import change_password, find_user

    password = sys.stdin.readline().rstrip("\n") if password_stdin else secrets.token_urlsafe(18)

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            changed = change_password(session, find_user(session, email), password)
            document = {"id": changed.id, "email": changed.email}
        if not password_stdin:
            document["password"] = password
        _print(document)

    _run(work)


@main.group()
def token() -> None:
    """Personal API tokens."""


@token.command("list")
@click.argument("email", required=False)
def token_list(email: str | None) -> None:
    """List API tokens (of EMAIL, when given): ids, names, use; never the tokens."""
    from app.services.accounts import find_user, list_tokens

    def work(bridge: Bridge) -> None:
        with bridge.database.reading() as session:
            owner = find_user(session, email) if email else None
            _print(
                [
                    {
                        "id": record.id,
                        "email": record.user.email,
                        "name": record.name,
                        "created_at": record.created_at.isoformat(),
                        "last_used_at": _iso(record.last_used_at),
                        "revoked_at": _iso(record.revoked_at),
                    }
                    for record in list_tokens(session, owner)
                ]
            )

    _run(work)


@token.command("revoke")
@click.argument("token_id", type=int)
def token_revoke(token_id: int) -> None:
    """Revoke the API token TOKEN_ID (see `bridge token list`): refused from now on."""
    from app.services.accounts import revoke_token

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            record = revoke_token(session, token_id, datetime.now(UTC))
            _print({"id": record.id, "revoked_at": _iso(record.revoked_at)})

    _run(work)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


@token.command("create")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
def token_create(email: str, name: str) -> None:
    """Issue an API token for EMAIL and print it once (only its hash is kept)."""
    from app.services.accounts import create_token

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            issued = create_token(session, email, name, datetime.now(UTC))
            _print({"id": issued.record.id, "email": email, "name": name, "token": issued.token})

    _run(work)


@main.group()
def spool() -> None:
    """Deliveries kept on local disk during a database outage."""


@spool.command("status")
def spool_status() -> None:
    """How many deliveries wait in the spool, and for how long."""
    bridge = _bridge()
    _print(
        {
            "directory": str(bridge.spool.directory),
            "pending": len(bridge.spool.pending()),
            "oldest_age_seconds": round(bridge.spool.oldest_age_seconds(), 3),
        }
    )


@spool.command("drain")
def spool_drain() -> None:
    """Apply spooled deliveries now, oldest first (the jobs process does this on its own)."""
    from app.jobs.spool import run_spool_drain

    bridge = _bridge()
    report = run_spool_drain(bridge)
    _print(
        {
            "applied": report.applied,
            "already_applied": report.already_applied,
            "remaining": report.remaining,
            "database_unavailable": report.stopped_by_outage,
        }
    )
    if report.stopped_by_outage:
        sys.exit(1)


@main.group()
def jobs() -> None:
    """The background jobs process."""


@jobs.command("run")
def jobs_run() -> None:
    """Run the scheduler (delivery pruning) until stopped."""
    from app.jobs.scheduler import run_scheduler
    from app.web.observability import configure_logging

    bridge = _bridge()
    configure_logging(bridge.settings.log_level, as_json=bridge.settings.log_format == "json")
    run_scheduler(bridge)


# Paging people (SPEC 7): channels, silences and the outbox, in a module of their own.
from app.cli_notify import channel, notification, silence  # noqa: E402

for _group in (channel, silence, notification):
    main.add_command(_group)

# The on-call commands attach themselves to the groups above (schedule, policy, contact,
# service update); imported last because they import this module's groups.
from app import cli_oncall  # noqa: E402, F401
