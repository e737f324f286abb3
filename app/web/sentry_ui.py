"""Sentry UI-component endpoints, called by Sentry with `Sentry-App-Signature`.

Sentry builds their URL from the webhook URL's host and the component's `uri`, so they sit
at fixed paths (see docs/sentry-oauth.md for the schema to paste into Sentry). POST bodies
are signed as received; select-option GETs sign the empty string (their query is not).
Errors answer the error document at the top level ({"message", "code", "status"}):
Sentry shows its message to the person filling in the form.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, jsonify, request

from app.domain.errors import BridgeError, SignatureMismatch, SignatureMissing
from app.domain.payload_values import text as _text
from app.extensions import bridge
from app.sentry.signatures import signing_secret_index
from app.services import sentry_ui
from app.store.models import Integration, SentryInstallation
from app.web.errors import error_fields, status_for
from app.web.request_json import read_json_object

blueprint = Blueprint("sentry_ui", __name__, url_prefix="/sentry/ui")


@blueprint.errorhandler(BridgeError)
def _refused(error: BridgeError) -> Response:
    # Sentry shows a UI component's top-level "message" to the person filling in the form,
    # so the one error document (app/web/errors.py) is the body itself, not under "error".
    status = status_for(error)
    response = jsonify(error_fields(status, error.code, error.message, error.details))
    response.status_code = status
    return response


def _verified(installation_uuid: str | None, signed: bytes) -> SentryInstallation | None:
    """Check Sentry-App-Signature against the app's client secret (or the integration's)."""
    signature = request.headers.get("Sentry-App-Signature")
    if not signature:
        raise SignatureMissing("Sentry UI-component requests carry a Sentry-App-Signature header.")
    app_bridge = bridge()
    with app_bridge.database.transaction() as session:
        installation = sentry_ui.find_installation(session, installation_uuid)
        secrets = [app_bridge.settings.sentry_client_secret]
        if installation is not None and installation.integration_id:
            integration = session.get(Integration, installation.integration_id)
            if integration is not None and integration.secret_ciphertext:
                secrets.append(app_bridge.secrets.decrypt(integration.secret_ciphertext))
        if installation is not None:
            session.expunge(installation)
    if signing_secret_index(secrets, signed, signature) is None:
        raise SignatureMismatch(
            "The Sentry-App-Signature does not match: the bridge checks it with "
            "SENTRY_CLIENT_SECRET (or the integration's signing secret)."
        )
    return installation


def _json_body() -> tuple[bytes, dict[str, Any]]:
    document = read_json_object(required=True, max_bytes=bridge().settings.max_body_bytes)
    return request.get_data(cache=True), document


@blueprint.post("/alert-rule-action")
def alert_rule_action() -> Response:
    """Validate the alert-rule action's settings: the service must exist."""
    raw, body = _json_body()
    installation = _verified(_text(body.get("installationId")), raw)
    with bridge().database.transaction() as session:
        service = sentry_ui.validate_alert_rule_settings(session, body.get("fields"), installation)
        message = f"Alerts from this rule will open incidents for {service.name}."
    return jsonify({"message": message})


@blueprint.post("/issue-link/<any(create, link):action>")
def issue_link(action: str) -> Response:
    """Create or link an incident for a Sentry issue; answers webUrl, project, identifier."""
    raw, body = _json_body()
    installation = _verified(_text(body.get("installationId")), raw)
    base = bridge().base_url(request.url_root)
    with bridge().database.transaction() as session:
        linked = sentry_ui.link_issue(session, action, body, installation, datetime.now(UTC))
        answer = {
            "webUrl": f"{base}/incidents/{linked.incident.id}",
            "project": str(linked.service.slug),
            "identifier": str(linked.incident.id),
        }
    return jsonify(answer)


@blueprint.get("/options/<any(services, incidents):kind>")
def select_options(kind: str) -> Response:
    """FieldOptions for a select: [{"label", "value"}]."""
    installation = _verified(request.args.get("installationId"), b"")
    query = request.args.get("query")
    with bridge().database.transaction() as session:
        if kind == "services":
            options = sentry_ui.service_options(session, installation, query)
        else:
            options = sentry_ui.incident_options(session, installation, query)
    return jsonify(options)
