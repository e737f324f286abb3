"""Accounts: people with roles, and personal API tokens kept only as hashes."""

from __future__ import annotations

import hashlib
import secrets as random_source
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash

from app.domain.errors import Conflict, InvalidInput, NotFound
from app.store.models import ApiToken, User

TOKEN_PREFIX = "sib_"  # noqa: S105  # a public marker of bridge tokens, not a secret
MIN_PASSWORD_LENGTH = 12
# Touching last_used_at on every request would turn every read into a write.
LAST_USED_RESOLUTION = timedelta(minutes=1)


class Role(StrEnum):
    ADMIN = "admin"
    RESPONDER = "responder"


def normalise_email(email: str) -> str:
    return email.strip().lower()


def hash_token(token: str) -> str:
    """Tokens carry 256 random bits, so one SHA-256 is enough to keep them unreadable."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(
            f"Passwords need at least {MIN_PASSWORD_LENGTH} characters.",
            fields={"password": [f"at least {MIN_PASSWORD_LENGTH} characters"]},
        )


def create_user(session: Session, email: str, password: str, role: Role, now: datetime) -> User:
    """Create a person; the email must be new and the password long enough."""
    address = normalise_email(email)
    if "@" not in address or len(address) > 320:
        raise InvalidInput("That is not an email address.", fields={"email": ["invalid"]})
    _check_password_rules(password)
    if session.scalar(select(User.id).where(User.email == address)) is not None:
        raise Conflict(f"A user with email {address} already exists.")
    user = User(
        email=address,
        password_hash=generate_password_hash(password),
        role=role.value,
        is_active=True,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, email: str) -> User:
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None:
        raise NotFound(f"No user with email {normalise_email(email)}.")
    return user


def check_password(session: Session, email: str, password: str) -> User | None:
    """The active user with these credentials, else None (same work either way)."""
    user = session.scalar(select(User).where(User.email == normalise_email(email)))
    if user is None or not user.is_active:
        # Hash anyway so that a missing account takes as long as a wrong password.
        check_password_hash(_DUMMY_HASH, password)
        return None
    return user if check_password_hash(user.password_hash, password) else None


_DUMMY_HASH = generate_password_hash("not-a-real-password-but-a-timing-equaliser")


@dataclass(frozen=True)
class IssuedToken:
    token: str  # shown once
    record: ApiToken


def create_token(session: Session, email: str, name: str, now: datetime) -> IssuedToken:
    """Issue a personal API token for a user; only its hash is stored."""
    user = find_user(session, email)
    token = TOKEN_PREFIX + random_source.token_urlsafe(32)
    record = ApiToken(
        user_id=user.id, token_hash=hash_token(token), name=name.strip() or "api", created_at=now
    )
    session.add(record)
    session.flush()
    return IssuedToken(token, record)


def user_for_token(session: Session, token: str, now: datetime) -> User | None:
    """The active user a bearer token belongs to, or None for an unknown or revoked token.

    The lookup is by the token's SHA-256, so response time says nothing about how much of
    a guessed token was right.
    """
    record = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == hash_token(token), ApiToken.revoked_at.is_(None)
        )
    )
    if record is None or not record.user.is_active:
        return None
    if record.last_used_at is None or now - record.last_used_at > LAST_USED_RESOLUTION:
        record.last_used_at = now
    return record.user


def end_sessions(user: User) -> None:
    """Refuse every browser session the user has now (they log in again)."""
    user.session_generation += 1


def change_password(session: Session, user: User, password: str) -> User:
    """Set a new password; every open browser session of the user ends with the old one."""
    _check_password_rules(password)
    user.password_hash = generate_password_hash(password)
    end_sessions(user)
    session.flush()
    return user


def set_active(session: Session, user: User, active: bool) -> User:
    """Deactivate (no login, no token, sessions ended) or reactivate a user."""
    if not active and user.is_active:
        end_sessions(user)
    user.is_active = active
    session.flush()
    return user


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).order_by(User.email)))


def list_tokens(session: Session, user: User | None = None) -> list[ApiToken]:
    """Tokens (of one user, when given), newest first; never the token itself."""
    statement = select(ApiToken).order_by(ApiToken.id.desc())
    if user is not None:
        statement = statement.where(ApiToken.user_id == user.id)
    return list(session.scalars(statement))


def revoke_token(session: Session, token_id: int, now: datetime) -> ApiToken:
    """Revoke a token: it is refused from the next request on. Revoking twice is fine."""
    record = session.get(ApiToken, token_id)
    if record is None:
        raise NotFound(f"No API token with id {token_id}.")
    if record.revoked_at is None:
        record.revoked_at = now
    session.flush()
    return record
