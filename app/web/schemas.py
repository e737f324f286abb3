"""Outbound JSON shapes, shared by the HTTP API and the `bridge` command line."""

from __future__ import annotations

from typing import Any

from marshmallow import Schema, fields


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


class SentryLinksSchema(Schema):
    issue_id = fields.String(attribute="sentry_issue_id", allow_none=True)
    short_id = fields.String(attribute="sentry_short_id", allow_none=True)
    issue_url = fields.String(attribute="sentry_issue_url", allow_none=True)
    project = fields.String(attribute="sentry_project", allow_none=True)


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
    sentry = fields.Function(lambda incident: SentryLinksSchema().dump(incident))


class IngestResultSchema(Schema):
    action = fields.String()
    dedup_key = fields.String(allow_none=True)
    matched = fields.Boolean()
    incident = fields.Nested(IncidentSummarySchema, allow_none=True)
    reason = fields.String(allow_none=True)
    delivery_id = fields.Function(lambda outcome: outcome.delivery.id)
