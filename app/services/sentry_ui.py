"""Sentry UI components (alert-rule action, issue link, select options) as use cases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.alerts import dedup_key
from app.domain.incident import IncidentEvent
from app.domain.links import plain_web_url
from app.domain.payload_values import MAX_ID_LENGTH, settings_values
from app.domain.payload_values import mapping as _dict
from app.domain.payload_values import text as _text
from app.sentry.errors import UiRequestRefused
from app.services.notification_documents import incident_fields
from app.services.notifications import queue_notifications
from app.services.sentry_jobs import enqueue_enrichment
from app.store import incidents, installations, queries
from app.store.models import Incident, Integration, SentryInstallation, Service, TimelineEntry

MAX_OPTIONS = 50


MAX_INCIDENT_ID = 2**31 - 1  # the INTEGER column


def incident_number(text: str | None) -> int | None:
    """An incident id typed by a person (`42`, `#42`): ASCII digits within the column's
    range only, so `²`, `٤٢` or a 20-digit number is "no such incident", never a 500."""
    digits = (text or "").strip().lstrip("#")
    if not digits or not digits.isascii() or not digits.isdigit() or len(digits) > 10:
        return None
    number = int(digits)
    return number if 0 < number <= MAX_INCIDENT_ID else None


def _allowed_services(installation: SentryInstallation | None, session: Session) -> list[Service]:
    """The services this installation's organisation may see and use; refuses without one.

    UI components are signed with the public app's secret, shared by every organisation
    that installed it, so the installation is what tells them apart.
    """
    if installation is None:
        raise UiRequestRefused(
            "The bridge does not know this Sentry installation (installationId): connect "
            "the organisation to the bridge first."
        )
    return queries.services_of_organisation(session, installation)


def _service(
    session: Session, chosen: str | None, installation: SentryInstallation | None
) -> Service:
    allowed = _allowed_services(installation, session)
    assert installation is not None
    if chosen:
        wanted = chosen.casefold()
        for service in allowed:
            if wanted in {service.name.casefold(), service.slug.casefold()}:
                return service
        raise UiRequestRefused(f"The bridge has no service {chosen!r}; pick one from the list.")
    integration = (
        session.get(Integration, installation.integration_id)
        if installation.integration_id
        else None
    )
    if integration is None or integration.service not in allowed:
        raise UiRequestRefused("Choose the service whose on-call should get these incidents.")
    return integration.service


def validate_alert_rule_settings(
    session: Session, fields: Any, installation: SentryInstallation | None
) -> Service:
    """The alert-rule action's settings name a service the bridge has."""
    return _service(session, settings_values(fields).get("service"), installation)


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
    issue_id = _text(body.get("issueId"), MAX_ID_LENGTH + 1)
    if issue_id is None or len(issue_id) > MAX_ID_LENGTH:
        raise UiRequestRefused("The request names no Sentry issue (issueId).")
    fields = settings_values(body.get("fields"))
    web_url = plain_web_url(_text(body.get("webUrl"), 4000))
    project = _text(_dict(body.get("project")).get("slug"), 200)
    actor = _text(_dict(body.get("actor")).get("name"), 200) or "Sentry user"
    if action == "link":
        reference = fields.get("incident")
        number = incident_number(reference)
        if number is None:
            raise UiRequestRefused("Pick the incident to link this issue to.")
        allowed = {service.id for service in _allowed_services(installation, session)}
        incident = session.get(Incident, number)
        if incident is None or incident.service_id not in allowed:
            # The same answer either way: another organisation's incidents stay unseen.
            raise UiRequestRefused(f"The bridge has no incident #{number} for this organisation.")
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
    key = dedup_key(issue_id)
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


def service_options(
    session: Session, installation: SentryInstallation | None, query: str | None
) -> list[dict[str, str]]:
    """Select options: the services this installation's organisation feeds, filtered by
    what the user typed."""
    text = (_text(query, 200) or "").casefold()
    return [
        {"label": service.name, "value": service.slug}
        for service in _allowed_services(installation, session)
        if text in service.name.casefold() or text in service.slug.casefold()
    ][:MAX_OPTIONS]


def incident_options(
    session: Session, installation: SentryInstallation | None, query: str | None
) -> list[dict[str, str]]:
    """Select options: open incidents of the services this installation's org feeds."""
    allowed = [service.id for service in _allowed_services(installation, session)]
    text = _text(query, 200)
    number = incident_number(text) if text else None
    found = incidents.open_incidents_matching(session, allowed, text, number, MAX_OPTIONS)
    return [{"label": f"#{i.id} {i.title}"[:200], "value": str(i.id)} for i in found]


def find_installation(session: Session, uuid: str | None) -> SentryInstallation | None:
    if not uuid or len(uuid) > MAX_ID_LENGTH or "\x00" in uuid:
        return None
    return installations.find_by_uuid(session, uuid)
