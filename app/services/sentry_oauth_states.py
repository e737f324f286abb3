"""OAuth states of the Sentry install flow: single-use, bound to who asked, short-lived.

Session-taking use cases; they flush and never commit.
"""

from __future__ import annotations

import hashlib
import secrets as random_source
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from app.domain.errors import NotFound
from app.sentry.errors import OAuthStateInvalid
from app.store import installations
from app.store.models import Integration, SentryOAuthState, User

STATE_BYTES = 32


def fingerprint(secret: str) -> str:
    """SHA-256 of a single-use secret (grant code, OAuth state): comparable, not readable."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def create_state(
    session: Session, user_id: int | None, integration_id: str | None, now: datetime, ttl: timedelta
) -> tuple[str, datetime]:
    """A fresh OAuth state bound to who asked and which integration the org will feed."""
    if user_id is not None and session.get(User, user_id) is None:
        raise NotFound(f"No user with id {user_id}.")
    if integration_id is not None and session.get(Integration, integration_id) is None:
        raise NotFound("No integration has this id.")
    # Expired states are of no use to anyone; drop them while we are here.
    installations.drop_expired_states(session, now)
    state = random_source.token_urlsafe(STATE_BYTES)
    expires_at = now + ttl
    session.add(
        SentryOAuthState(
            state_hash=fingerprint(state),
            user_id=user_id,
            integration_id=integration_id,
            created_at=now,
            expires_at=expires_at,
        )
    )
    session.flush()
    return state, expires_at


def consume_state(session: Session, state: str | None, now: datetime) -> SentryOAuthState:
    """Check a returned state and use it up; a missing, unknown, used or old one is refused."""
    if not state:
        raise OAuthStateInvalid(
            "The setup redirect has no state. Start the installation from the bridge "
            "(POST /api/v2/integrations/sentry/initiate) so that it can be checked."
        )
    found = installations.lock_state(session, fingerprint(state))
    if found is None or found.used_at is not None or found.expires_at <= now:
        raise OAuthStateInvalid(
            "The OAuth state is unknown, already used or expired. Start the installation "
            "again from the bridge."
        )
    found.used_at = now
    session.flush()
    return found
