"""The one error table: every BridgeError and HTTP error becomes one JSON shape.

{"error": {"code": "signature_mismatch", "message": "...", "status": 401, ...details}}
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify
from werkzeug.exceptions import HTTPException

from app.domain import errors

log = logging.getLogger(__name__)

STATUS_BY_ERROR: dict[type[errors.BridgeError], int] = {
    errors.IntegrationIdMissing: 400,
    errors.MalformedJson: 400,
    errors.UnrecognisedPayload: 400,
    errors.SignatureMissing: 401,
    errors.SignatureMismatch: 401,
    errors.IntegrationDisabled: 403,
    errors.IntegrationNotFound: 404,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedContentType: 415,
    errors.InvalidInput: 422,
}


def status_for(error: errors.BridgeError) -> int:
    for kind in type(error).__mro__:
        if kind in STATUS_BY_ERROR:
            return STATUS_BY_ERROR[kind]
    return 400


def error_response(status: int, code: str, message: str, **details: Any) -> Response:
    response = jsonify({"error": {"code": code, "message": message, "status": status, **details}})
    response.status_code = status
    return response


def _bridge_error(error: errors.BridgeError) -> Response:
    return error_response(status_for(error), error.code, error.message, **error.details)


def _http_error(error: HTTPException) -> Response:
    status = error.code or 500
    code = (error.name or "error").lower().replace(" ", "_")
    return error_response(status, code, error.description or error.name)


def _unexpected(error: Exception) -> Response:
    log.exception("unhandled error", exc_info=error)
    return error_response(
        500, "internal_error", "The bridge failed to process this request; it has been logged."
    )


def init_app(app: Flask) -> None:
    app.register_error_handler(errors.BridgeError, _bridge_error)
    app.register_error_handler(HTTPException, _http_error)
    app.register_error_handler(Exception, _unexpected)
