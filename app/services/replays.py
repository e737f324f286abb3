"""A person re-applies a stored delivery, through the same path as a new one (SPEC 5)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from app.domain.errors import Conflict, NotFound
from app.services.delivery_records import AnswerStatus, InboundDelivery, IngestOutcome
from app.services.ingest import ingest_delivery
from app.store.encryption import SecretBox
from app.store.models import Delivery


def replay_delivery(
    session: Session,
    delivery_id: int,
    actor: str,
    secrets: SecretBox,
    max_body_bytes: int,
    now: datetime,
    answer_status: AnswerStatus | None = None,
) -> IngestOutcome:
    """Apply a stored delivery again, through the same path, as a new delivery."""
    original = session.get(Delivery, delivery_id)
    if original is None:
        raise NotFound(f"No delivery with id {delivery_id}.")
    if original.body is None:
        raise Conflict(
            f"Delivery {delivery_id} was refused for its size and its body was not kept, "
            "so there is nothing to replay."
        )
    if original.body_truncated:
        raise Conflict(
            f"Delivery {delivery_id} was refused ({original.error_code}), so only the first "
            f"{len(original.body)} of its {original.body_size} bytes were kept: it cannot be "
            "replayed. Ask the sender to send it again."
        )
    inbound = InboundDelivery(
        integration_id=original.integration_id,
        body=original.body,
        received_at=now,
        content_length=len(original.body),
        content_type=original.content_type,
        request_id=original.request_id,
        hook_resource=original.hook_resource,
        hook_timestamp=original.hook_timestamp,
        user_agent=original.user_agent,
        replay_of_id=original.id,
        replayed_by=actor,
    )
    return ingest_delivery(session, inbound, secrets, max_body_bytes, answer_status=answer_status)
