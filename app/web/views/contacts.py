"""A person's contact-methods page: how the bridge pages them, and "send me a test"."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Response, abort, flash, render_template, request
from flask_login import current_user, login_required

from app.extensions import bridge
from app.services import contacts, notification_outbox, schedules
from app.web.views import blueprint
from app.web.views.admin import _to


@blueprint.get("/contact-methods")
@login_required
def contact_methods_page() -> str:
    with bridge().database.transaction() as session:
        user = schedules.find_user(session, current_user.email)
        methods = [
            (method, contacts.masked_target(method), contacts.is_pageable(method))
            for method in contacts.list_methods(session, user, datetime.now(UTC))
        ]
        return render_template("oncall/contacts.html", methods=methods)


@blueprint.post("/contact-methods")
@login_required
def add_my_contact_method() -> Response:
    with bridge().database.transaction() as session:
        contacts.add_apprise(
            session,
            bridge().secrets,
            current_user.email,
            request.form.get("apprise", ""),
            datetime.now(UTC),
            request.form.get("label") or None,
        )
    flash("Apprise URL added. Send yourself a test: once it arrives, you can be paged there.")
    return _to("views.contact_methods_page")


@blueprint.post("/contact-methods/<int:method_id>/test")
@login_required
def test_my_contact_method(method_id: int) -> Response:
    with bridge().database.transaction() as session:
        method = contacts.get_method(session, method_id)
        # People test their own methods (admins anyone's): a test is a message to them.
        if method.user.email != current_user.email and not current_user.is_admin:
            abort(403, "This is someone else's contact method.")
        notification_outbox.queue_method_test(session, method, datetime.now(UTC))
        shown = contacts.masked_target(method)
    flash(f"Test queued to {shown}. When it is sent, this method can page you.", "info")
    return _to("views.contact_methods_page")
