"""How an API view describes itself, and how its input is read.

`@documented(...)` records the view's OpenAPI operation on the function; openapi.py walks
the URL map and turns every recorded operation into the document, so the document can
only list routes that exist and a test checks that no /api route lacks one.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import request
from marshmallow import Schema, ValidationError

from app.domain.errors import InvalidInput
from app.web.request_json import read_json_object

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Operation:
    summary: str
    tag: str
    response: type[Schema] | Schema | None = None
    status: int = 200
    query: type[Schema] | None = None
    body: type[Schema] | None = None
    errors: tuple[int, ...] = ()
    description: str | None = None
    extra_responses: dict[int, str] = field(default_factory=dict)


def documented(**kwargs: Any) -> Callable[[F], F]:
    operation = Operation(**kwargs)

    def decorate(view: F) -> F:
        view.operation = operation  # type: ignore[attr-defined]  # read by openapi.py
        return view

    return decorate


def _load(schema: Schema, data: Any, where: str) -> dict[str, Any]:
    try:
        loaded = schema.load(data)
    except ValidationError as error:
        messages = error.messages if isinstance(error.messages, dict) else {"_body": error.messages}
        fields_ = {
            str(name): [str(m) for m in (problems if isinstance(problems, list) else [problems])]
            for name, problems in messages.items()
        }
        raise InvalidInput(f"The {where} has invalid fields.", fields=fields_) from None
    assert isinstance(loaded, dict)
    return loaded


def query_args(schema: Schema) -> dict[str, Any]:
    return _load(schema, request.args.to_dict(), "query string")


def json_body(schema: Schema) -> dict[str, Any]:
    return _load(schema, read_json_object(), "body")
