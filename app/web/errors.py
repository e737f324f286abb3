"""The one error table: every BridgeError and HTTP error becomes one JSON shape.

{"error": {"code": "signature_mismatch", "message": "...", "status": 401, ...details}}
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlparse

from flask import (
    Flask,
    Response,
    flash,
    g,
    jsonify,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response as BaseResponse

from app.domain import errors
from app.store.encryption import SecretUnreadable
from app.web.security import same_site_path

log = logging.getLogger(__name__)

# Every error code the bridge answers with, and its HTTP status: the one table. A code
# missing here is a bug (tests/unit/test_error_table.py checks every BridgeError's code).
STATUS_BY_CODE: dict[str, int] = {
    "bridge_error": 400,
    "integration_id_missing": 400,
    "malformed_json": 400,
    "unrecognised_payload": 400,
    "signature_missing": 401,
    "signature_mismatch": 401,
    "authentication_required": 401,
    "invalid_credentials": 401,
    "forbidden": 403,
    "integration_disabled": 403,
    "ack_link_invalid": 403,
    "ack_link_expired": 403,
    "integration_not_found": 404,
    "not_found": 404,
    "installation_not_found": 404,
    "conflict": 409,
    "illegal_transition": 409,
    "payload_too_large": 413,
    "unsupported_content_type": 415,
    "invalid_input": 422,
    "rate_limited": 429,
    # Neither the database nor the spool could keep it: the sender must try again.
    "delivery_not_kept": 503,
    # The Sentry OAuth module (app/sentry/errors.py): Sentry's failures are upstream (502),
    # a refused grant or a bad OAuth state is the caller's to restart (400).
    "sentry_error": 502,
    "sentry_unavailable": 502,
    "sentry_unauthorized": 502,
    "sentry_resource_missing": 502,
    "sentry_request_refused": 502,
    "sentry_bad_response": 502,
    "sentry_exchange_in_progress": 502,
    "sentry_not_configured": 503,
    "sentry_rate_limited": 503,
    "sentry_grant_rejected": 400,
    "oauth_state_invalid": 400,
    "ui_request_refused": 400,
}

ACCEPTED = 202


def status_for_code(code: str) -> int:
    return STATUS_BY_CODE.get(code, 400)


def status_for(error: errors.BridgeError) -> int:
    return status_for_code(error.code)


def answer_status(code: str | None) -> int:
    """What the webhook answers (or would have answered) for a delivery: accepted, or the
    status of the error code it was refused with."""
    return status_for_code(code) if code is not None else ACCEPTED


def error_fields(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The one error document: {"code", "message", "status", ...details}."""
    # Details come first so that none of them can stand in for code, message or status.
    return {**(details or {}), "code": code, "message": message, "status": status}


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    # The code this request was answered with, for the metrics (app/observability.py).
    g.error_code = code
    response = jsonify({"error": error_fields(status, code, message, details)})
    response.status_code = status
    return response


def refusal_response(error: errors.BridgeError, status: int | None = None) -> Response:
    """A BridgeError as the JSON error answer, with the headers its kind calls for;
    `status` when the caller has it already (the webhook's outcome), else the table's."""
    status = status_for(error) if status is None else status
    response = error_response(status, error.code, error.message, error.details)
    return with_challenge(error, response)


def envelope_refusal(error: errors.BridgeError) -> Response:
    """The OAuth management API's {"success", "data", "error"}: the same error document."""
    status = status_for(error)
    g.error_code = error.code
    body = error_fields(status, error.code, error.message, error.details)
    response = jsonify({"success": False, "data": None, "error": body})
    response.status_code = status
    return with_challenge(error, response)


def with_challenge(error: errors.BridgeError, response: Response) -> Response:
    if isinstance(error, _BEARER_CHALLENGES):
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, errors.RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


_BEARER_CHALLENGES = (errors.AuthenticationRequired, errors.InvalidCredentials)


def _is_page_request() -> bool:
    return request.blueprint == "views"


def page_error(status: int, message: str) -> BaseResponse:
    """Errors in the web pages: a failed form goes back with a message; a page says why."""
    if request.method == "POST" and status < 500:
        flash(message, "error")
        referrer = urlparse(request.referrer or "")
        back = same_site_path(referrer.path) if referrer.netloc == request.host else None
        return redirect(back or url_for("views.incident_list"))
    body = render_template("error.html", status=status, message=message)
    return make_response(body, status)


def _bridge_error(error: errors.BridgeError) -> BaseResponse:
    if _is_page_request():
        return page_error(status_for(error), error.message)
    return refusal_response(error)


def _http_error(error: HTTPException) -> BaseResponse:
    status = error.code or 500
    if _is_page_request():
        return page_error(status, error.description or error.name)
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(status, code, error.description or error.name)


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return error_response(
        500, "internal_error", "The bridge failed to process this request; it has been logged."
    )


def _unreadable_secret(error: SecretUnreadable) -> Response:
    # Not the sender's fault and not a crash: this node was started with the wrong keys
    # (/readyz says so too). The delivery was recorded, so it can be replayed once fixed.
    log.error("stored secret unreadable: %s", error)
    return error_response(
        503,
        "encryption_keys_mismatch",
        "This bridge node cannot read its stored secrets: its BRIDGE_ENCRYPTION_KEYS differ "
        "from the ones they were encrypted with. The delivery was recorded.",
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(errors.BridgeError, _bridge_error)
    app.register_error_handler(SecretUnreadable, _unreadable_secret)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
