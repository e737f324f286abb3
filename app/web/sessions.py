"""Browser sessions: Flask-Login over the same accounts as the API, and CSRF on every form."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from flask import Flask, Request, Response
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface, SessionMixin
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


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, without their cost on requests that bring no cookie.

    Flask builds the cookie's signing serializer for every request, cookie or not, and
    works out every cookie attribute again when it saves an untouched empty session.
    Webhook deliveries never carry a cookie, and under overload that was ~8 % of the
    cheap spooled path's time. A request with no Cookie header gets an empty session at
    once; an empty session nobody read or changed saves nothing. Everything else, and any
    session that is used, is Flask's own code.
    """

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and "HTTP_COOKIE" not in request.environ:
            return self.session_class()
        return super().open_session(app, request)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        if not session and not session.modified and not session.accessed:
            return
        super().save_session(app, session, response)


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
    app.session_interface = CookieSessions()
    login_manager.init_app(app)
    csrf.init_app(app)


def exempt_machine_blueprints(app: Flask) -> None:
    """CSRF guards forms in browsers; machine endpoints authenticate otherwise."""
    for name, registered in app.blueprints.items():
        if name != "views":
            csrf.exempt(registered)
