"""Intent-named queries. Locks are taken where a decision depends on what was read."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, and_, or_, select
from sqlalchemy.orm import Session, joinedload

from app.domain.lifecycle import Status
from app.store.models import Incident, Integration, SentryInstallation, Service


def is_named(name: Any) -> ColumnElement[bool]:
    """The service called `name`, by name or slug (an alert rule may give either)."""
    return or_(Service.name == name, Service.slug == name)


def is_open_incident_of(service_id: Any, dedup_key: Any) -> ColumnElement[bool]:
    """The one unresolved incident of the key in the service (values or bind parameters)."""
    return and_(
        Incident.service_id == service_id,
        Incident.dedup_key == dedup_key,
        Incident.status != Status.RESOLVED.value,
    )


def get_integration(session: Session, integration_id: str) -> Integration | None:
    """The integration with its service, in one query."""
    return session.get(Integration, integration_id, options=[joinedload(Integration.service)])


def get_service_by_name(session: Session, name: str) -> Service | None:
    return session.scalar(select(Service).where(is_named(name)))


def find_open_incident(session: Session, service_id: int, dedup_key: str) -> Incident | None:
    """The one unresolved incident for the key, locked until the transaction ends."""
    return session.scalar(
        select(Incident).where(is_open_incident_of(service_id, dedup_key)).with_for_update()
    )


def services_of_organisation(session: Session, installation: SentryInstallation) -> list[Service]:
    """The services a Sentry installation may send to: those of the bridge integrations
    its organisation has connected (this installation's and the org's other live ones).

    One Sentry organisation must never route alerts or link issues into the services of
    another that installed the same public app.
    """
    if installation.status == "revoked":
        return []
    scope: ColumnElement[bool] = SentryInstallation.id == installation.id
    if installation.org_slug:
        scope = or_(scope, SentryInstallation.org_slug == installation.org_slug)
    connected = select(SentryInstallation.integration_id).where(
        scope, SentryInstallation.status != "revoked"
    )
    fed = select(Integration.service_id).where(Integration.id.in_(connected))
    return list(session.scalars(select(Service).where(Service.id.in_(fed)).order_by(Service.name)))


def find_installation_of(
    session: Session, integration_id: str, uuid: str | None
) -> SentryInstallation | None:
    """The installation `uuid` when it delivers through this integration, else None."""
    if not uuid:
        return None
    return session.scalar(
        select(SentryInstallation).where(
            SentryInstallation.uuid == uuid, SentryInstallation.integration_id == integration_id
        )
    )
