"""The `bridge` command: database, services, integrations, incidents, and the jobs process."""

from __future__ import annotations

import getpass
import json
import secrets
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click

from app.cli_support import find_integration, find_person, print_table
from app.domain.errors import BridgeError, Conflict
from app.extensions import Bridge
from app.jobs.catalogue import jobs_help
from app.served_url import served_base_url
from app.services import accounts, catalog, incidents
from app.services.incidents import SORTS as LIST_SORTS
from app.services.incidents import IncidentFilters
from app.web.schemas import IncidentSchema, IntegrationSchema, ServiceSchema
from config.settings import load_settings

T = TypeVar("T")


def _bridge() -> Bridge:
    return Bridge(load_settings())


def _base_url(bridge: Bridge) -> str:
    """BRIDGE_PUBLIC_URL, else where the running server listens (app/served_url.py)."""
    return served_base_url(bridge.settings).url


def _note_if_unreachable(bridge: Bridge) -> None:
    note = served_base_url(bridge.settings).loopback_note()
    if note is not None:
        click.echo(f"note: {note}", err=True)


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


def _given_secret(secret: str | None, secret_stdin: bool) -> str | None:
    """The secret from --secret or from one line of standard input (--secret-stdin)."""
    if secret is not None and secret_stdin:
        raise click.UsageError("Give --secret or --secret-stdin, not both.")
    if not secret_stdin:
        return secret
    line = sys.stdin.readline().rstrip("\r\n")
    if not line.strip():
        raise click.UsageError("--secret-stdin read an empty line: pipe the secret in.")
    return line


@integration.command("create")
@click.option("--service", "service_name", required=True, help="Service name or slug.")
@click.option("--name", default=None)
@click.option("--secret", default=None, help="Paste Sentry's Client Secret (see --secret-stdin).")
@click.option(
    "--secret-stdin",
    is_flag=True,
    help="Read the secret from standard input, so that it stays out of shell history.",
)
@click.option("--generate-secret", is_flag=True, help="Let the bridge make a secret.")
def integration_create(
    service_name: str,
    name: str | None,
    secret: str | None,
    secret_stdin: bool,
    generate_secret: bool,
) -> None:
    """Create an integration; prints its id and webhook URL, and a generated secret once.

    A secret you give (--secret, --secret-stdin) is never printed back.
    """
    given = _given_secret(secret, secret_stdin)

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            target = catalog.find_service(session, service_name)
            created = catalog.create_integration(
                session,
                bridge.secrets,
                target,
                datetime.now(UTC),
                name=name,
                secret=given,
                generate=generate_secret,
            )
            document = IntegrationSchema(_base_url(bridge)).dump(created.integration)
            if generate_secret and created.secret is not None:
                document["secret"] = created.secret
            _print(document)
        _note_if_unreachable(bridge)

    _run(work)


@integration.command("rotate-secret")
@click.argument("integration_id")
@click.option("--secret", default=None, help="The new secret (Sentry's Client Secret).")
@click.option("--secret-stdin", is_flag=True, help="Read the new secret from standard input.")
@click.option(
    "--force",
    is_flag=True,
    help="Set a secret on an integration that has none (its unsigned senders then fail).",
)
def integration_rotate_secret(
    integration_id: str, secret: str | None, secret_stdin: bool, force: bool
) -> None:
    """Replace the signing secret; the old one stays valid for BRIDGE_SECRET_GRACE_SECONDS.

    Without --secret or --secret-stdin a secret is generated and printed once; a secret
    you give is never printed back. An integration without a secret is refused unless
    --force: from then on every delivery must be signed.
    """
    given = _given_secret(secret, secret_stdin)

    def work(bridge: Bridge) -> None:
        now = datetime.now(UTC)
        grace = timedelta(seconds=bridge.settings.secret_grace_seconds)
        with bridge.database.transaction() as session:
            target = find_integration(session, integration_id)
            had_secret = target.secret_ciphertext is not None
            if not had_secret and not force:
                raise Conflict(
                    f"Integration {target.name!r} has no signing secret, so its senders do "
                    "not sign: a secret now would refuse every unsigned delivery (401). To "
                    "require signatures from now on, run again with --force (with Sentry's "
                    "Client Secret in --secret-stdin)."
                )
            new_secret = catalog.rotate_secret(
                session, bridge.secrets, integration_id, now, grace, new_secret=given
            )
            document = IntegrationSchema(_base_url(bridge)).dump(target)
            if given is None:
                document["secret"] = new_secret
            if had_secret and grace > timedelta(0):
                document["previous_secret_valid_until"] = (now + grace).isoformat()
            _print(document)

    _run(work)


@integration.command("remove-secret")
@click.argument("integration_id")
def integration_remove_secret(integration_id: str) -> None:
    """Stop requiring signatures: the unguessable webhook URL becomes the only credential."""

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            find_integration(session, integration_id)
            changed = catalog.remove_secret(session, integration_id, datetime.now(UTC))
            _print(IntegrationSchema(_base_url(bridge)).dump(changed))
        click.echo("signatures are no longer checked: keep the webhook URL private", err=True)

    _run(work)


def _set_enabled(integration_id: str, enabled: bool) -> None:
    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            find_integration(session, integration_id)
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
@click.option("--service", "service_name", default=None, help="A service's name or slug.")
@click.option(
    "--status",
    type=click.Choice(["open", "triggered", "acknowledged", "resolved"]),
    default=None,
    help="One status, or open (triggered and acknowledged). Default: all.",
)
@click.option(
    "--sort",
    type=click.Choice(list(LIST_SORTS)),
    default="-id",
    show_default=True,
    help="-id newest first; urgency: triggered, then acknowledged, then resolved, critical "
    "first within each, then newest; -severity critical first; -last_event_at latest event "
    "first; id oldest first.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (in the same order).")
@click.option(
    "--search",
    default=None,
    help="Title, source, dedup key or Sentry short id (CHECKOUT-77), any case; or a whole "
    "Sentry issue id.",
)
@click.option("--assignee", default=None, help="Only incidents assigned to this user (email).")
@click.option("--mine", is_flag=True, help="Only incidents assigned to the --as user.")
@click.option("--as", "as_user", default=None, help="Who you are (email), for --mine.")
@click.option(
    "--test",
    type=click.Choice(["show", "hide", "only"]),
    default="show",
    show_default=True,
    help="The bridge's test alerts: show them, hide them, or list only them.",
)
def incident_list(
    service_name: str | None,
    status: str | None,
    sort: str,
    as_json: bool,
    search: str | None,
    assignee: str | None,
    mine: bool,
    as_user: str | None,
    test: str,
) -> None:
    """List incidents, newest first unless --sort says otherwise."""
    if mine and not as_user:
        raise click.UsageError("--mine needs --as EMAIL: the command line has no login.")

    def work(bridge: Bridge) -> None:
        filters = IncidentFilters(
            status=status,
            service=service_name,
            sort=sort,
            text=(search or "").strip()[:200] or None,
            assignee=as_user if mine else assignee,
            test=test,
        )
        documents: list[dict[str, Any]] = []
        with bridge.database.reading() as session:
            cursor: str | None = None
            while True:
                page = incidents.list_incidents(session, filters, 200, cursor)
                documents.extend(IncidentSchema(many=True).dump(page.items))
                cursor = page.next_cursor
                if cursor is None:
                    break
        if as_json:
            _print(documents)
        elif not documents:
            click.echo("No incidents.")
        else:
            click.echo(_incident_table(documents))

    _run(work)


@incident.command("assign")
@click.argument("incident_id", type=int)
@click.argument("user_email", metavar="USER", required=False)
@click.option("--unassign", is_flag=True, help="Take the incident off whoever has it.")
@click.option(
    "--as", "as_user", default=None, help="Who assigns (email); default cli:<login name>."
)
@click.option("--json", "as_json", is_flag=True, help="Print the incident as JSON.")
def incident_assign(
    incident_id: int, user_email: str | None, unassign: bool, as_user: str | None, as_json: bool
) -> None:
    """Assign incident ID to USER (an email), or --unassign it."""
    if unassign == (user_email is not None):
        raise click.UsageError("Give USER, or --unassign (not both).")

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            actor = accounts.find_user(session, as_user).email if as_user else _cli_actor()
            found = incidents.assign_incident(
                session, incident_id, user_email, actor, datetime.now(UTC)
            )
            document = IncidentSchema().dump(found)
        if as_json:
            _print(document)
        elif document["assignee"]:
            click.echo(f"Incident {incident_id} assigned to {document['assignee']}.")
        else:
            click.echo(f"Incident {incident_id} unassigned.")

    _run(work)


def _cli_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name (a container without a passwd entry)
        return "cli"


def _incident_table(documents: list[dict[str, Any]]) -> str:
    """Aligned columns under a header; the title last, so a long one does not push the rest."""
    headers = ("ID", "STATUS", "SEVERITY", "EVENTS", "LAST EVENT (UTC)", "SERVICE", "DEDUP KEY")
    rows = [
        (
            str(item["id"]),
            item["status"],
            item["severity"],
            str(item["event_count"]),
            _short_time(item["last_event_at"]),
            item["service"],
            item["dedup_key"],
            " ".join(str(item["title"]).split()),
        )
        for item in documents
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(headers)]
    right = {0, 3}  # numbers line up on the right

    def line(cells: tuple[str, ...]) -> str:
        fixed = [
            cell.rjust(widths[i]) if i in right else cell.ljust(widths[i])
            for i, cell in enumerate(cells[: len(headers)])
        ]
        return "  ".join([*fixed, *cells[len(headers) :]]).rstrip()

    return "\n".join([line((*headers, "TITLE")), *(line(row) for row in rows)])


def _short_time(value: str | None) -> str:
    if not value:
        return "-"
    return datetime.fromisoformat(value).astimezone(UTC).strftime("%Y-%m-%d %H:%M")


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
    from app.services.accounts import set_active

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            changed = set_active(session, find_person(session, email), active)
            _print({"id": changed.id, "email": changed.email, "active": changed.is_active})

    _run(work)


@user.command("set-password")
@click.argument("email")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
def user_set_password(email: str, password_stdin: bool) -> None:
    """Set EMAIL's password (generated and printed once unless --password-stdin); every
    open browser session of theirs ends."""
    from app.services.accounts import change_password

    password = sys.stdin.readline().rstrip("\n") if password_stdin else secrets.token_urlsafe(18)

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            changed = change_password(session, find_person(session, email), password)
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
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def token_list(email: str | None, as_json: bool) -> None:
    """List API tokens (of EMAIL, when given), newest first: ids, names, use; never the
    tokens themselves."""
    from app.services.accounts import list_tokens

    def work(bridge: Bridge) -> None:
        with bridge.database.reading() as session:
            owner = find_person(session, email) if email else None
            documents = [
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
        if as_json:
            _print(documents)
            return
        print_table(
            [
                {**row, **_short_times(row, "created_at", "last_used_at", "revoked_at")}
                for row in documents
            ],
            [
                ("ID", "id"),
                ("EMAIL", "email"),
                ("NAME", "name"),
                ("CREATED (UTC)", "created_at"),
                ("LAST USED", "last_used_at"),
                ("REVOKED", "revoked_at"),
            ],
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


def _short_times(row: dict[str, Any], *keys: str) -> dict[str, str | None]:
    """ISO times of a JSON row as a table shows them: to the minute, in UTC."""
    return {
        key: datetime.fromisoformat(row[key]).astimezone(UTC).strftime("%Y-%m-%d %H:%M")
        if row.get(key)
        else None
        for key in keys
    }


@token.command("create")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
def token_create(email: str, name: str) -> None:
    """Issue an API token for EMAIL and print it once (only its hash is kept)."""
    from app.services.accounts import create_token

    def work(bridge: Bridge) -> None:
        with bridge.database.transaction() as session:
            find_person(session, email)
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
            "pending": bridge.spool.pending_deliveries(),
            "oldest_age_seconds": round(bridge.spool.oldest_age_seconds(), 3),
        }
    )


@spool.command("drain")
def spool_drain() -> None:
    """Apply spooled deliveries now, oldest first (the jobs process does this on its own)."""
    from app.jobs.spool_drain import run_spool_drain

    bridge = _bridge()
    report = run_spool_drain(bridge, hold_while_spooling=False)
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


@jobs.command("run", help=jobs_help(), short_help="Run the background jobs until stopped.")
def jobs_run() -> None:
    from app.jobs.scheduler import run_scheduler
    from app.web.observability import configure_logging

    bridge = _bridge()
    configure_logging(bridge.settings.log_level, as_json=bridge.settings.log_format == "json")
    run_scheduler(bridge)


# Paging people (SPEC 7): channels, silences and the outbox, in a module of their own.
from app.cli_notify import channel, notification, silence  # noqa: E402

for _group in (channel, silence, notification):
    main.add_command(_group)

# `service list`, `integration list`, `user list`: a module of their own, same groups.
import app.cli_lists  # noqa: E402, F401

# The on-call commands attach themselves to the groups above (schedule, policy, contact,
# service update); imported last because they import this module's groups.
from app import cli_oncall  # noqa: E402, F401
