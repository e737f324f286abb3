"""Write-back: a person's acknowledge/resolve in the bridge ignores/resolves the Sentry issue.

The change is queued as a job row in the person's transaction; the jobs process sends it.
Sentry then sends an issue webhook about the change, with the bridge's own app as its
actor: `is_echo` recognises it so that it is not applied a second time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from app.services.catalog import get_integration
from app.services.sentry_jobs import enqueue
from app.store import incidents, installations
from app.store import sentry_outbox as outbox
from app.store.models import Incident, Integration, SentryJob
from app.store.sentry_outbox import JobKind

# What a person's action asks of the Sentry issue.
SENTRY_STATUS = {"resolve": "resolved", "acknowledge": "ignored"}
# An echo arrives seconds after the write-back; this is a generous bound.
ECHO_WINDOW = timedelta(hours=1)


def enqueue_write_back(
    session: Session, incident: Incident, action: str, now: datetime
) -> SentryJob | None:
    """Queue the Sentry side of a person's action, when the integration asks for write-back."""
    status = SENTRY_STATUS.get(action)
    if status is None or not incident.sentry_issue_id:
        return None
    integration = _integration_of(session, incident)
    if integration is None or not integration.write_back:
        return None
    return enqueue(
        session,
        JobKind.WRITE_BACK,
        now,
        incident_id=incident.id,
        integration_id=integration.id,
        payload={"status": status, "issue_id": incident.sentry_issue_id},
    )


def _integration_of(session: Session, incident: Incident) -> Integration | None:
    """The integration whose deliveries built this incident (the latest one)."""
    integration_id = incidents.latest_integration_of(session, incident.id)
    return session.get(Integration, integration_id) if integration_id else None


def is_echo(
    session: Session,
    integration_id: str,
    payload: Any,
    issue_id: str | None,
    now: datetime,
    app_uuid: str | None = None,
) -> bool:
    """Is this webhook Sentry telling us about a change the bridge itself made?

    Its actor is an application (never a user), and either it is the bridge's own app
    (by uuid, from the installation or the settings) or the bridge wrote this very issue's
    status back within the echo window.
    """
    actor = payload.get("actor") if isinstance(payload, dict) else None
    if not isinstance(actor, dict) or actor.get("type") != "application":
        return False
    actor_id = str(actor.get("id") or "")
    if not actor_id or actor_id == "sentry":  # Sentry's own automatic actions
        return False
    known = installations.app_uuids_of_integration(session, integration_id)
    if app_uuid:
        known.add(app_uuid)
    if actor_id in known:
        return True
    if not issue_id:
        return False
    jobs = outbox.write_backs_since(session, integration_id, now - ECHO_WINDOW)
    return any((job.payload or {}).get("issue_id") == issue_id for job in jobs)


def set_write_back(
    session: Session, integration_id: str, enabled: bool, now: datetime
) -> Integration:
    """Turn write-back on or off for one integration."""
    integration = get_integration(session, integration_id)
    integration.write_back = enabled
    integration.updated_at = now
    session.flush()
    return integration
