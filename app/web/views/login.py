"""Login and logout."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from app.extensions import bridge
from app.services.accounts import check_password, end_sessions, get_user
from app.web.security import rate_limits, same_site_path
from app.web.sessions import session_user
from app.web.views import blueprint


def _safe_next(target: str | None) -> str:
    """Only same-site paths: `next` must never send someone to another host."""
    return same_site_path(target) or url_for("views.incident_list")


@blueprint.route("/login", methods=["GET", "POST"])
def login() -> Response | str:
    if current_user.is_authenticated:
        return redirect(url_for("views.incident_list"))  # type: ignore[return-value]
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    email = request.form.get("email", "")
    password = request.form.get("password", "")
    # Counted before the password is checked, so a guesser learns nothing past the limit.
    logins = rate_limits().logins
    refusal = logins.refusal(email, request.remote_addr, datetime.now(UTC))
    if refusal is not None:
        flash(refusal.message, "error")
        page = render_template("login.html", next=request.form.get("next", ""), email=email)
        return Response(page, status=429, headers={"Retry-After": str(refusal.retry_after)})
    with bridge().database.transaction() as db:
        user = check_password(db, email, password)
        found = session_user(user) if user is not None else None
    if found is None:
        flash("Wrong email or password.", "error")
        page = render_template("login.html", next=request.form.get("next", ""), email=email)
        return Response(page, status=401)
    logins.forget(email, request.remote_addr)
    # A fresh session on login: nothing from before authentication carries over.
    session.clear()
    login_user(found)
    return redirect(_safe_next(request.form.get("next")))  # type: ignore[return-value]


@blueprint.post("/logout")
def logout() -> Response:
    if current_user.is_authenticated:
        # Server side too: a copy of this session's cookie (saved, stolen) stops working.
        with bridge().database.transaction() as db:
            end_sessions(get_user(db, current_user.id))
    logout_user()
    session.clear()
    flash("Logged out.", "info")
    return redirect(url_for("views.login"))  # type: ignore[return-value]
