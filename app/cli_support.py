"""Helpers of the `bridge` commands: aligned tables, and lookups whose "not found" names
what does exist (the CLI is run by an operator on the host; the API never lists these)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import click
from sqlalchemy.orm import Session

from app.domain.errors import NotFound
from app.services import catalog
from app.services.accounts import find_user, list_users
from app.store.models import Integration, User

# How many valid names an error lists before it says how many more there are.
_LISTED = 20


def print_table(rows: Iterable[dict[str, Any]], columns: Sequence[tuple[str, str]]) -> None:
    """Aligned columns under a header; `columns` are (header, key). None prints as "—"."""
    cells = [[_cell(row.get(key)) for _, key in columns] for row in rows]
    headers = [header for header, _ in columns]
    widths = [max([len(h), *(len(line[i]) for line in cells)]) for i, h in enumerate(headers)]
    for line in [headers, *cells]:
        click.echo(
            "  ".join(text.ljust(width) for text, width in zip(line, widths, strict=True)).rstrip()
        )


def _cell(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def name_list(names: Sequence[str], empty: str) -> str:
    if not names:
        return empty
    shown = ", ".join(names[:_LISTED])
    more = len(names) - _LISTED
    return f"{shown} and {more} more" if more > 0 else shown


def integration_label(integration: Integration) -> str:
    """How an integration is told apart from others of the same name."""
    return f"{integration.name} — {integration.service.name} ({integration.id[:6]}…)"


def find_integration(session: Session, integration_id: str) -> Integration:
    try:
        return catalog.get_integration(session, integration_id)
    except NotFound:
        # Id prefixes only: an id is the credential of an unsigned integration, and this
        # message may end up in a CI log. `bridge integration list` shows them whole.
        known = [integration_label(item) for item in catalog.list_integrations(session)]
        listed = name_list(known, "none yet (bridge integration create)")
        raise NotFound(
            f"No integration with id {integration_id!r}; integrations: {listed} "
            "(full ids: bridge integration list)."
        ) from None


def find_person(session: Session, email: str) -> User:
    try:
        return find_user(session, email)
    except NotFound as error:
        known = [person.email for person in list_users(session)]
        listed = name_list(known, "none yet (bridge user create EMAIL)")
        raise NotFound(f"{error.message.rstrip('.')}; users: {listed}.") from None
