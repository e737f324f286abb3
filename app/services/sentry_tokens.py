"""The token pairs of Sentry installations: read decrypted, rotated with compare-and-set.

Session-taking use cases; they flush and never commit. A rotated pair is saved in its own
short transaction before it is used (app/services/sentry_gateway.py).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.sentry.client import TokenGrant
from app.sentry.errors import SentryUnauthorized
from app.services.sentry_installations import get_installation
from app.store import installations
from app.store.encryption import SecretBox
from app.store.installations import InstallationStatus


@dataclass(frozen=True)
class Credentials:
    """A decrypted token pair of one installation, as read at `version`."""

    installation_id: int
    uuid: str | None
    org_slug: str | None
    token: str
    refresh_token: str | None
    expires_at: datetime | None
    version: int

    def __repr__(self) -> str:  # never print the tokens themselves
        return f"Credentials(installation_id={self.installation_id}, version={self.version})"

    def expires_within(self, now: datetime, margin: timedelta) -> bool:
        return self.expires_at is not None and self.expires_at <= now + margin


def load_credentials(session: Session, box: SecretBox, installation_id: int) -> Credentials:
    installation = get_installation(session, installation_id)
    if (
        installation.token_ciphertext is None
        or installation.status == InstallationStatus.REVOKED.value
    ):
        raise SentryUnauthorized(
            f"Sentry installation {installation_id} has no token (status {installation.status})."
        )
    return Credentials(
        installation_id=installation.id,
        uuid=installation.uuid,
        org_slug=installation.org_slug,
        token=box.decrypt(installation.token_ciphertext),
        refresh_token=(
            box.decrypt(installation.refresh_token_ciphertext)
            if installation.refresh_token_ciphertext
            else None
        ),
        expires_at=installation.expires_at,
        version=installation.token_version,
    )


def store_rotated_pair(
    session: Session,
    box: SecretBox,
    installation_id: int,
    read_version: int,
    grant: TokenGrant,
    now: datetime,
) -> bool:
    """Store a refreshed pair in one statement, only if nobody stored another since we read.

    Compare-and-set on token_version: both tokens and the expiry change together or not at
    all. Returns False when another writer got there first (the caller re-reads theirs).
    """
    return installations.set_tokens_if_version(
        session,
        installation_id,
        read_version,
        {
            "token_ciphertext": box.encrypt(grant.token),
            "refresh_token_ciphertext": (
                box.encrypt(grant.refresh_token) if grant.refresh_token else None
            ),
            "expires_at": grant.expires_at,
            "last_refreshed_at": now,
            "last_error": None,
            "updated_at": now,
        },
    )


def installations_expiring(session: Session, before: datetime) -> list[int]:
    """Installed installations with a refresh token whose token expires before `before`."""
    return installations.expiring_installed(session, before)
