"""installation.* webhooks (SPEC 6): created queues the grant exchange, deleted revokes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.domain.payload_values import sentry_id, text
from app.services import sentry_installations as installs
from app.services.sentry_jobs import JobKind, enqueue
from app.store.encryption import SecretBox
from app.store.models import Integration


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


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
        revoked = installs.revoke_by_uuid(session, uuid, now)
        if revoked is None:
            return f"installation {uuid} was not known to the bridge"
        return f"installation {uuid} revoked: its tokens are forgotten"
    return f"installation.{action} needs nothing from the bridge"
