"""installation.* webhooks (SPEC 6): created queues the grant exchange, deleted revokes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.domain.payload_values import mapping as _dict
from app.domain.payload_values import sentry_id, text
from app.services import sentry_installations as installs
from app.services.sentry_jobs import enqueue
from app.store import installations
from app.store.encryption import SecretBox
from app.store.models import Integration
from app.store.sentry_outbox import JobKind


def on_installation_webhook(
    session: Session,
    integration: Integration,
    action: str | None,
    payload: Any,
    secrets: SecretBox,
    now: datetime,
) -> str:
    """Act on an installation webhook; returns the reason the delivery records.

    The exchange is not done here: the webhook must be answered fast and no outbound call
    may run inside this transaction. A job row (the code encrypted) asks the jobs process.
    """
    data = _dict(_dict(payload).get("data"))
    installation = _dict(data.get("installation"))
    uuid = installation.get("uuid") or _dict(_dict(payload).get("installation")).get("uuid")
    if not isinstance(uuid, str) or not uuid:
        return f"installation.{action} names no installation uuid"
    if action == "created":
        code = installation.get("code")
        if not isinstance(code, str) or not code:
            return "installation.created without a grant code; nothing to exchange"
        enqueue(
            session,
            JobKind.EXCHANGE_GRANT,
            now,
            integration_id=integration.id,
            installation_uuid=uuid,
            payload={
                "code_ciphertext": secrets.encrypt(code),
                # The shared readers: no NUL or lone surrogate reaches a JSONB column.
                "org_slug": text(_dict(installation.get("organization")).get("slug")),
                "app_uuid": sentry_id(_dict(installation.get("app")).get("uuid")),
            },
        )
        return f"installation {uuid} queued for the token exchange"
    if action == "deleted":
        return _on_deleted(session, integration, uuid, now)
    return f"installation.{action} needs nothing from the bridge"


def _on_deleted(session: Session, integration: Integration, uuid: str, now: datetime) -> str:
    """Revoke the installation, only when its own app's secret signed this delivery.

    An integration's secret is its Sentry app's client secret, and an installation
    delivers through the integration it was installed for: a delivery through any other
    integration (an org's own internal integration naming another org's install, or an
    unsigned URL) is signed by someone else's secret, or by nobody.
    """
    if not integration.has_secret:
        return (
            f"installation.deleted for {uuid} ignored: this integration has no signing "
            "secret, so nothing proves Sentry sent it; revoke the connection in the bridge"
        )
    installation = installations.find_by_uuid(session, uuid, lock=True)
    if installation is None:
        return f"installation {uuid} was not known to the bridge"
    if installation.integration_id != integration.id:
        return (
            f"installation.deleted for {uuid} ignored: that installation does not deliver "
            "through this integration, so its app's secret did not sign this"
        )
    installs.revoke_by_uuid(session, uuid, now)
    return f"installation {uuid} revoked: its tokens are forgotten"
