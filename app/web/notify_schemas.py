"""JSON shapes of channels, silences and notifications (API and `bridge` command line)."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import Schema, ValidationError, fields, validate, validates_schema

from app.channels.base import CHANNEL_KINDS

SEVERITIES = ("critical", "error", "warning", "info")


class ChannelSchema(Schema):
    """A channel as shown after creation: its target masked, never its secrets."""

    id = fields.Integer()
    service_id = fields.Integer()
    service = fields.Function(lambda channel: channel.service.name)
    kind = fields.String()
    name = fields.String()
    enabled = fields.Boolean()
    min_severity = fields.String()
    events = fields.Function(lambda channel: channel.events.split(","))
    target = fields.String(attribute="masked")
    created_at = fields.DateTime()


class CreatedChannelSchema(ChannelSchema):
    """A channel as created: a generated webhook secret appears here once."""

    secret = fields.String(allow_none=True)


class ChannelInputSchema(Schema):
    service_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    kind = fields.String(required=True, validate=validate.OneOf(CHANNEL_KINDS))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    url = fields.String(validate=validate.Length(min=1, max=2000))
    to = fields.List(fields.Email(), validate=validate.Length(min=1, max=50))
    routing_key = fields.String(validate=validate.Length(min=1, max=200))
    generate_secret = fields.Boolean(load_default=False)
    min_severity = fields.String(load_default="error", validate=validate.OneOf(SEVERITIES))
    events = fields.List(fields.String(validate=validate.Length(min=1, max=40)))


class SilenceSchema(Schema):
    id = fields.Integer()
    service_id = fields.Integer()
    service = fields.Function(lambda silence: silence.service.name)
    match = fields.String(attribute="match_text", allow_none=True)
    starts_at = fields.DateTime()
    ends_at = fields.DateTime()
    ended_at = fields.DateTime(allow_none=True)
    reason = fields.String()
    created_by = fields.String()
    created_at = fields.DateTime()


class SilenceInputSchema(Schema):
    service_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    minutes = fields.Integer(validate=validate.Range(min=1, max=90 * 24 * 60))
    until = fields.AwareDateTime(default_timezone=UTC)
    match = fields.String(validate=validate.Length(min=1, max=200))
    reason = fields.String(required=True, validate=validate.Length(min=1, max=2000))

    @validates_schema
    def _one_end(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if ("minutes" in data) == ("until" in data):
            raise ValidationError("give minutes or until, not both", "minutes")


class IncidentSilenceInputSchema(Schema):
    hours = fields.Integer(required=True, validate=validate.OneOf([1, 4, 24]))
    reason = fields.String(validate=validate.Length(min=1, max=2000))


class NotificationSchema(Schema):
    id = fields.String()
    channel_id = fields.Integer(allow_none=True)
    # A page to a person goes to one of their contact methods instead of a channel.
    contact_method_id = fields.Integer(allow_none=True)
    incident_id = fields.Integer(allow_none=True)
    type = fields.String()
    status = fields.String()
    attempts = fields.Integer()
    next_attempt_at = fields.DateTime()
    created_at = fields.DateTime()
    sent_at = fields.DateTime(allow_none=True)
    last_error = fields.String(allow_none=True)


class NotificationListQuerySchema(Schema):
    status = fields.String(validate=validate.OneOf(["queued", "sending", "sent", "failed", "held"]))
    limit = fields.Integer(load_default=100, validate=validate.Range(min=1, max=500))
