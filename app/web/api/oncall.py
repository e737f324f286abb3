"""/api/schedules, /api/policies, /api/contact-methods, /api/services/<id>/paging (admins)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, request

from app.extensions import bridge
from app.services import catalog, contacts, escalation_policies, notification_outbox, schedules
from app.services.accounts import Role
from app.store.models import Schedule
from app.web.api import blueprint
from app.web.api.docs import documented, json_body, query_args
from app.web.auth import actor_name, requires
from app.web.oncall_schemas import (
    ContactInputSchema,
    ContactMethodSchema,
    ContactQuerySchema,
    LayerInputSchema,
    LayerSchema,
    OnCallSchema,
    OverrideInputSchema,
    OverrideSchema,
    PolicyInputSchema,
    PolicySchema,
    ScheduleInputSchema,
    ScheduleSchema,
    ServicePagingInputSchema,
    ServicePagingSchema,
    WhoQuerySchema,
)

ADMIN = (401, 403)


def feed_url(kind: str, token: str) -> str:
    return f"{bridge().base_url(request.host_url).rstrip('/')}/calendars/{kind}/{token}.ics"


def _schedule_document(schedule: Schedule) -> dict[str, Any]:
    document: dict[str, Any] = ScheduleSchema().dump(schedule)
    token = bridge().secrets.decrypt(schedule.feed_token_ciphertext)
    document["feed_url"] = feed_url("schedules", token)
    return document


def _layer(timezone: str, data: dict[str, Any], now: datetime) -> schedules.LayerSpec:
    rotation = data.get("rotation")
    if rotation is None and data.get("shift_hours") is None:
        rotation = "weekly"
    return schedules.layer_spec(
        timezone,
        data["members"],
        now,
        rotation,
        data.get("shift_hours"),
        data.get("handoff"),
        data.get("start"),
        data.get("end"),
    )


@blueprint.get("/schedules")
@requires(Role.ADMIN)
@documented(
    summary="List schedules", tag="on-call", response=ScheduleSchema(many=True), errors=ADMIN
)
def list_schedules() -> Response:
    with bridge().database.transaction() as session:
        return jsonify([_schedule_document(s) for s in schedules.list_schedules(session)])


@blueprint.post("/schedules")
@requires(Role.ADMIN)
@documented(
    summary="Create a schedule with its first rotation layer",
    tag="on-call",
    body=ScheduleInputSchema,
    response=ScheduleSchema,
    status=201,
    errors=(*ADMIN, 404, 409, 422),
    description="Times without an offset are read in the schedule's zone; the feed_url "
    "(an iCalendar feed) is a secret.",
)
def create_schedule() -> tuple[Response, int]:
    data = json_body(ScheduleInputSchema())
    now = datetime.now(UTC)
    with bridge().database.transaction() as session:
        spec = _layer(data["timezone"], data, now)
        created = schedules.create_schedule(
            session, bridge().secrets, data["name"], data["timezone"], spec, now
        )
        return jsonify(_schedule_document(created.schedule)), 201


@blueprint.get("/schedules/<int:schedule_id>")
@requires(Role.ADMIN)
@documented(summary="One schedule", tag="on-call", response=ScheduleSchema, errors=(*ADMIN, 404))
def show_schedule(schedule_id: int) -> Response:
    with bridge().database.transaction() as session:
        return jsonify(_schedule_document(schedules.get_schedule(session, schedule_id)))


@blueprint.post("/schedules/<int:schedule_id>/layers")
@requires(Role.ADMIN)
@documented(
    summary="Add a rotation layer above the others",
    tag="on-call",
    body=LayerInputSchema,
    response=LayerSchema,
    status=201,
    errors=(*ADMIN, 404, 422),
)
def add_layer(schedule_id: int) -> tuple[Response, int]:
    data = json_body(LayerInputSchema())
    now = datetime.now(UTC)
    with bridge().database.transaction() as session:
        schedule = schedules.get_schedule(session, schedule_id)
        layer = schedules.add_layer(session, schedule, _layer(schedule.timezone, data, now))
        return jsonify(LayerSchema().dump(layer)), 201


@blueprint.post("/schedules/<int:schedule_id>/overrides")
@requires(Role.ADMIN)
@documented(
    summary="Let a person cover a schedule from one time until another",
    tag="on-call",
    body=OverrideInputSchema,
    response=OverrideSchema,
    status=201,
    errors=(*ADMIN, 404, 422),
)
def add_override(schedule_id: int) -> tuple[Response, int]:
    data = json_body(OverrideInputSchema())
    with bridge().database.transaction() as session:
        schedule = schedules.get_schedule(session, schedule_id)
        override = schedules.add_override(
            session,
            schedule,
            data["user"],
            schedules.in_zone(data["from_"], schedule.timezone),
            schedules.in_zone(data["until"], schedule.timezone),
            datetime.now(UTC),
        )
        return jsonify(OverrideSchema().dump(override)), 201


@blueprint.get("/schedules/<int:schedule_id>/on-call")
@requires(Role.ADMIN)
@documented(
    summary="Who is on call (now, or at `at`); user null is a gap",
    tag="on-call",
    query=WhoQuerySchema,
    response=OnCallSchema,
    errors=(*ADMIN, 404, 422),
)
def who_is_on_call(schedule_id: int) -> Response:
    args = query_args(WhoQuerySchema())
    with bridge().database.transaction() as session:
        schedule = schedules.get_schedule(session, schedule_id)
        at = schedules.in_zone(args.get("at") or datetime.now(UTC), schedule.timezone)
        return jsonify(OnCallSchema().dump(schedules.who_is_on_call(schedule, at)))


@blueprint.get("/policies")
@requires(Role.ADMIN)
@documented(
    summary="List escalation policies",
    tag="on-call",
    response=PolicySchema(many=True),
    errors=ADMIN,
)
def list_policies() -> Response:
    with bridge().database.transaction() as session:
        return jsonify(PolicySchema(many=True).dump(escalation_policies.list_policies(session)))


@blueprint.post("/policies")
@requires(Role.ADMIN)
@documented(
    summary="Create an escalation policy from steps like 15:user:lead@example.com",
    tag="on-call",
    body=PolicyInputSchema,
    response=PolicySchema,
    status=201,
    errors=(*ADMIN, 404, 409, 422),
)
def create_policy() -> tuple[Response, int]:
    data = json_body(PolicyInputSchema())
    with bridge().database.transaction() as session:
        policy = escalation_policies.create_policy(
            session,
            data["name"],
            data["steps"],
            datetime.now(UTC),
            data["repeat"],
            data["repeat_after_minutes"],
        )
        return jsonify(PolicySchema().dump(policy)), 201


@blueprint.get("/policies/<int:policy_id>")
@requires(Role.ADMIN)
@documented(
    summary="One escalation policy", tag="on-call", response=PolicySchema, errors=(*ADMIN, 404)
)
def show_policy(policy_id: int) -> Response:
    with bridge().database.transaction() as session:
        return jsonify(PolicySchema().dump(escalation_policies.get_policy(session, policy_id)))


@blueprint.patch("/services/<int:service_id>/paging")
@requires(Role.ADMIN)
@documented(
    summary="Set a service's escalation policy, acknowledgement timeout, paging threshold",
    tag="on-call",
    body=ServicePagingInputSchema,
    response=ServicePagingSchema,
    errors=(*ADMIN, 404, 422),
    description="escalation_policy_id null detaches the policy; ack_timeout_minutes null "
    "turns the timeout off.",
)
def update_service_paging(service_id: int) -> Response:
    data = json_body(ServicePagingInputSchema())
    with bridge().database.transaction() as session:
        service = catalog.get_service(session, service_id)
        changes: dict[str, object] = {}
        if "escalation_policy_id" in data:
            policy_id = data["escalation_policy_id"]
            changes["policy"] = (
                None if policy_id is None else escalation_policies.get_policy(session, policy_id)
            )
        for name in ("ack_timeout_minutes", "page_min_severity"):
            if name in data:
                changes[name] = data[name]
        updated = escalation_policies.update_service_paging(session, service, **changes)
        return jsonify(ServicePagingSchema().dump(updated))


@blueprint.get("/contact-methods")
@requires(Role.ADMIN)
@documented(
    summary="A person's contact methods; Apprise URLs are never shown",
    tag="on-call",
    query=ContactQuerySchema,
    response=ContactMethodSchema(many=True),
    errors=(*ADMIN, 404, 422),
)
def list_contact_methods() -> Response:
    args = query_args(ContactQuerySchema())
    with bridge().database.transaction() as session:
        user = schedules.find_user(session, args["user"])
        found = contacts.list_methods(session, user, datetime.now(UTC))
        return jsonify(ContactMethodSchema(many=True).dump(found))


@blueprint.post("/contact-methods")
@requires(Role.ADMIN)
@documented(
    summary="Add an Apprise URL for a person (kept encrypted; pages once verified or tested)",
    tag="on-call",
    body=ContactInputSchema,
    response=ContactMethodSchema,
    status=201,
    errors=(*ADMIN, 404, 422),
)
def add_contact_method() -> tuple[Response, int]:
    data = json_body(ContactInputSchema())
    with bridge().database.transaction() as session:
        method = contacts.add_apprise(
            session, bridge().secrets, data["user"], data["apprise"], datetime.now(UTC),
            data.get("label"),
        )  # fmt: skip
        return jsonify(ContactMethodSchema().dump(method)), 201


@blueprint.post("/contact-methods/<int:method_id>/verify")
@requires(Role.ADMIN)
@documented(
    summary="Mark a contact method verified (an admin vouches for it)",
    tag="on-call",
    response=ContactMethodSchema,
    errors=(*ADMIN, 404),
)
def verify_contact_method(method_id: int) -> Response:
    with bridge().database.transaction() as session:
        method = contacts.verify(session, method_id, actor_name(), datetime.now(UTC))
        return jsonify(ContactMethodSchema().dump(method))


@blueprint.post("/contact-methods/<int:method_id>/test")
@requires(Role.ADMIN)
@documented(
    summary="Queue a test message to a contact method (pageable once it is sent)",
    tag="on-call",
    status=202,
    errors=(*ADMIN, 404),
)
def test_contact_method(method_id: int) -> tuple[Response, int]:
    with bridge().database.transaction() as session:
        method = contacts.get_method(session, method_id)
        queued = notification_outbox.queue_method_test(session, method, datetime.now(UTC))
        return jsonify({"notification_id": queued.id, "contact_method_id": method.id}), 202
