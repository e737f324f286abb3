"""Whether this node's BRIDGE_ENCRYPTION_KEYS read the secrets already in the database.

Several nodes share one database, so they must share its encryption keys: a node started
with other keys (or none, so a fresh key file) would answer 500 to every signed delivery.
/readyz asks this, so such a node is taken out of the load balancer instead.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.store.encryption import SecretBox, SecretUnreadable
from app.store.models import Integration, SentryInstallation

# The newest few of each kind: enough to tell the wrong keys, cheap enough to ask often.
SAMPLE = 10


def unreadable_secret_count(session: Session, box: SecretBox, sample: int = SAMPLE) -> int:
    """How many of a sample of stored secrets these keys cannot decrypt (0: all fine)."""
    ciphertexts = list(
        session.scalars(
            select(Integration.secret_ciphertext)
            .where(Integration.secret_ciphertext.is_not(None))
            .order_by(Integration.updated_at.desc())
            .limit(sample)
        )
    )
    ciphertexts += session.scalars(
        select(SentryInstallation.token_ciphertext)
        .where(SentryInstallation.token_ciphertext.is_not(None))
        .order_by(SentryInstallation.updated_at.desc())
        .limit(sample)
    )
    unreadable = 0
    for ciphertext in ciphertexts:
        if ciphertext is None:
            continue
        try:
            box.decrypt(ciphertext)
        except SecretUnreadable:
            unreadable += 1
    return unreadable
