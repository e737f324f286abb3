"""Who is calling the API: `Authorization: Bearer <token>`, and what their role allows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Any, TypeVar, cast

from flask import g, request

from app.domain.errors import AuthenticationRequired, Forbidden, InvalidCredentials
from app.extensions import bridge
from app.services.accounts import Role, user_for_token
from app.store.models import User

F = TypeVar("F", bound=Callable[..., Any])


def _bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise AuthenticationRequired(
            "This API needs a personal token: send `Authorization: Bearer <token>` "
            "(create one with `bridge token create EMAIL`)."
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidCredentials("The Authorization header must be `Bearer <token>`.")
    return token.strip()


def current_user() -> User:
    user = g.get("api_user")
    assert isinstance(user, User), "current_user() outside an authenticated view"
    return user


def actor_name() -> str:
    return current_user().email


def _authenticate(role: Role | None) -> None:
    token = _bearer_token()
    with bridge().database.transaction() as session:
        user = user_for_token(session, token, datetime.now(UTC))
        if user is None:
            raise InvalidCredentials("The token is unknown or revoked.")
        session.expunge(user)
    if role is Role.ADMIN and user.role != Role.ADMIN.value:
        raise Forbidden("This needs the admin role; your account is a responder.")
    g.api_user = user


def requires(role: Role | None = None) -> Callable[[F], F]:
    """Views behind it run only for an authenticated user (of `role`, when given)."""

    def decorate(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            _authenticate(role)
            return view(*args, **kwargs)

        wrapper.required_role = role  # type: ignore[attr-defined]  # read by the OpenAPI builder
        return cast(F, wrapper)

    return decorate
