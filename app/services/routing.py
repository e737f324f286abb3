"""Which service a delivery's incident belongs to: the integration's, or the one its
Sentry alert rule chose when the rule's installation may send there."""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from app.domain.alerts import Alert
from app.store import queries
from app.store import receiver_rows as rows
from app.store.receiver_rows import Receiver, ServiceRef

log = logging.getLogger(__name__)


def routed_service(session: Session, receiver: Receiver, alert: Alert) -> ServiceRef:
    """The integration's service, unless the Sentry alert rule chose another one that the
    rule's installation may use (a plain integration never leaves its own service)."""
    if alert.target_service is None:
        return receiver.service
    installation = queries.find_installation_of(session, receiver.id, alert.installation_uuid)
    if installation is None:
        log.warning(
            "alert rule chose service %r, but integration %s is no Sentry installation; using %r",
            alert.target_service,
            receiver.id[:6],
            receiver.service.name,
        )
        return receiver.service
    chosen = rows.find_service(session.connection(), alert.target_service)
    allowed = {service.id for service in queries.services_of_organisation(session, installation)}
    if chosen is None or chosen.id not in allowed:
        log.warning(
            "alert rule chose service %r, which installation %s may not use; using %r",
            alert.target_service,
            (installation.uuid or "")[:8],
            receiver.service.name,
        )
        return receiver.service
    return chosen
