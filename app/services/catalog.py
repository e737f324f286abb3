"""Services and integrations: create them, and manage an integration's signing secret."""

from __future__ import annotations

import re
import secrets as random_source
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.errors import Conflict, InvalidInput, NotFound
from app.store import queries
from app.store.encryption import SecretBox
from app.store.models import Incident, Integration, Service

if TYPE_CHECKING:
    from app.services.incidents import IncidentFilters

INTEGRATION_ID_BYTES = 24  # 192 bits: the credential for integrations without a secret
GENERATED_SECRET_BYTES = 32


def new_integration_id() -> str:
    """192 random bits, URL-safe, starting with a letter or digit.

    An id starting with "-" reads as an option to `bridge integration rotate-secret ID`
    (and to most shells' tools); redrawing those costs under two bits of the 192.
    """
    while True:
        candidate = random_source.token_urlsafe(INTEGRATION_ID_BYTES)
        if candidate[0].isalnum():
            return candidate


def generate_secret() -> str:
    """A signing secret for senders that sign the way the bridge tells them: 64 hex chars."""
    return random_source.token_hex(GENERATED_SECRET_BYTES)


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.strip().lower()).strip("-")
    return slug or "service"


def create_service(
    session: Session, name: str, now: datetime, reopen_window_minutes: int = 30
) -> Service:
    """Create a service; its name and slug must be new."""
    name = name.strip()
    if not name:
        raise InvalidInput("A service needs a name.", fields={"name": ["must not be empty"]})
    if reopen_window_minutes < 0:
        raise InvalidInput(
            "The reopen window cannot be negative.",
            fields={"reopen_window_minutes": ["must be 0 or more"]},
        )
    slug = slugify(name)
    if session.scalar(select(Service.id).where((Service.name == name) | (Service.slug == slug))):
        raise Conflict(f"A service named {name!r} (slug {slug!r}) already exists.")
    service = Service(
        name=name, slug=slug, reopen_window_minutes=reopen_window_minutes, created_at=now
    )
    session.add(service)
    session.flush()
    return service


def find_service(session: Session, name_or_slug: str) -> Service:
    service = queries.get_service_by_name(session, name_or_slug)
    if service is None:
        # The caller is an operator at the CLI: name what does exist, so a typo is obvious.
        names = [found.name for found in list_services(session)]
        known = ", ".join(names) if names else "none yet (bridge service create NAME)"
        raise NotFound(f"No service named {name_or_slug!r}; services: {known}.")
    return service


@dataclass(frozen=True)
class CreatedIntegration:
    integration: Integration
    secret: str | None  # shown once, at creation, never again


def create_integration(
    session: Session,
    box: SecretBox,
    service: Service,
    now: datetime,
    name: str | None = None,
    secret: str | None = None,
    generate: bool = False,
) -> CreatedIntegration:
    """Create a Sentry integration; a pasted or generated secret is stored encrypted."""
    if secret is not None and generate:
        raise InvalidInput("Give a secret or ask for one to be generated, not both.")
    if secret is not None and not secret.strip():
        raise InvalidInput("The signing secret must not be empty.", fields={"secret": ["empty"]})
    chosen = generate_secret() if generate else (secret.strip() if secret else None)
    integration = Integration(
        id=new_integration_id(),
        service_id=service.id,
        kind="sentry",
        name=(name or f"{service.name} Sentry").strip(),
        enabled=True,
        secret_ciphertext=box.encrypt(chosen) if chosen else None,
        created_at=now,
        updated_at=now,
    )
    session.add(integration)
    session.flush()
    return CreatedIntegration(integration, chosen)


def get_integration(session: Session, integration_id: str) -> Integration:
    integration = queries.get_integration(session, integration_id)
    if integration is None:
        raise NotFound(f"No integration with id {integration_id!r}.")
    return integration


def rotate_secret(
    session: Session,
    box: SecretBox,
    integration_id: str,
    now: datetime,
    grace: timedelta,
    new_secret: str | None = None,
) -> str:
    """Replace the signing secret; the old one stays valid for `grace`. Returns the new one."""
    integration = get_integration(session, integration_id)
    if new_secret is not None and not new_secret.strip():
        raise InvalidInput("The signing secret must not be empty.", fields={"secret": ["empty"]})
    chosen = new_secret.strip() if new_secret else generate_secret()
    if integration.secret_ciphertext is not None and grace > timedelta(0):
        integration.previous_secret_ciphertext = integration.secret_ciphertext
        integration.previous_secret_expires_at = now + grace
    else:
        integration.previous_secret_ciphertext = None
        integration.previous_secret_expires_at = None
    integration.secret_ciphertext = box.encrypt(chosen)
    integration.updated_at = now
    session.flush()
    return chosen


def set_enabled(session: Session, integration_id: str, enabled: bool, now: datetime) -> Integration:
    """Enable or disable an integration; a disabled one records deliveries but applies none."""
    integration = get_integration(session, integration_id)
    integration.enabled = enabled
    integration.updated_at = now
    session.flush()
    return integration


def all_incidents(
    session: Session,
    service: Service | None = None,
    status: str | None = None,
    filters: IncidentFilters | None = None,
) -> list[Incident]:
    """Every incident (of one service, in one status), oldest first and unpaged: what
    `bridge incident list` prints. The API and pages page through incidents.list_incidents."""
    query = select(Incident).order_by(Incident.id)
    if filters is not None:  # search, assignee, test alerts: as the API reads them
        # Imported here: app.services.incidents imports write_back, which imports this.
        from app.services.incidents import filter_conditions

        query = query.where(*filter_conditions(session, filters))
    if service is not None:
        query = query.where(Incident.service_id == service.id)
    if status is not None:
        query = query.where(Incident.status == status)
    return list(session.scalars(query))


def list_services(session: Session) -> list[Service]:
    return list(session.scalars(select(Service).order_by(Service.name)))


def get_service(session: Session, service_id: int) -> Service:
    service = session.get(Service, service_id)
    if service is None:
        raise NotFound(f"No service with id {service_id}.")
    return service


def update_service(
    session: Session,
    service_id: int,
    name: str | None = None,
    reopen_window_minutes: int | None = None,
) -> Service:
    """Rename a service or change its reopen window."""
    service = get_service(session, service_id)
    if name is not None and name.strip() != service.name:
        name = name.strip()
        slug = slugify(name)
        clash = session.scalar(
            select(Service.id).where(
                ((Service.name == name) | (Service.slug == slug)) & (Service.id != service.id)
            )
        )
        if clash is not None:
            raise Conflict(f"A service named {name!r} (slug {slug!r}) already exists.")
        service.name, service.slug = name, slug
    if reopen_window_minutes is not None:
        service.reopen_window_minutes = reopen_window_minutes
    session.flush()
    return service


def list_integrations(session: Session, service_id: int | None = None) -> list[Integration]:
    query = select(Integration).order_by(Integration.created_at, Integration.id)
    if service_id is not None:
        query = query.where(Integration.service_id == service_id)
    return list(session.scalars(query))


def update_integration(
    session: Session,
    integration_id: str,
    now: datetime,
    name: str | None = None,
    enabled: bool | None = None,
) -> Integration:
    """Rename, enable or disable an integration."""
    integration = get_integration(session, integration_id)
    if name is not None:
        if not name.strip():
            raise InvalidInput("The name must not be empty.", fields={"name": ["empty"]})
        integration.name = name.strip()
    if enabled is not None:
        integration.enabled = enabled
    integration.updated_at = now
    session.flush()
    return integration


def remove_secret(session: Session, integration_id: str, now: datetime) -> Integration:
    """Stop requiring signatures: the unguessable id becomes the only credential."""
    integration = get_integration(session, integration_id)
    integration.secret_ciphertext = None
    integration.previous_secret_ciphertext = None
    integration.previous_secret_expires_at = None
    integration.updated_at = now
    session.flush()
    return integration


def integration_secret(session: Session, box: SecretBox, integration_id: str) -> str | None:
    """The current signing secret in clear, for the bridge's own signed test alert."""
    integration = get_integration(session, integration_id)
    if integration.secret_ciphertext is None:
        return None
    return box.decrypt(integration.secret_ciphertext)
