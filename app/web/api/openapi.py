"""GET /api/openapi.json: the OpenAPI 3 document, built from the routes that exist."""

from __future__ import annotations

import re
from typing import Any

from apispec import APISpec
from apispec.ext.marshmallow import MarshmallowPlugin
from flask import Flask, Response, current_app, jsonify

from app.web.api import blueprint
from app.web.api.docs import Operation
from app.web.schemas import ErrorSchema

_PATH_PARAMETER = re.compile(r"<(?:(\w+):)?(\w+)>")
_ERROR_TEXT = {
    400: "Bad request",
    401: "Not authenticated",
    403: "Not allowed for this role",
    404: "Not found",
    409: "Conflicts with the current state",
    413: "Body too large",
    415: "Not JSON",
    422: "Invalid input; `fields` says which",
}


def _openapi_path(rule: str) -> tuple[str, list[dict[str, Any]]]:
    parameters = [
        {
            "in": "path",
            "name": name,
            "required": True,
            "schema": {"type": "integer" if converter == "int" else "string"},
        }
        for converter, name in _PATH_PARAMETER.findall(rule)
    ]
    return _PATH_PARAMETER.sub(r"{\2}", rule), parameters


def _operation(
    operation: Operation, parameters: list[dict[str, Any]], role: Any, endpoint: str
) -> dict[str, Any]:
    document: dict[str, Any] = {
        "operationId": endpoint.replace(".", "_"),
        "summary": operation.summary,
        "tags": [operation.tag],
        "parameters": list(parameters),
        "responses": {},
    }
    if operation.description:
        document["description"] = operation.description
    if operation.query is not None:
        document["parameters"].append({"in": "query", "schema": operation.query})
    if operation.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": operation.body}},
        }
    success: dict[str, Any] = {"description": operation.summary}
    if operation.response is not None:
        success["content"] = {"application/json": {"schema": operation.response}}
    document["responses"][str(operation.status)] = success
    for status in operation.errors:
        document["responses"][str(status)] = {
            "description": _ERROR_TEXT.get(status, "Error"),
            "content": {"application/json": {"schema": "Error"}},
        }
    if role is not _PUBLIC:
        document["security"] = [{"bearerAuth": []}]
    return document


_PUBLIC = object()


def build_document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.0 document of every documented route under /api."""
    spec = APISpec(
        title="Sentry Incident Bridge API",
        version="1",
        openapi_version="3.0.3",
        plugins=[MarshmallowPlugin()],
        info={
            "description": "Incidents from Sentry alerts. Authenticate with "
            "`Authorization: Bearer <token>` (`bridge token create EMAIL`)."
        },
    )
    spec.components.security_scheme("bearerAuth", {"type": "http", "scheme": "bearer"})
    spec.components.schema("Error", schema=ErrorSchema)
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        view = app.view_functions[rule.endpoint]
        operation = getattr(view, "operation", None)
        if not rule.rule.startswith("/api/") or operation is None:
            continue
        path, parameters = _openapi_path(rule.rule)
        role = getattr(view, "required_role", _PUBLIC)
        methods = sorted((rule.methods or set()) - {"HEAD", "OPTIONS"})
        spec.path(
            path=path,
            operations={
                method.lower(): _operation(operation, parameters, role, rule.endpoint)
                for method in methods
            },
        )
    return spec.to_dict()


@blueprint.get("/openapi.json")
def openapi_document() -> Response:
    return jsonify(build_document(current_app))
