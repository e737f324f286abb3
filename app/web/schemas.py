"""Outbound JSON shapes, shared by the HTTP API and the `bridge` command line."""

from __future__ import annotations

from datetime import UTC
from typing import Any

from marshmallow import INCLUDE, Schema, ValidationError, fields, validate, validates_schema

from app.domain.redaction import redacted_body
from app.web.errors import error_fields


class ServiceSchema(Schema):
    id = fields.Integer()
    name = fields.String()
    slug = fields.String()
    reopen_window_minutes = fields.Integer()
    created_at = fields.DateTime()


class IntegrationSchema(Schema):
    id = fields.String()
    service = fields.Function(lambda integration: integration.service.name)
    name = fields.String()
    kind = fields.String()
    enabled = fields.Boolean()
    has_secret = fields.Boolean()
    webhook_url = fields.Method("get_webhook_url")

    def get_webhook_url(self, integration: Any) -> str:
        base = str(self.context_base_url).rstrip("/")
        return f"{base}/api/integrations/sentry?integrationId={integration.id}"

    def __init__(self, base_url: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.context_base_url = base_url


class CreatedIntegrationSchema(IntegrationSchema):
    """An integration as created: its secret appears here once and never again."""

    secret = fields.String(allow_none=True)


class SentryLinksSchema(Schema):
    issue_id = fields.String(attribute="sentry_issue_id", allow_none=True)
    short_id = fields.String(attribute="sentry_short_id", allow_none=True)
    issue_url = fields.String(attribute="sentry_issue_url", allow_none=True)
    project = fields.String(attribute="sentry_project", allow_none=True)
    # What the payloads said of the issue or event, kept without enrichment (null when the
    # format does not carry it: issue webhooks name no environment, events no counts).
    culprit = fields.String(allow_none=True)
    environment = fields.String(allow_none=True)
    release = fields.String(allow_none=True)
    platform = fields.String(allow_none=True)
    tags = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    count = fields.Integer(attribute="sentry_count", allow_none=True)
    user_count = fields.Integer(attribute="sentry_user_count", allow_none=True)


class _Itself(fields.Nested):
    """The object itself through another schema (documented as that schema)."""

    def get_value(self, obj: Any, attr: str, accessor: Any = None, default: Any = None) -> Any:
        return obj


class IncidentSummarySchema(Schema):
    """The incident as the webhook answers it."""

    id = fields.Integer()
    status = fields.String()
    severity = fields.String()
    event_count = fields.Integer()
    title = fields.String()
    source = fields.String()


class IncidentSchema(IncidentSummarySchema):
    service = fields.Function(lambda incident: incident.service.name)
    dedup_key = fields.String()
    reopen_count = fields.Integer()
    assignee = fields.String(allow_none=True)
    first_event_at = fields.DateTime()
    last_event_at = fields.DateTime()
    triggered_at = fields.DateTime()
    acknowledged_at = fields.DateTime(allow_none=True)
    resolved_at = fields.DateTime(allow_none=True)
    sentry = _Itself(SentryLinksSchema)
    # The newest event's own time as its payload said it (triggered_at is the bridge's).
    event_at = fields.DateTime(allow_none=True)
    # The bridge's own test alert (the admin's "Send test alert").
    is_test = fields.Boolean()


class WebhookQuerySchema(Schema):
    integrationId = fields.String(required=True)  # Sentry's URL spells it so


class IngestResultSchema(Schema):
    action = fields.String()
    dedup_key = fields.String(allow_none=True)
    matched = fields.Boolean()
    incident = fields.Nested(IncidentSummarySchema, allow_none=True)
    reason = fields.String(allow_none=True)
    delivery_id = fields.Function(lambda outcome: outcome.delivery.id, allow_none=True)
    # Set instead of delivery_id when the database was down and the delivery was spooled.
    spool_id = fields.Function(lambda outcome: None, allow_none=True)


# ---------------------------------------------------------------- API: reading


class IncidentPageSchema(Schema):
    items = fields.List(fields.Nested(IncidentSchema))
    next_cursor = fields.String(allow_none=True)


class TimelineEntrySchema(Schema):
    id = fields.Integer()
    at = fields.DateTime()
    kind = fields.String()
    actor = fields.String()
    message = fields.String()
    data = fields.Dict(allow_none=True)
    delivery_id = fields.Integer(allow_none=True)


class DeliverySummarySchema(Schema):
    id = fields.Integer()
    integration_id = fields.String()
    received_at = fields.DateTime()
    request_id = fields.String(allow_none=True)
    hook_resource = fields.String(allow_none=True)
    signature_outcome = fields.String()
    format = fields.String(allow_none=True)
    resource = fields.String(allow_none=True)
    action = fields.String(allow_none=True)
    dedup_key = fields.String(allow_none=True)
    decision = fields.String()
    reason = fields.String(allow_none=True)
    error_code = fields.String(allow_none=True)
    http_status = fields.Integer()
    incident_id = fields.Integer(allow_none=True)
    replay_of_id = fields.Integer(allow_none=True)
    replayed_by = fields.String(allow_none=True)
    body_size = fields.Integer()
    body_sha256 = fields.String(allow_none=True)
    # True when only the body's first 8 KiB were kept (a refused delivery).
    body_truncated = fields.Boolean()


class DeliveryHeadersSchema(Schema):
    request_id = fields.String(data_key="Request-ID", allow_none=True)
    hook_resource = fields.String(data_key="Sentry-Hook-Resource", allow_none=True)
    hook_timestamp = fields.String(data_key="Sentry-Hook-Timestamp", allow_none=True)
    content_type = fields.String(data_key="Content-Type", allow_none=True)
    user_agent = fields.String(data_key="User-Agent", allow_none=True)


class DeliveryDetailSchema(DeliverySummarySchema):
    headers = fields.Function(lambda delivery: DeliveryHeadersSchema().dump(delivery))
    body = fields.Function(
        lambda delivery: redacted_body(delivery.body) if delivery.body is not None else None,
        allow_none=True,
    )


class DeliveryPageSchema(Schema):
    items = fields.List(fields.Nested(DeliverySummarySchema))
    next_cursor = fields.String(allow_none=True)


INTEGRATION_PREFIX_LENGTH = 6


class IncidentDeliverySchema(DeliverySummarySchema):
    """A delivery as responders see it on an incident: an unsigned integration's id is
    its credential, so only its first characters are shown, as on the admin pages."""

    class Meta:
        exclude = ("integration_id",)

    integration = fields.Function(
        lambda delivery: f"{delivery.integration_id[:INTEGRATION_PREFIX_LENGTH]}…"
    )


class IncidentDetailSchema(IncidentSchema):
    enrichment = fields.Dict(allow_none=True)
    timeline = fields.List(fields.Nested(TimelineEntrySchema))
    deliveries = fields.List(fields.Nested(IncidentDeliverySchema))


class ErrorBodySchema(Schema):
    """One JSON error shape; some errors add details (e.g. `fields`, `current_status`)."""

    class Meta:
        unknown = INCLUDE  # documented as additionalProperties: details vary by error

    code = fields.String(required=True)
    message = fields.String(required=True)
    status = fields.Integer(required=True)
    fields_ = fields.Dict(
        data_key="fields", keys=fields.String(), values=fields.List(fields.String())
    )


class ErrorSchema(Schema):
    error = fields.Nested(ErrorBodySchema, required=True)


class ReplayResultSchema(IngestResultSchema):
    # The one error document (app/web/errors.py), with the status the sender would have had.
    error = fields.Function(
        lambda outcome: (
            error_fields(
                outcome.http_status,
                outcome.error.code,
                outcome.error.message,
                outcome.error.details,
            )
            if outcome.error is not None
            else None
        ),
        allow_none=True,
    )


class SecretResultSchema(Schema):
    integration = fields.Raw()
    secret = fields.String(allow_none=True)  # null when pasted: never echoed back
    previous_secret_valid_until = fields.DateTime(allow_none=True)


# ---------------------------------------------------------------- API: input


class IncidentListQuerySchema(Schema):
    # "open" is triggered and acknowledged together.
    status = fields.String(
        validate=validate.OneOf(["triggered", "acknowledged", "resolved", "open"])
    )
    severity = fields.String(validate=validate.OneOf(["critical", "error", "warning", "info"]))
    service = fields.String(validate=validate.Length(min=1, max=200))
    dedup_key = fields.String(validate=validate.Length(min=1, max=255))
    q = fields.String(validate=validate.Length(min=1, max=200))
    since = fields.AwareDateTime(default_timezone=UTC)
    until = fields.AwareDateTime(default_timezone=UTC)
    sort = fields.String(
        load_default="-id",
        validate=validate.OneOf(
            ["-id", "id", "-last_event_at", "last_event_at", "urgency", "-severity", "severity"]
        ),
    )
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(min=1, max=500))
    # `me` (the token's user) or a user's email.
    assignee = fields.String(validate=validate.Length(min=1, max=320))
    # Test alerts: shown (the default), hidden, or only they.
    test = fields.String(validate=validate.OneOf(["show", "hide", "only"]))


class AssignInputSchema(Schema):
    # A user's email, or null to unassign.
    user = fields.String(required=True, allow_none=True, validate=validate.Length(min=1, max=320))


class BulkActionInputSchema(Schema):
    action = fields.String(required=True, validate=validate.OneOf(["acknowledge", "resolve"]))
    ids = fields.List(
        fields.Integer(strict=True, validate=validate.Range(min=1, max=2**31 - 1)),
        required=True,
        validate=validate.Length(min=1, max=100),
    )


class BulkItemResultSchema(Schema):
    """One id's outcome: ok with the incident as it now is, or the error the single action
    would have answered (status 404 or 409, same code and message)."""

    id = fields.Integer(required=True)
    ok = fields.Boolean(required=True)
    incident = fields.Nested(IncidentSchema, allow_none=True)
    error = fields.Nested(ErrorBodySchema, allow_none=True)


class BulkActionResultSchema(Schema):
    action = fields.String(required=True)
    results = fields.List(fields.Nested(BulkItemResultSchema), required=True)
    changed = fields.Integer(required=True)
    failed = fields.Integer(required=True)


class DeliveryListQuerySchema(Schema):
    integration_id = fields.String(validate=validate.Length(min=1, max=64))
    decision = fields.String(validate=validate.Length(min=1, max=40))
    since = fields.AwareDateTime(default_timezone=UTC)
    until = fields.AwareDateTime(default_timezone=UTC)
    limit = fields.Integer(load_default=50, validate=validate.Range(min=1, max=200))
    cursor = fields.String(validate=validate.Length(min=1, max=500))


class NoteInputSchema(Schema):
    text = fields.String(required=True, validate=validate.Length(min=1, max=10_000))


class ServiceInputSchema(Schema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    reopen_window_minutes = fields.Integer(
        load_default=30, validate=validate.Range(min=0, max=7 * 24 * 60)
    )


class ServiceUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    reopen_window_minutes = fields.Integer(validate=validate.Range(min=0, max=7 * 24 * 60))


class IntegrationInputSchema(Schema):
    service_id = fields.Integer(required=True, validate=validate.Range(min=1, max=2**31 - 1))
    name = fields.String(validate=validate.Length(min=1, max=200))
    secret = fields.String(validate=validate.Length(min=1, max=500))
    generate_secret = fields.Boolean(load_default=False)

    @validates_schema
    def _one_secret_source(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if data.get("secret") and data.get("generate_secret"):
            raise ValidationError("give a secret or generate one, not both", "secret")


class IntegrationUpdateSchema(Schema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    enabled = fields.Boolean()


class SecretInputSchema(Schema):
    secret = fields.String(validate=validate.Length(min=1, max=500))
    generate = fields.Boolean(load_default=False)

    @validates_schema
    def _exactly_one(self, data: dict[str, Any], **_kwargs: Any) -> None:
        if bool(data.get("secret")) == bool(data.get("generate")):
            raise ValidationError(
                "paste a secret (Sentry's Client Secret) or set generate: true", "secret"
            )
