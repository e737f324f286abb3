"""Connected Sentry organisations: their installations (OAuth states and tokens have
modules of their own: sentry_oauth_states.py, sentry_tokens.py).

Session-taking use cases; they flush and never commit. The HTTP calls that surround them
(token exchange, refresh, verification) live in app/services/sentry_gateway.py, which runs
each of these in a short transaction of its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain.errors import InvalidInput, NotFound
from app.sentry.client import TokenGrant
from app.sentry.errors import InstallationNotFound
from app.services.sentry_oauth_states import fingerprint
from app.store import installations
from app.store.encryption import SecretBox
from app.store.installations import InstallationStatus, Kind
from app.store.models import Integration, SentryInstallation, User

MAX_ERROR_LENGTH = 500


# ---------------------------------------------------------------- OAuth state


# ---------------------------------------------------------------- installations


def get_installation(session: Session, installation_id: int) -> SentryInstallation:
    found = session.get(SentryInstallation, installation_id)
    if found is None:
        raise InstallationNotFound(f"No Sentry installation with id {installation_id}.")
    return found


class ClaimOutcome(StrEnum):
    EXCHANGE = "exchange"  # this caller trades the code now
    VERIFY = "verify"  # the code was traded already; only the verification is missing
    DONE = "done"  # the installation is complete; nothing to do
    IN_PROGRESS = "in_progress"  # another caller is trading this code right now


@dataclass(frozen=True)
class GrantClaim:
    outcome: ClaimOutcome
    installation_id: int


def claim_grant(
    session: Session,
    *,
    uuid: str,
    code: str,
    org_slug: str | None,
    integration_id: str | None,
    user_id: int | None,
    app_uuid: str | None,
    now: datetime,
    lease: timedelta,
) -> GrantClaim:
    """Record an installation and decide who trades its grant code (codes are single-use).

    The setup redirect and the installation.created webhook carry the same code; whichever
    comes second finds it claimed, and does nothing or only what is left.
    """
    installation = installations.find_by_uuid(session, uuid, lock=True)
    if installation is None:
        try:
            with session.begin_nested():
                installation = SentryInstallation(
                    uuid=uuid,
                    kind=Kind.PUBLIC.value,
                    status=InstallationStatus.PENDING.value,
                    token_version=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(installation)
                session.flush()
        except IntegrityError:
            installation = installations.find_by_uuid(session, uuid, lock=True)
            assert installation is not None
    # Either path may know more about the install than the other: keep what each brings.
    installation.org_slug = org_slug or installation.org_slug
    installation.integration_id = integration_id or installation.integration_id
    installation.user_id = user_id or installation.user_id
    installation.app_uuid = app_uuid or installation.app_uuid
    installation.updated_at = now
    code_hash = fingerprint(code)
    if installation.status == InstallationStatus.REVOKED.value:
        raise InvalidInput(f"Sentry installation {uuid} was uninstalled; install it again.")
    if installation.grant_code_hash == code_hash:
        if installation.token_ciphertext is not None:
            outcome = (
                ClaimOutcome.DONE
                if installation.status == InstallationStatus.INSTALLED.value
                else ClaimOutcome.VERIFY
            )
            session.flush()
            return GrantClaim(outcome, installation.id)
        started = installation.exchange_started_at
        if started is not None and started > now - lease:
            session.flush()
            return GrantClaim(ClaimOutcome.IN_PROGRESS, installation.id)
    installation.grant_code_hash = code_hash
    installation.exchange_started_at = now
    session.flush()
    return GrantClaim(ClaimOutcome.EXCHANGE, installation.id)


def store_grant(
    session: Session, box: SecretBox, installation_id: int, grant: TokenGrant, now: datetime
) -> SentryInstallation:
    """Keep a freshly exchanged pair, encrypted."""
    installation = get_installation(session, installation_id)
    _put_pair(installation, box, grant, now)
    installation.exchange_started_at = None
    installation.last_error = None
    session.flush()
    return installation


def mark_installed(session: Session, installation_id: int, now: datetime) -> SentryInstallation:
    installation = get_installation(session, installation_id)
    installation.status = InstallationStatus.INSTALLED.value
    installation.last_error = None
    installation.updated_at = now
    session.flush()
    return installation


def record_failure(session: Session, installation_id: int, message: str, now: datetime) -> None:
    """Remember why the last exchange/verify/refresh failed; free the claim for a retry."""
    installation = get_installation(session, installation_id)
    installation.exchange_started_at = None
    installation.last_error = message[:MAX_ERROR_LENGTH]
    installation.updated_at = now
    session.flush()


def revoke_by_uuid(session: Session, uuid: str, now: datetime) -> SentryInstallation | None:
    """installation.deleted: forget the tokens; the record stays, marked revoked."""
    installation = installations.find_by_uuid(session, uuid, lock=True)
    if installation is None:
        return None
    _revoke(installation, now)
    session.flush()
    return installation


def _revoke(installation: SentryInstallation, now: datetime) -> None:
    installation.status = InstallationStatus.REVOKED.value
    installation.token_ciphertext = None
    installation.refresh_token_ciphertext = None
    installation.expires_at = None
    installation.grant_code_hash = None
    installation.exchange_started_at = None
    installation.token_version += 1
    installation.revoked_at = now
    installation.updated_at = now


def save_internal_token(
    session: Session,
    box: SecretBox,
    *,
    user_id: int | None,
    integration_id: str | None,
    org_slug: str,
    token: str,
    installation_uuid: str | None,
    app_uuid: str | None,
    now: datetime,
) -> SentryInstallation:
    """An admin stores an internal integration's token for an org (it never expires)."""
    org_slug = (org_slug or "").strip()
    token = (token or "").strip()
    problems: dict[str, list[str]] = {}
    if not org_slug:
        problems["org_slug"] = ["required"]
    if not token:
        problems["token"] = ["required"]
    if problems:
        raise InvalidInput(
            "An internal integration needs an org_slug and a token.", fields=problems
        )
    if user_id is not None and session.get(User, user_id) is None:
        raise NotFound(f"No user with id {user_id}.")
    if integration_id is not None and session.get(Integration, integration_id) is None:
        raise NotFound("No integration has this id.")
    installation = (
        installations.find_by_uuid(session, installation_uuid, lock=True)
        if installation_uuid
        else None
    )
    if installation is None:
        installation = installations.lock_internal(session, org_slug, integration_id)
    if installation is None:
        installation = SentryInstallation(
            uuid=installation_uuid, kind=Kind.INTERNAL.value, token_version=0, created_at=now
        )
        session.add(installation)
    installation.kind = Kind.INTERNAL.value
    installation.status = InstallationStatus.INSTALLED.value
    installation.org_slug = org_slug
    installation.integration_id = integration_id
    installation.user_id = user_id
    installation.app_uuid = app_uuid or installation.app_uuid
    installation.revoked_at = None
    _put_pair(installation, box, TokenGrant(token=token, refresh_token=None, expires_at=None), now)
    session.flush()
    return installation


def _put_pair(
    installation: SentryInstallation, box: SecretBox, grant: TokenGrant, now: datetime
) -> None:
    installation.token_ciphertext = box.encrypt(grant.token)
    installation.refresh_token_ciphertext = (
        box.encrypt(grant.refresh_token) if grant.refresh_token else None
    )
    installation.expires_at = grant.expires_at
    installation.token_version += 1
    installation.updated_at = now


def installations_of_user(session: Session, user_id: int) -> list[SentryInstallation]:
    if session.get(User, user_id) is None:
        raise NotFound(f"No user with id {user_id}.")
    return installations.installations_of_user(session, user_id)


def revoke_for_user(
    session: Session, user_id: int, now: datetime, org_slug: str | None = None
) -> list[SentryInstallation]:
    """Revoke the user's connections (of one org, when given); returns those revoked."""
    revoked = []
    for installation in installations_of_user(session, user_id):
        if installation.status == InstallationStatus.REVOKED.value:
            continue
        if org_slug is not None and installation.org_slug != org_slug:
            continue
        _revoke(installation, now)
        revoked.append(installation)
    session.flush()
    return revoked


def find_connection(
    session: Session, integration_id: str | None, installation_uuid: str | None
) -> SentryInstallation | None:
    """The installation to call Sentry with: the delivery's own, else the integration's newest."""
    if installation_uuid:
        found = installations.find_by_uuid(session, installation_uuid)
        if found is not None and found.status == InstallationStatus.INSTALLED.value:
            return found
    if integration_id is None:
        return None
    return installations.newest_installed(session, integration_id)
