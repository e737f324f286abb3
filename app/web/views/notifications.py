"""Pages for paging: the channels admin page (create, list masked, send test, disable,
failed notifications to retry) and "Silence this issue" on the incident page."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from app.domain.errors import InvalidInput
from app.extensions import bridge
from app.services import catalog, channels, notification_outbox, silences
from app.web.views import blueprint
from app.web.views.admin import admin_required

SILENCE_HOURS = (1, 4, 24)


def _to(endpoint: str, **values: Any) -> Response:
    return redirect(url_for(endpoint, **values))  # type: ignore[return-value]


@blueprint.get("/admin/channels")
@admin_required
def channel_list() -> str:
    with bridge().database.reading() as session:
        found = channels.list_channels(session)
        for channel in found:
            _ = channel.service.name
        failed = notification_outbox.list_notifications(session, "failed", 50)
        services = catalog.list_services(session)
    return render_template("admin/channels.html", channels=found, failed=failed, services=services)


@blueprint.post("/admin/channels")
@admin_required
def create_channel() -> str:
    form = request.form
    try:
        service_id = int(form.get("service_id", ""))
    except ValueError:
        raise InvalidInput("Choose a service.") from None
    app_bridge = bridge()
    with app_bridge.database.transaction() as session:
        created = channels.create_channel(
            session,
            app_bridge.secrets,
            catalog.get_service(session, service_id),
            datetime.now(UTC),
            kind=form.get("kind", ""),
            name=form.get("name", ""),
            url=form.get("url"),
            recipients=(form.get("to") or "").split(","),
            routing_key=form.get("routing_key"),
            generate_secret=form.get("generate_secret") == "on",
            min_severity=form.get("min_severity", "error"),
            events=form.getlist("events") or None,
        )
        name = created.channel.name
    # The one page that shows a generated secret: right after it was made, never again.
    return render_template("admin/channel_created.html", name=name, secret=created.secret)


@blueprint.post("/admin/channels/<int:channel_id>/test")
@admin_required
def send_channel_test(channel_id: int) -> Response:
    with bridge().database.transaction() as session:
        channel = channels.get_channel(session, channel_id)
        notification_outbox.queue_test(session, channel, datetime.now(UTC))
        name = channel.name
    flash(f"Test notification queued for {name}.", "info")
    return _to("views.channel_list")


@blueprint.post("/admin/channels/<int:channel_id>/enabled")
@admin_required
def set_channel_enabled(channel_id: int) -> Response:
    enabled = request.form.get("enabled") == "1"
    with bridge().database.transaction() as session:
        name = channels.set_channel_enabled(session, channel_id, enabled).name
    flash(f"Channel {name} {'enabled' if enabled else 'disabled'}.", "info")
    return _to("views.channel_list")


@blueprint.post("/admin/notifications/<notification_id>/retry")
@admin_required
def retry_notification(notification_id: str) -> Response:
    with bridge().database.transaction() as session:
        notification_outbox.retry_failed(session, notification_id, datetime.now(UTC))
    flash("Notification queued again.", "info")
    return _to("views.channel_list")


@blueprint.post("/incidents/<int:incident_id>/silence")
@login_required
def silence_incident(incident_id: int) -> Response:
    try:
        hours = int(request.form.get("hours", ""))
    except ValueError:
        hours = 0
    if hours not in SILENCE_HOURS:
        raise InvalidInput("Silence for 1, 4 or 24 hours.")
    with bridge().database.transaction() as session:
        silences.silence_incident(
            session, incident_id, hours, current_user.email, datetime.now(UTC)
        )
    flash(f"Notifications for this issue are silenced for {hours} h.", "info")
    return _to("views.incident_detail", incident_id=incident_id)
