"""`bridge service list`, `bridge integration list` and `bridge user list`.

Aligned columns under a header for people; `--json` for scripts (the same documents the
API gives, plus what a table leaves out).
"""

from __future__ import annotations

import click
from sqlalchemy import func, select

from app.cli import _base_url, _print, _run, integration, service, user
from app.cli_support import print_table
from app.extensions import Bridge
from app.services import catalog
from app.services.accounts import list_users
from app.store.models import Integration
from app.web.schemas import IntegrationSchema, ServiceSchema


@service.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def service_list(as_json: bool) -> None:
    """List services by name, with how many integrations each has."""

    def work(bridge: Bridge) -> None:
        with bridge.database.reading() as session:
            counts = dict(
                session.execute(
                    select(Integration.service_id, func.count()).group_by(Integration.service_id)
                ).all()
            )
            documents = [
                {**ServiceSchema().dump(found), "integrations": counts.get(found.id, 0)}
                for found in catalog.list_services(session)
            ]
        if as_json:
            _print(documents)
            return
        print_table(
            documents,
            [
                ("ID", "id"),
                ("NAME", "name"),
                ("SLUG", "slug"),
                ("REOPEN WINDOW (MIN)", "reopen_window_minutes"),
                ("INTEGRATIONS", "integrations"),
            ],
        )

    _run(work)


@integration.command("list")
@click.option("--service", "service_name", default=None, help="Only this service's.")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (with webhook URLs).")
def integration_list(service_name: str | None, as_json: bool) -> None:
    """List integrations, oldest first: id, service, name, enabled, signed."""

    def work(bridge: Bridge) -> None:
        with bridge.database.reading() as session:
            target = catalog.find_service(session, service_name) if service_name else None
            found = catalog.list_integrations(session, target.id if target else None)
            documents = IntegrationSchema(_base_url(bridge), many=True).dump(found)
        if as_json:
            _print(documents)
            return
        print_table(
            documents,
            [
                ("ID", "id"),
                ("SERVICE", "service"),
                ("NAME", "name"),
                ("ENABLED", "enabled"),
                ("SIGNED", "has_secret"),
            ],
        )

    _run(work)


@user.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list.")
def user_list(as_json: bool) -> None:
    """List people by email: role and whether they may log in."""

    def work(bridge: Bridge) -> None:
        with bridge.database.reading() as session:
            documents = [
                {
                    "id": person.id,
                    "email": person.email,
                    "role": person.role,
                    "active": person.is_active,
                    "created_at": person.created_at.isoformat(),
                }
                for person in list_users(session)
            ]
        if as_json:
            _print(documents)
            return
        print_table(
            documents,
            [("ID", "id"), ("EMAIL", "email"), ("ROLE", "role"), ("ACTIVE", "active")],
        )

    _run(work)
