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
from app.sentry import errors as sentry_errors
from app.store.encryption import SecretUnreadable
from app.web.security import same_site_path

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.BridgeError], int] = {
    errors.IntegrationIdMissing: 400,
    errors.MalformedJson: 400,
    errors.UnrecognisedPayload: 400,
    errors.SignatureMissing: 401,
    errors.SignatureMismatch: 401,
    errors.AuthenticationRequired: 401,
    errors.InvalidCredentials: 401,
    errors.Forbidden: 403,
    errors.IntegrationDisabled: 403,
    errors.IntegrationNotFound: 404,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedContentType: 415,
    errors.InvalidInput: 422,
    errors.RateLimited: 429,
    # Neither the database nor the spool could keep it: the sender must try again.
    errors.DeliveryNotKept: 503,
    # The Sentry OAuth module (app/sentry/errors.py): Sentry's failures are upstream (502),
    # a refused grant or a bad OAuth state is the caller's to restart (400).
    sentry_errors.SentryError: 502,
    sentry_errors.SentryNotConfigured: 503,
    sentry_errors.SentryRateLimited: 503,
    sentry_errors.SentryGrantRejected: 400,
    sentry_errors.OAuthStateInvalid: 400,
    sentry_errors.UiRequestRefused: 400,
}


def status_for(error: errors.BridgeError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 400


ACCEPTED = 202


def answer_status(error: errors.BridgeError | None) -> int:
    """What the webhook answers (or would have answered) for a delivery and its refusal."""
    return status_for(error) if error is not None else ACCEPTED


def error_response(
    status: int, code: str, message: str, details: dict[str, Any] | None = None
) -> Response:
    # Details come first so that none of them can stand in for code, message or status.
    body = {**(details or {}), "code": code, "message": message, "status": status}
    response = jsonify({"error": body})
    response.status_code = status
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
    response = error_response(status_for(error), error.code, error.message, error.details)
    if isinstance(error, _BEARER_CHALLENGES):
        response.headers["WWW-Authenticate"] = "Bearer"
    if isinstance(error, errors.RateLimited):
        response.headers["Retry-After"] = str(error.retry_after)
    return response


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
