"""The one JSON body reader of every blueprint (app/web/request_json.py)."""

from __future__ import annotations

import pytest
from flask import Flask

from app.domain.errors import InvalidInput
from app.web.request_json import read_json_object

APP = Flask(__name__)


def read(data: bytes, content_type: str = "application/json", **options: object) -> object:
    with APP.test_request_context("/", method="POST", data=data, content_type=content_type):
        return read_json_object(**options)  # type: ignore[arg-type]


def test_a_json_object_is_read() -> None:
    assert read(b'{"org_slug": "acme"}') == {"org_slug": "acme"}


def test_an_empty_body_is_an_empty_object_unless_one_is_required() -> None:
    assert read(b"") == {}
    with pytest.raises(InvalidInput, match="must be a JSON object"):
        read(b"", required=True)


@pytest.mark.parametrize(
    ("data", "content_type", "problem"),
    [
        (b"{not json", "application/json", "not JSON"),
        (b'{"a": 1}', "text/plain", "not JSON"),
        (b"[1, 2]", "application/json", "not an object"),
    ],
    ids=["malformed", "wrong-content-type", "array"],
)
def test_what_is_not_a_json_object_is_refused_saying_why(
    data: bytes, content_type: str, problem: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        read(data, content_type)

    assert refused.value.details["fields"] == {"_body": [problem]}


def test_a_body_over_the_limit_is_refused_before_it_is_parsed() -> None:
    with pytest.raises(InvalidInput, match="too large"):
        read(b'{"a": "' + b"x" * 100 + b'"}', max_bytes=50)
