"""Outbound JSON shapes of on-call objects, shared by the API and the `bridge` command."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields, validate

from app.domain.escalation import MAX_REPEAT
from app.domain.schedule import MAX_SHIFT_COUNT, WEEKDAYS
from app.services.contacts import is_pageable, masked_target
from app.services.escalation_policies import step_texts
from app.web.schemas import ServiceSchema

SEVERITIES = ["critical", "error", "warning", "info"]
MAX_INTEGER = 2**31 - 1


def _handoff(layer: Any) -> str:
    if layer.handoff_weekday is None:
        return str(layer.handoff_time)
    return f"{WEEKDAYS[layer.handoff_weekday]} {layer.handoff_time}"


class LayerSchema(Schema):
    position = fields.Integer()
    shift_count = fields.Integer()
    shift_unit = fields.String()
    handoff = fields.Function(_handoff)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime(allow_none=True)
    members = fields.Function(lambda layer: [m.user.email for m in layer.members])


class OverrideSchema(Schema):
    id = fields.Integer()
    user = fields.Function(lambda override: override.user.email)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()


class ScheduleSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    timezone = fields.String()
    layers = fields.List(fields.Nested(LayerSchema))
    overrides = fields.List(fields.Nested(OverrideSchema))


class OnCallSchema(Schema):
    """Who is on call: `user` null is a gap; `from`/`until` null are unbounded."""

    user = fields.String(attribute="person", allow_none=True)
    from_ = fields.DateTime(attribute="start", data_key="from", allow_none=True)
    until = fields.DateTime(attribute="end", allow_none=True)
    source = fields.String()


class PolicySchema(Schema):
    id = fields.Integer()
    name = fields.String()
    repeat = fields.Integer()
    repeat_after_minutes = fields.Integer(allow_none=True)
    steps = fields.Function(step_texts)


class ContactMethodSchema(Schema):
    id = fields.Integer()
    user = fields.Function(lambda method: method.user.email)
    kind = fields.String()
    label = fields.String(allow_none=True)
    target = fields.Function(masked_target)  # never the Apprise URL itself
    verified = fields.Boolean()
    verified_at = fields.DateTime(allow_none=True)
    verified_by = fields.String(allow_none=True)
    tested_at = fields.DateTime(allow_none=True)
    pageable = fields.Function(is_pageable)


class ServicePagingSchema(ServiceSchema):
    escalation_policy_id = fields.Integer(allow_none=True)
    ack_timeout_minutes = fields.Integer(allow_none=True)
    page_min_severity = fields.String()


# ---------------------------------------------------------------- API input


class LayerInputSchema(Schema):
    members = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    rotation = fields.String(validate=validate.OneOf(["hourly", "daily", "weekly"]))
    shift_hours = fields.Integer(validate=validate.Range(min=1, max=MAX_SHIFT_COUNT))
    handoff = fields.String()
    start = fields.DateTime()
    end = fields.DateTime()


class ScheduleInputSchema(LayerInputSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    timezone = fields.String(required=True)


class OverrideInputSchema(Schema):
    user = fields.String(required=True)
    from_ = fields.DateTime(required=True, data_key="from")
    until = fields.DateTime(required=True)


class WhoQuerySchema(Schema):
    at = fields.DateTime()


class PolicyInputSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    steps = fields.List(fields.String(), required=True, validate=validate.Length(min=1))
    repeat = fields.Integer(load_default=0, validate=validate.Range(min=0, max=MAX_REPEAT))
    repeat_after_minutes = fields.Integer(
        load_default=None, allow_none=True, validate=validate.Range(min=0, max=MAX_INTEGER)
    )


class ServicePagingInputSchema(Schema):
    # Ids and minutes are INTEGER columns: beyond 2**31 - 1 is invalid input, not a 500.
    escalation_policy_id = fields.Integer(
        allow_none=True, validate=validate.Range(min=1, max=MAX_INTEGER)
    )
    ack_timeout_minutes = fields.Integer(
        allow_none=True, validate=validate.Range(min=1, max=MAX_INTEGER)
    )
    page_min_severity = fields.String(validate=validate.OneOf(SEVERITIES))


class ContactInputSchema(Schema):
    user = fields.String(required=True)
    apprise = fields.String(required=True, validate=validate.Length(min=4, max=2000))
    label = fields.String(validate=validate.Length(max=200))


class ContactQuerySchema(Schema):
    user = fields.Email(required=True)
