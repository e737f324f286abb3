"""Browser sessions: Flask-Login over the same accounts as the API, and CSRF on every form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import Flask
from flask_login import LoginManager, UserMixin
from flask_wtf.csrf import CSRFProtect

from app.extensions import bridge
from app.store.models import User

csrf = CSRFProtect()
login_manager = LoginManager()
login_manager.login_view = "views.login"
login_manager.login_message = "Log in to see incidents."
login_manager.session_protection = "strong"


@dataclass(frozen=True)
class SessionUser(UserMixin):
    id: int
    email: str
    role: str
    generation: int = 0

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def get_id(self) -> str:
        # Stored in the signed session cookie. The generation makes the server the judge:
        # a cookie saved before a logout, password change or deactivation names an old
        # generation and is refused, however valid its signature.
        return f"{self.id}.{self.generation}"


def session_user(user: User) -> SessionUser:
    return SessionUser(
        id=user.id, email=user.email, role=user.role, generation=user.session_generation
    )


@login_manager.user_loader
def _load_user(session_id: str) -> SessionUser | None:
    user_id, _, generation = session_id.partition(".")
    if not (user_id.isascii() and user_id.isdigit() and generation.isascii()):
        return None
    if not generation.isdigit() or len(user_id) > 10 or len(generation) > 10:
        return None
    with bridge().database.transaction() as session:
        user = session.get(User, int(user_id)) if int(user_id) < 2**31 else None
        if user is None or not user.is_active or user.session_generation != int(generation):
            return None
        return session_user(user)


def init_app(app: Flask, secret_key: str, secure_cookies: bool) -> None:
    app.config.update(
        SECRET_KEY=secret_key,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=secure_cookies,
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SECURE=secure_cookies,
        REMEMBER_COOKIE_SAMESITE="Lax",
        PERMANENT_SESSION_LIFETIME=timedelta(hours=12),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
    )
    login_manager.init_app(app)
    csrf.init_app(app)


def exempt_machine_blueprints(app: Flask) -> None:
    """CSRF guards forms in browsers; machine endpoints authenticate otherwise."""
    for name, registered in app.blueprints.items():
        if name != "views":
            csrf.exempt(registered)
