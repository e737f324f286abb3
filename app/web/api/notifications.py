"""/api/channels, /api/silences, /api/notifications: paging people (SPEC 7).

Channels and the outbox are admin matters; silences are for anyone on call.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import Response, jsonify, request

from app.extensions import bridge
from app.services import catalog, channels, notification_outbox, silences
from app.services.accounts import Role
from app.web.api import blueprint
from app.web.api.docs import documented, json_body, query_args
from app.web.auth import actor_name, requires
from app.web.notify_schemas import (
    ChannelInputSchema,
    ChannelSchema,
    CreatedChannelSchema,
    IncidentSilenceInputSchema,
    NotificationListQuerySchema,
    NotificationSchema,
    SilenceInputSchema,
    SilenceSchema,
)

ADMIN_ERRORS = (401, 403)


@blueprint.get("/channels")
@requires(Role.ADMIN)
@documented(
    summary="List notification channels (targets masked)",
    tag="notifications",
    response=ChannelSchema(many=True),
    errors=ADMIN_ERRORS,
)
def list_channels() -> Response:
    with bridge().database.reading() as session:
        return jsonify(ChannelSchema(many=True).dump(channels.list_channels(session)))


@blueprint.post("/channels")
@requires(Role.ADMIN)
@documented(
    summary="Create a notification channel; a generated webhook secret is shown once",
    tag="notifications",
    body=ChannelInputSchema,
    response=CreatedChannelSchema,
    status=201,
    errors=(*ADMIN_ERRORS, 404, 422),
)
def create_channel() -> tuple[Response, int]:
    data = json_body(ChannelInputSchema())
    app_bridge = bridge()
    with app_bridge.database.transaction() as session:
        created = channels.create_channel(
            session,
            app_bridge.secrets,
            catalog.get_service(session, data["service_id"]),
            datetime.now(UTC),
            kind=data["kind"],
            name=data["name"],
            url=data.get("url"),
            recipients=data.get("to") or (),
            routing_key=data.get("routing_key"),
            generate_secret=data["generate_secret"],
            min_severity=data["min_severity"],
            events=data.get("events"),
        )
        document = CreatedChannelSchema().dump(created.channel)
        document["secret"] = created.secret
        return jsonify(document), 201


@blueprint.get("/channels/<int:channel_id>")
@requires(Role.ADMIN)
@documented(
    summary="One notification channel",
    tag="notifications",
    response=ChannelSchema,
    errors=(*ADMIN_ERRORS, 404),
)
def show_channel(channel_id: int) -> Response:
    with bridge().database.reading() as session:
        return jsonify(ChannelSchema().dump(channels.get_channel(session, channel_id)))


@blueprint.post("/channels/<int:channel_id>/test")
@requires(Role.ADMIN)
@documented(
    summary="Queue a test notification to the channel",
    tag="notifications",
    response=NotificationSchema,
    status=202,
    errors=(*ADMIN_ERRORS, 404),
)
def send_test_notification(channel_id: int) -> tuple[Response, int]:
    with bridge().database.transaction() as session:
        channel = channels.get_channel(session, channel_id)
        queued = notification_outbox.queue_test(session, channel, datetime.now(UTC))
        return jsonify(NotificationSchema().dump(queued)), 202


def _set_enabled(channel_id: int, enabled: bool) -> Response:
    with bridge().database.transaction() as session:
        channel = channels.set_channel_enabled(session, channel_id, enabled)
        return jsonify(ChannelSchema().dump(channel))


@blueprint.post("/channels/<int:channel_id>/disable")
@requires(Role.ADMIN)
@documented(
    summary="Stop sending to the channel",
    tag="notifications",
    response=ChannelSchema,
    errors=(*ADMIN_ERRORS, 404),
)
def disable_channel(channel_id: int) -> Response:
    return _set_enabled(channel_id, False)


@blueprint.post("/channels/<int:channel_id>/enable")
@requires(Role.ADMIN)
@documented(
    summary="Send to the channel again",
    tag="notifications",
    response=ChannelSchema,
    errors=(*ADMIN_ERRORS, 404),
)
def enable_channel(channel_id: int) -> Response:
    return _set_enabled(channel_id, True)


@blueprint.get("/notifications")
@requires(Role.ADMIN)
@documented(
    summary="Recent notifications (e.g. status=failed), newest first",
    tag="notifications",
    query=NotificationListQuerySchema,
    response=NotificationSchema(many=True),
    errors=(*ADMIN_ERRORS, 422),
)
def list_notifications() -> Response:
    args = query_args(NotificationListQuerySchema())
    with bridge().database.reading() as session:
        found = notification_outbox.list_notifications(session, args.get("status"), args["limit"])
        return jsonify(NotificationSchema(many=True).dump(found))


@blueprint.post("/notifications/<notification_id>/retry")
@requires(Role.ADMIN)
@documented(
    summary="Send a failed notification again (same id)",
    tag="notifications",
    response=NotificationSchema,
    status=202,
    errors=(*ADMIN_ERRORS, 404, 409),
)
def retry_notification(notification_id: str) -> tuple[Response, int]:
    with bridge().database.transaction() as session:
        retried = notification_outbox.retry_failed(session, notification_id, datetime.now(UTC))
        return jsonify(NotificationSchema().dump(retried)), 202


@blueprint.get("/silences")
@requires()
@documented(
    summary="Active silences (all=true: ended ones too)",
    tag="notifications",
    response=SilenceSchema(many=True),
    errors=(401,),
)
def list_silences() -> Response:
    include_ended = request.args.get("all", "").lower() in {"1", "true", "yes"}
    with bridge().database.reading() as session:
        found = silences.list_silences(session, datetime.now(UTC), include_ended)
        return jsonify(SilenceSchema(many=True).dump(found))


@blueprint.post("/silences")
@requires()
@documented(
    summary="Silence a service's notifications (optionally only incidents matching a text)",
    tag="notifications",
    body=SilenceInputSchema,
    response=SilenceSchema,
    status=201,
    errors=(401, 404, 422),
)
def create_silence() -> tuple[Response, int]:
    data = json_body(SilenceInputSchema())
    now = datetime.now(UTC)
    until = data.get("until") or now + timedelta(minutes=data["minutes"])
    with bridge().database.transaction() as session:
        created = silences.create_silence(
            session,
            catalog.get_service(session, data["service_id"]),
            now,
            until=until,
            reason=data["reason"],
            created_by=actor_name(),
            match_text=data.get("match"),
        )
        return jsonify(SilenceSchema().dump(created)), 201


@blueprint.post("/silences/<int:silence_id>/end")
@requires()
@documented(
    summary="End a silence now; what it held back and is still triggered is notified",
    tag="notifications",
    response=SilenceSchema,
    errors=(401, 404, 409),
)
def end_silence(silence_id: int) -> Response:
    with bridge().database.transaction() as session:
        ended = silences.end_silence(session, silence_id, datetime.now(UTC))
        return jsonify(SilenceSchema().dump(ended))


@blueprint.post("/incidents/<int:incident_id>/silence")
@requires()
@documented(
    summary="Silence this incident's notifications for 1, 4 or 24 hours",
    tag="notifications",
    body=IncidentSilenceInputSchema,
    response=SilenceSchema,
    status=201,
    errors=(401, 404, 422),
)
def silence_incident(incident_id: int) -> tuple[Response, int]:
    data = json_body(IncidentSilenceInputSchema())
    with bridge().database.transaction() as session:
        created = silences.silence_incident(
            session, incident_id, data["hours"], actor_name(), datetime.now(UTC), data.get("reason")
        )
        return jsonify(SilenceSchema().dump(created)), 201
