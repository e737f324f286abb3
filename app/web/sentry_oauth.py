"""/api/v2/integrations/sentry: connect Sentry organisations (SPEC 6).

Every answer is {"success", "data", "error"}. Tokens are write-only: no answer carries one.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from urllib.parse import urlencode

from flask import Blueprint, Response, jsonify, request
from marshmallow import Schema, fields

from app.domain.errors import (
    BridgeError,
    Forbidden,
    InvalidInput,
)
from app.extensions import bridge
from app.sentry.errors import SentryNotConfigured
from app.services import sentry_installations as installs
from app.services import sentry_oauth_states as oauth_states
from app.services.accounts import Role
from app.services.sentry_gateway import SentryGateway
from app.services.write_back import set_write_back
from app.store.installations import InstallationStatus
from app.store.models import SentryInstallation
from app.web.api.docs import documented
from app.web.auth import current_user, requires
from app.web.errors import envelope_refusal
from app.web.request_json import read_json_object

F = TypeVar("F", bound=Callable[..., Any])
blueprint = Blueprint("sentry_oauth", __name__, url_prefix="/api/v2/integrations/sentry")


class EnvelopeErrorSchema(Schema):
    code = fields.String()
    message = fields.String()
    status = fields.Integer()


class EnvelopeSchema(Schema):
    """{"success", "data", "error"}: data on success, error (code, message) otherwise."""

    success = fields.Boolean(required=True)
    data = fields.Dict(allow_none=True)
    error = fields.Nested(EnvelopeErrorSchema, allow_none=True)


class InitiateInputSchema(Schema):
    user_id = fields.Integer()
    integration_id = fields.String()


class SaveInputSchema(Schema):
    org_slug = fields.String(required=True)
    token = fields.String(required=True, load_only=True)
    user_id = fields.Integer()
    integration_id = fields.String()
    installation_uuid = fields.String()
    app_uuid = fields.String()
    write_back = fields.Boolean()


class WriteBackInputSchema(Schema):
    integration_id = fields.String(required=True)
    enabled = fields.Boolean(required=True)


def _doc(summary: str, **kwargs: Any) -> Callable[[F], F]:
    """Every route here answers the envelope, errors included (so no shared Error schema)."""
    return documented(
        summary=summary,
        tag="sentry",
        response=EnvelopeSchema,
        description="Errors answer the same envelope with success false and an error object.",
        **kwargs,
    )


def gateway() -> SentryGateway:
    return bridge().sentry_gateway


def _answer(data: Any, status: int = 200) -> Response:
    response = jsonify({"success": True, "data": data, "error": None})
    response.status_code = status
    return response


@blueprint.errorhandler(BridgeError)
def _refused(error: BridgeError) -> Response:
    # The envelope around the one error document, from the one table (app/web/errors.py).
    return envelope_refusal(error)


def installation_view(installation: SentryInstallation) -> dict[str, Any]:
    """An installation as the API shows it: status and dates, never a token."""
    return {
        "id": installation.id,
        "uuid": installation.uuid,
        "kind": installation.kind,
        "status": installation.status,
        "org_slug": installation.org_slug,
        "integration_id": installation.integration_id,
        "user_id": installation.user_id,
        "has_token": installation.token_ciphertext is not None,
        "has_refresh_token": installation.refresh_token_ciphertext is not None,
        "expires_at": _iso(installation.expires_at),
        "last_refreshed_at": _iso(installation.last_refreshed_at),
        "last_error": installation.last_error,
        "created_at": _iso(installation.created_at),
        "revoked_at": _iso(installation.revoked_at),
    }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _body() -> dict[str, Any]:
    return read_json_object()


def _optional(document: dict[str, Any], name: str, kind: type) -> Any:
    value = document.get(name)
    if value is None:
        return None
    if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
        raise InvalidInput(f"{name} must be a {kind.__name__}.", fields={name: ["wrong type"]})
    return value


def _may_act_for(user_id: int) -> None:
    me = current_user()
    if me.id != user_id and me.role != Role.ADMIN.value:
        raise Forbidden("Only admins may see or change another person's Sentry connections.")


@blueprint.post("/initiate")
@requires(Role.ADMIN)
@_doc(
    "Start installing the public Sentry integration: install URL and OAuth state",
    status=201,
    body=InitiateInputSchema,
)
def initiate() -> Response:
    """Start a public-integration install: a checked OAuth state and Sentry's install URL."""
    settings = bridge().settings
    if not settings.sentry_app_slug:
        raise SentryNotConfigured(
            "The bridge has no SENTRY_APP_SLUG, so it cannot point you to the install page."
        )
    document = _body()
    user_id = _optional(document, "user_id", int) or current_user().id
    integration_id = _optional(document, "integration_id", str)
    now = datetime.now(UTC)
    with bridge().database.transaction() as session:
        state, expires_at = oauth_states.create_state(
            session,
            user_id,
            integration_id,
            now,
            timedelta(seconds=settings.sentry_oauth_state_ttl_seconds),
        )
    query = urlencode({"state": state})
    install_url = (
        f"{settings.sentry_base_url}/sentry-apps/{settings.sentry_app_slug}/external-install/"
        f"?{query}"
    )
    return _answer(
        {"install_url": install_url, "state": state, "expires_at": expires_at.isoformat()}, 201
    )


@blueprint.get("/oauth/callback")
@_doc("Sentry's setup redirect (code, installationId, orgSlug, state)")
def oauth_callback() -> Response:
    """Sentry's setup redirect: check the state, trade the code, verify the install."""
    code = request.args.get("code")
    uuid = request.args.get("installationId")
    org_slug = request.args.get("orgSlug")
    missing = [name for name, value in (("code", code), ("installationId", uuid)) if not value]
    if missing:
        raise InvalidInput(
            f"The setup redirect lacks {', '.join(missing)}; Sentry sends code, "
            "installationId and orgSlug.",
            fields={name: ["required"] for name in missing},
        )
    assert code is not None and uuid is not None
    with bridge().database.transaction() as session:
        state = oauth_states.consume_state(session, request.args.get("state"), datetime.now(UTC))
        user_id, integration_id = state.user_id, state.integration_id
    result = gateway().complete_installation(
        uuid=uuid, code=code, org_slug=org_slug, integration_id=integration_id, user_id=user_id
    )
    with bridge().database.transaction() as session:
        view = installation_view(installs.get_installation(session, result.installation_id))
    view["outcome"] = result.outcome
    return _answer(view, 202 if result.outcome == "in_progress" else 200)


@blueprint.post("/save")
@requires(Role.ADMIN)
@_doc("Store an internal integration's token for an organisation", status=201, body=SaveInputSchema)
def save() -> Response:
    """Store an internal integration's token for an org (it never expires)."""
    document = _body()
    user_id = _optional(document, "user_id", int) or current_user().id
    write_back = _optional(document, "write_back", bool)
    integration_id = _optional(document, "integration_id", str)
    now = datetime.now(UTC)
    with bridge().database.transaction() as session:
        installation = installs.save_internal_token(
            session,
            bridge().secrets,
            user_id=user_id,
            integration_id=integration_id,
            org_slug=_optional(document, "org_slug", str) or "",
            token=_optional(document, "token", str) or "",
            installation_uuid=_optional(document, "installation_uuid", str),
            app_uuid=_optional(document, "app_uuid", str),
            now=now,
        )
        if write_back is not None:
            if integration_id is None:
                raise InvalidInput(
                    "write_back applies to an integration; give integration_id too.",
                    fields={"integration_id": ["required with write_back"]},
                )
            set_write_back(session, integration_id, write_back, now)
        view = installation_view(installation)
    return _answer(view, 201)


@blueprint.get("/status/<int:user_id>")
@requires()
@_doc("A person's connected Sentry organisations (admins: anyone's)")
def status(user_id: int) -> Response:
    """The person's connected Sentry organisations and the state of their tokens."""
    _may_act_for(user_id)
    with bridge().database.transaction() as session:
        found = installs.installations_of_user(session, user_id)
        views = [installation_view(installation) for installation in found]
    connected = any(view["status"] == InstallationStatus.INSTALLED for view in views)
    return _answer({"user_id": user_id, "connected": connected, "installations": views})


@blueprint.delete("/revoke/<int:user_id>")
@requires()
@_doc("Forget a person's Sentry tokens (?org_slug= for one organisation)")
def revoke(user_id: int) -> Response:
    """Forget the person's Sentry tokens (of one org with ?org_slug=)."""
    _may_act_for(user_id)
    with bridge().database.transaction() as session:
        revoked = installs.revoke_for_user(
            session, user_id, datetime.now(UTC), request.args.get("org_slug") or None
        )
        views = [installation_view(installation) for installation in revoked]
    return _answer({"user_id": user_id, "revoked": views})


@blueprint.post("/write-back")
@requires(Role.ADMIN)
@_doc("Turn write-back to Sentry on or off for an integration", body=WriteBackInputSchema)
def write_back() -> Response:
    """Turn write-back on or off for one integration."""
    document = _body()
    integration_id = _optional(document, "integration_id", str)
    enabled = _optional(document, "enabled", bool)
    if integration_id is None or enabled is None:
        raise InvalidInput(
            "Give integration_id and enabled (true or false).",
            fields={"integration_id": ["required"], "enabled": ["required"]},
        )
    with bridge().database.transaction() as session:
        integration = set_write_back(session, integration_id, enabled, datetime.now(UTC))
        data = {"integration_id": integration.id, "write_back": integration.write_back}
    return _answer(data)
