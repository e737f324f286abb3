"""Sentry UI components (alert-rule action, issue link, select options) as use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.incident import IncidentEvent
from app.domain.lifecycle import Status
from app.sentry.errors import UiRequestRefused
from app.services.notification_documents import incident_fields
from app.services.notifications import queue_notifications
from app.services.sentry_jobs import enqueue_enrichment
from app.store import queries
from app.store.models import Incident, Integration, SentryInstallation, Service, TimelineEntry

MAX_OPTIONS = 50


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _text(value: Any) -> str | None:
    if isinstance(value, bool) or value is None:
        return None
    text = str(value).strip()
    return text or None


def settings_fields(fields: Any) -> dict[str, str]:
    """Alert-rule settings arrive as [{"name", "value"}]; issue-link fields as a dict."""
    if isinstance(fields, dict):
        pairs = ((str(k), _text(v)) for k, v in fields.items())
        return {k: v for k, v in pairs if v is not None}
    found: dict[str, str] = {}
    for item in fields if isinstance(fields, list) else []:
        item = _dict(item)
        name, value = _text(item.get("name")), _text(item.get("value"))
        if name and value is not None:
            found[name] = value
    return found


def _service(
    session: Session, chosen: str | None, installation: SentryInstallation | None
) -> Service:
    if chosen:
        service = queries.get_service_by_name(session, chosen)
        if service is None:
            raise UiRequestRefused(f"The bridge has no service {chosen!r}; pick one from the list.")
        return service
    integration = (
        session.get(Integration, installation.integration_id)
        if installation is not None and installation.integration_id
        else None
    )
    if integration is None:
        raise UiRequestRefused("Choose the service whose on-call should get these incidents.")
    return integration.service


def validate_alert_rule_settings(
    session: Session, fields: Any, installation: SentryInstallation | None
) -> Service:
    """The alert-rule action's settings name a service the bridge has."""
    return _service(session, settings_fields(fields).get("service"), installation)


@dataclass(frozen=True)
class LinkedIssue:
    incident: Incident
    service: Service


def link_issue(
    session: Session,
    action: str,
    body: dict[str, Any],
    installation: SentryInstallation | None,
    now: datetime,
) -> LinkedIssue:
    """Issue link: create an incident for the Sentry issue, or link it to an existing one."""
    issue_id = _text(body.get("issueId"))
    if issue_id is None:
        raise UiRequestRefused("The request names no Sentry issue (issueId).")
    fields = settings_fields(body.get("fields"))
    web_url = _text(body.get("webUrl"))
    project = _text(_dict(body.get("project")).get("slug"))
    actor = _text(_dict(body.get("actor")).get("name")) or "Sentry user"
    if action == "link":
        reference = (fields.get("incident") or "").lstrip("#")
        if not reference.isdigit():
            raise UiRequestRefused("Pick the incident to link this issue to.")
        incident = session.get(Incident, int(reference))
        if incident is None:
            raise UiRequestRefused(f"The bridge has no incident #{reference}.")
        note = f"Linked to Sentry issue {issue_id} by {actor}"
    else:
        service = _service(session, fields.get("service"), installation)
        incident = _open_or_create(session, service, issue_id, fields, project, now)
        note = f"Sentry issue {issue_id} linked from Sentry by {actor}"
    incident.sentry_issue_id = incident.sentry_issue_id or issue_id
    incident.sentry_issue_url = incident.sentry_issue_url or web_url
    incident.sentry_project = incident.sentry_project or project
    incident.updated_at = now
    session.add(
        TimelineEntry(
            incident_id=incident.id,
            at=now,
            kind="note",
            actor=f"{actor} (Sentry)",
            message=note,
            data={"sentry_issue_id": issue_id, "web_url": web_url},
        )
    )
    if installation is not None and installation.integration_id:
        enqueue_enrichment(
            session,
            incident.id,
            incident.sentry_issue_id,
            installation.integration_id,
            installation.uuid,
            now,
        )
    session.flush()
    return LinkedIssue(incident, incident.service)


def _open_or_create(
    session: Session,
    service: Service,
    issue_id: str,
    fields: dict[str, str],
    project: str | None,
    now: datetime,
) -> Incident:
    key = f"sentry-{issue_id}"
    for _attempt in range(3):
        existing = queries.find_open_incident(session, service.id, key)
        if existing is not None:
            return existing
        try:
            with session.begin_nested():
                incident = Incident.opened(
                    service_id=service.id,
                    dedup_key=key,
                    title=(fields.get("title") or f"Sentry issue {issue_id}")[:1000],
                    source=f"Sentry - {project}" if project else "Sentry",
                    severity="error",
                    at=now,
                    created_at=now,
                )
                session.add(incident)
                session.flush()
                session.add(
                    TimelineEntry(
                        incident_id=incident.id,
                        at=now,
                        kind="triggered",
                        actor="Sentry issue link",
                        message=fields.get("description") or "Created from a Sentry issue link",
                    )
                )
                session.flush()
            # A new incident, like one from a webhook: its `triggered` event pages people.
            queue_notifications(
                session.connection(), incident_fields(incident), (IncidentEvent.TRIGGERED,), now
            )
            return incident
        except IntegrityError:
            continue  # another request opened it meanwhile: link to that one
    raise UiRequestRefused("Could not create the incident; try again.")


def service_options(session: Session, query: str | None) -> list[dict[str, str]]:
    """Select options: the bridge's services, filtered by what the user typed."""
    statement = select(Service).order_by(Service.name).limit(MAX_OPTIONS)
    if query:
        pattern = f"%{query.strip()}%"
        statement = statement.where(or_(Service.name.ilike(pattern), Service.slug.ilike(pattern)))
    return [{"label": s.name, "value": s.slug} for s in session.scalars(statement)]


def incident_options(
    session: Session, installation: SentryInstallation | None, query: str | None
) -> list[dict[str, str]]:
    """Select options: open incidents (of the installation's service, when it has one)."""
    statement = (
        select(Incident)
        .where(Incident.status != Status.RESOLVED.value)
        .order_by(Incident.id.desc())
        .limit(MAX_OPTIONS)
    )
    integration = (
        session.get(Integration, installation.integration_id)
        if installation is not None and installation.integration_id
        else None
    )
    if integration is not None:
        statement = statement.where(Incident.service_id == integration.service_id)
    if query:
        text = query.strip().lstrip("#")
        conditions: list[ColumnElement[bool]] = [Incident.title.ilike(f"%{text}%")]
        if text.isdigit():
            conditions.append(Incident.id == int(text))
        statement = statement.where(or_(*conditions))
    return [
        {"label": f"#{i.id} {i.title}"[:200], "value": str(i.id)}
        for i in session.scalars(statement)
    ]


def find_installation(session: Session, uuid: str | None) -> SentryInstallation | None:
    if not uuid:
        return None
    return session.scalar(select(SentryInstallation).where(SentryInstallation.uuid == uuid))
