"""Accounts: users, passwords and tokens as the CLI and the login page will use them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from app.domain.errors import Conflict, InvalidInput, NotFound
from app.extensions import Bridge
from app.services.accounts import (
    Role,
    check_password,
    create_token,
    create_user,
    hash_token,
    user_for_token,
)
from app.store.models import ApiToken, User

PASSWORD = "correct horse battery staple"


def test_users_are_stored_with_a_salted_hash_and_a_normalised_email(bridge: Bridge) -> None:
    with bridge.database.transaction() as session:
        create_user(session, "  Alice@Example.COM ", PASSWORD, Role.ADMIN, datetime.now(UTC))
    with bridge.database.transaction() as session:
        user = session.scalars(select(User)).one()
        assert user.email == "alice@example.com"
        assert PASSWORD not in user.password_hash
        assert user.password_hash.startswith(("scrypt:", "pbkdf2:"))
        assert check_password(session, "ALICE@example.com", PASSWORD) is not None
        assert check_password(session, "alice@example.com", "wrong password!") is None
        assert check_password(session, "nobody@example.com", PASSWORD) is None


@pytest.mark.parametrize(
    ("email", "password", "error"),
    [
        ("not-an-email", PASSWORD, InvalidInput),
        ("bob@example.com", "short", InvalidInput),
    ],
)
def test_bad_accounts_are_refused(
    bridge: Bridge, email: str, password: str, error: type[Exception]
) -> None:
    with pytest.raises(error), bridge.database.transaction() as session:
        create_user(session, email, password, Role.RESPONDER, datetime.now(UTC))


def test_an_email_is_one_account(bridge: Bridge) -> None:
    with bridge.database.transaction() as session:
        create_user(session, "bob@example.com", PASSWORD, Role.RESPONDER, datetime.now(UTC))
    with pytest.raises(Conflict), bridge.database.transaction() as session:
        create_user(session, "BOB@example.com", PASSWORD, Role.ADMIN, datetime.now(UTC))


def test_tokens_are_kept_only_as_hashes_and_find_their_user(bridge: Bridge) -> None:
    now = datetime.now(UTC)
    with bridge.database.transaction() as session:
        create_user(session, "carol@example.com", PASSWORD, Role.RESPONDER, now)
        issued = create_token(session, "carol@example.com", "laptop", now)
    with bridge.database.transaction() as session:
        stored = session.scalars(select(ApiToken)).one()
        assert stored.token_hash == hash_token(issued.token)
        assert issued.token not in stored.token_hash
        user = user_for_token(session, issued.token, now + timedelta(minutes=5))
        assert user is not None and user.email == "carol@example.com"
        assert stored.last_used_at == now + timedelta(minutes=5)
        assert user_for_token(session, issued.token + "x", now) is None


def test_tokens_for_unknown_users_are_refused(bridge: Bridge) -> None:
    with pytest.raises(NotFound), bridge.database.transaction() as session:
        create_token(session, "ghost@example.com", "x", datetime.now(UTC))
