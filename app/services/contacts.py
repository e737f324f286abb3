"""Contact methods: how a person is reached (account email, Apprise URLs), and which count.

A person is paged only through methods they have tested or an admin has verified. The
account email is a method like the others, made the first time the person's methods are
asked for (accounts predate contact methods).
"""

from __future__ import annotations

from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.domain.errors import InvalidInput, NotFound
from app.services.schedules import find_user
from app.store.encryption import SecretBox
from app.store.models import ContactMethod, User

EMAIL = "email"
APPRISE = "apprise"


def _ensure_account_email(session: Session, user: User, now: datetime) -> None:
    exists = session.scalar(
        select(ContactMethod.id).where(
            ContactMethod.user_id == user.id, ContactMethod.kind == EMAIL
        )
    )
    if exists is None:
        session.add(ContactMethod(user_id=user.id, kind=EMAIL, verified=False, created_at=now))
        session.flush()


def list_methods(session: Session, user: User, now: datetime) -> list[ContactMethod]:
    """The person's methods, the account email first."""
    _ensure_account_email(session, user, now)
    return list(
        session.scalars(
            select(ContactMethod)
            .where(ContactMethod.user_id == user.id)
            .order_by((ContactMethod.kind != EMAIL), ContactMethod.id)
        )
    )


def add_apprise(
    session: Session, box: SecretBox, email: str, url: str, now: datetime, label: str | None = None
) -> ContactMethod:
    """Add an Apprise URL (ntfy://, pover://, tgram://, ...) kept encrypted; unverified."""
    user = find_user(session, email)
    scheme = urlsplit(url.strip()).scheme
    if not scheme or "://" not in url:
        raise InvalidInput(
            "An Apprise URL looks like ntfy://topic or pover://user@token.",
            fields={"apprise": ["not an Apprise URL"]},
        )
    _ensure_account_email(session, user, now)
    method = ContactMethod(
        user_id=user.id,
        kind=APPRISE,
        label=(label or scheme).strip()[:200],
        target_ciphertext=box.encrypt(url.strip()),
        verified=False,
        created_at=now,
    )
    session.add(method)
    session.flush()
    return method


def get_method(session: Session, method_id: int) -> ContactMethod:
    method = session.get(ContactMethod, method_id)
    if method is None:
        raise NotFound(f"No contact method with id {method_id}.")
    return method


def verify(session: Session, method_id: int, admin_email: str, now: datetime) -> ContactMethod:
    """An admin vouches for the method: it may be paged from now on."""
    method = get_method(session, method_id)
    method.verified = True
    method.verified_at = now
    method.verified_by = admin_email
    session.flush()
    return method


def is_pageable(method: ContactMethod) -> bool:
    return method.verified or method.tested_at is not None


def pageable_methods(session: Session, user_id: int) -> list[ContactMethod]:
    return [
        method
        for method in session.scalars(
            select(ContactMethod).where(ContactMethod.user_id == user_id).order_by(ContactMethod.id)
        )
        if is_pageable(method)
    ]


def target_of(box: SecretBox, method: ContactMethod) -> str:
    """Where the method sends: the account email, or the Apprise URL in clear (for sending
    only; never for logs or responses, which show `masked_target`)."""
    if method.kind == EMAIL:
        return method.user.email
    assert method.target_ciphertext is not None
    return box.decrypt(method.target_ciphertext)


def masked_target(method: ContactMethod) -> str:
    if method.kind == EMAIL:
        return method.user.email
    return f"{method.label or 'apprise'}://…"
