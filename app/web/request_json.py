"""The one reader of JSON request bodies for every blueprint (the webhook's raw body is
the exception: it is read, bounded, by app/web/webhooks.py and decoded by the domain)."""

from __future__ import annotations

from typing import Any

from flask import request

from app.domain.errors import InvalidInput


def read_json_object(*, required: bool = False, max_bytes: int | None = None) -> dict[str, Any]:
    """The request's JSON object; {} for an empty body unless one is `required`.

    A body that is not JSON (or not sent as application/json), is not an object, or is
    over `max_bytes` is refused with InvalidInput.
    """
    raw = request.get_data(cache=True)
    if max_bytes is not None and len(raw) > max_bytes:
        raise InvalidInput("The request body is too large.", fields={"_body": ["too large"]})
    document = request.get_json(silent=True)
    if document is None and raw:
        raise InvalidInput(
            "The body must be a JSON object sent with Content-Type: application/json.",
            fields={"_body": ["not JSON"]},
        )
    if document is None and not required:
        return {}
    if not isinstance(document, dict):
        raise InvalidInput("The body must be a JSON object.", fields={"_body": ["not an object"]})
    return document
