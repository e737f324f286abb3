"""/api/services and /api/integrations: admins run the bridge's configuration."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Response, jsonify, request

from app.extensions import bridge
from app.served_url import served_base_url
from app.services import catalog
from app.services.accounts import Role
from app.web.api import blueprint
from app.web.api.docs import documented, json_body
from app.web.auth import requires
from app.web.schemas import (
    CreatedIntegrationSchema,
    IntegrationInputSchema,
    IntegrationSchema,
    IntegrationUpdateSchema,
    SecretInputSchema,
    SecretResultSchema,
    ServiceInputSchema,
    ServiceSchema,
    ServiceUpdateSchema,
)

ADMIN_ERRORS = (401, 403)


def _integration_schema(**kwargs: Any) -> IntegrationSchema:
    return IntegrationSchema(served_base_url(bridge().settings, request.host_url).url, **kwargs)


@blueprint.get("/services")
@requires(Role.ADMIN)
@documented(
    summary="List services", tag="admin", response=ServiceSchema(many=True), errors=ADMIN_ERRORS
)
def list_services() -> Response:
    with bridge().database.transaction() as session:
        return jsonify(ServiceSchema(many=True).dump(catalog.list_services(session)))


@blueprint.post("/services")
@requires(Role.ADMIN)
@documented(
    summary="Create a service",
    tag="admin",
    body=ServiceInputSchema,
    response=ServiceSchema,
    status=201,
    errors=(*ADMIN_ERRORS, 409, 422),
)
def create_service() -> tuple[Response, int]:
    data = json_body(ServiceInputSchema())
    with bridge().database.transaction() as session:
        service = catalog.create_service(
            session, data["name"], datetime.now(UTC), data["reopen_window_minutes"]
        )
        return jsonify(ServiceSchema().dump(service)), 201


@blueprint.get("/services/<int:service_id>")
@requires(Role.ADMIN)
@documented(summary="One service", tag="admin", response=ServiceSchema, errors=(*ADMIN_ERRORS, 404))
def show_service(service_id: int) -> Response:
    with bridge().database.transaction() as session:
        return jsonify(ServiceSchema().dump(catalog.get_service(session, service_id)))


@blueprint.patch("/services/<int:service_id>")
@requires(Role.ADMIN)
@documented(
    summary="Rename a service or set its reopen window",
    tag="admin",
    body=ServiceUpdateSchema,
    response=ServiceSchema,
    errors=(*ADMIN_ERRORS, 404, 409, 422),
)
def update_service(service_id: int) -> Response:
    data = json_body(ServiceUpdateSchema())
    with bridge().database.transaction() as session:
        service = catalog.update_service(
            session, service_id, data.get("name"), data.get("reopen_window_minutes")
        )
        return jsonify(ServiceSchema().dump(service))


@blueprint.get("/integrations")
@requires(Role.ADMIN)
@documented(
    summary="List integrations",
    tag="admin",
    response=IntegrationSchema("", many=True),
    errors=ADMIN_ERRORS,
)
def list_integrations() -> Response:
    with bridge().database.transaction() as session:
        return jsonify(_integration_schema(many=True).dump(catalog.list_integrations(session)))


@blueprint.post("/integrations")
@requires(Role.ADMIN)
@documented(
    summary="Create a Sentry integration; a generated secret is shown once (a pasted one never)",
    tag="admin",
    body=IntegrationInputSchema,
    response=CreatedIntegrationSchema(""),
    status=201,
    errors=(*ADMIN_ERRORS, 404, 422),
)
def create_integration() -> tuple[Response, int]:
    data = json_body(IntegrationInputSchema())
    with bridge().database.transaction() as session:
        service = catalog.get_service(session, data["service_id"])
        created = catalog.create_integration(
            session,
            bridge().secrets,
            service,
            datetime.now(UTC),
            name=data.get("name"),
            secret=data.get("secret"),
            generate=data["generate_secret"],
        )
        document = _integration_schema().dump(created.integration)
        # Shown once when the bridge made it; a pasted secret is never echoed back.
        if data["generate_secret"] and created.secret is not None:
            document["secret"] = created.secret
        return jsonify(document), 201


@blueprint.get("/integrations/<integration_id>")
@requires(Role.ADMIN)
@documented(
    summary="One integration",
    tag="admin",
    response=IntegrationSchema(""),
    errors=(*ADMIN_ERRORS, 404),
)
def show_integration(integration_id: str) -> Response:
    with bridge().database.transaction() as session:
        return jsonify(_integration_schema().dump(catalog.get_integration(session, integration_id)))


@blueprint.patch("/integrations/<integration_id>")
@requires(Role.ADMIN)
@documented(
    summary="Rename, enable or disable an integration",
    tag="admin",
    body=IntegrationUpdateSchema,
    response=IntegrationSchema(""),
    errors=(*ADMIN_ERRORS, 404, 422),
)
def update_integration(integration_id: str) -> Response:
    data = json_body(IntegrationUpdateSchema())
    with bridge().database.transaction() as session:
        integration = catalog.update_integration(
            session, integration_id, datetime.now(UTC), data.get("name"), data.get("enabled")
        )
        return jsonify(_integration_schema().dump(integration))


@blueprint.post("/integrations/<integration_id>/secret")
@requires(Role.ADMIN)
@documented(
    summary="Set (paste Sentry's Client Secret) or generate a new signing secret",
    tag="admin",
    body=SecretInputSchema,
    response=SecretResultSchema,
    errors=(*ADMIN_ERRORS, 404, 422),
    description="The previous secret stays valid for BRIDGE_SECRET_GRACE_SECONDS.",
)
def set_secret(integration_id: str) -> Response:
    data = json_body(SecretInputSchema())
    app_bridge = bridge()
    now = datetime.now(UTC)
    grace = timedelta(seconds=app_bridge.settings.secret_grace_seconds)
    with app_bridge.database.transaction() as session:
        had_secret = catalog.get_integration(session, integration_id).has_secret
        secret = catalog.rotate_secret(
            session, app_bridge.secrets, integration_id, now, grace, data.get("secret")
        )
        integration = catalog.get_integration(session, integration_id)
        return jsonify(
            {
                "integration": _integration_schema().dump(integration),
                # A pasted secret is never echoed back (null); a generated one, once.
                "secret": None if data.get("secret") else secret,
                "previous_secret_valid_until": (now + grace).isoformat()
                if had_secret and grace
                else None,
            }
        )


@blueprint.delete("/integrations/<integration_id>/secret")
@requires(Role.ADMIN)
@documented(
    summary="Remove the signing secret (the integration id becomes the only credential)",
    tag="admin",
    response=IntegrationSchema(""),
    errors=(*ADMIN_ERRORS, 404),
)
def remove_secret(integration_id: str) -> Response:
    with bridge().database.transaction() as session:
        integration = catalog.remove_secret(session, integration_id, datetime.now(UTC))
        return jsonify(_integration_schema().dump(integration))
