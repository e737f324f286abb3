"""Intent-named queries of Sentry installations and the OAuth states of their install flow.

Locks are taken where the caller decides on what it read (FOR UPDATE; SQLite serialises
writers with BEGIN IMMEDIATE instead).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from app.store.models import SentryInstallation, SentryOAuthState


class InstallationStatus(StrEnum):
    PENDING = "pending"
    INSTALLED = "installed"
    REVOKED = "revoked"


class Kind(StrEnum):
    PUBLIC = "public"
    INTERNAL = "internal"


def find_by_uuid(session: Session, uuid: str, lock: bool = False) -> SentryInstallation | None:
    query = select(SentryInstallation).where(SentryInstallation.uuid == uuid)
    return session.scalar(query.with_for_update() if lock else query)


def lock_internal(
    session: Session, org_slug: str, integration_id: str | None
) -> SentryInstallation | None:
    """The internal integration's installation for this org and bridge integration, locked."""
    return session.scalar(
        select(SentryInstallation)
        .where(
            SentryInstallation.kind == Kind.INTERNAL.value,
            SentryInstallation.org_slug == org_slug,
            SentryInstallation.integration_id == integration_id,
        )
        .with_for_update()
    )


def installations_of_user(session: Session, user_id: int) -> list[SentryInstallation]:
    return list(
        session.scalars(
            select(SentryInstallation)
            .where(SentryInstallation.user_id == user_id)
            .order_by(SentryInstallation.id)
        )
    )


def newest_installed(session: Session, integration_id: str) -> SentryInstallation | None:
    """The integration's most recent live installation."""
    return session.scalar(
        select(SentryInstallation)
        .where(
            SentryInstallation.integration_id == integration_id,
            SentryInstallation.status == InstallationStatus.INSTALLED.value,
        )
        .order_by(SentryInstallation.id.desc())
        .limit(1)
    )


def app_uuids_of_integration(session: Session, integration_id: str) -> set[str]:
    """The Sentry apps installed to deliver through this integration."""
    return set(
        session.scalars(
            select(SentryInstallation.app_uuid).where(
                SentryInstallation.integration_id == integration_id,
                SentryInstallation.app_uuid.is_not(None),
            )
        )
    )


def expiring_installed(session: Session, before: datetime) -> list[int]:
    """Installed installations with a refresh token whose token expires before `before`."""
    return list(
        session.scalars(
            select(SentryInstallation.id)
            .where(
                SentryInstallation.status == InstallationStatus.INSTALLED.value,
                SentryInstallation.refresh_token_ciphertext.is_not(None),
                SentryInstallation.expires_at.is_not(None),
                SentryInstallation.expires_at < before,
            )
            .order_by(SentryInstallation.expires_at)
        )
    )


def set_tokens_if_version(
    session: Session, installation_id: int, read_version: int, values: dict[str, Any]
) -> bool:
    """Write `values` (the new pair) in one statement, only if the token version is still
    the one read and the installation is not revoked: compare-and-set. False: another
    writer got there first."""
    result = session.execute(
        update(SentryInstallation)
        .where(
            SentryInstallation.id == installation_id,
            SentryInstallation.token_version == read_version,
            SentryInstallation.status != InstallationStatus.REVOKED.value,
        )
        .values(token_version=read_version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def drop_expired_states(session: Session, now: datetime) -> None:
    session.execute(delete(SentryOAuthState).where(SentryOAuthState.expires_at < now))


def lock_state(session: Session, state_hash: str) -> SentryOAuthState | None:
    return session.scalar(
        select(SentryOAuthState).where(SentryOAuthState.state_hash == state_hash).with_for_update()
    )
