"""Strict JSON decoding of delivery bodies: nesting, NaN, long numbers, UTF-8."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.errors import MalformedJson
from app.domain.json_body import MAX_DEPTH, decode_json, nesting_exceeds

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=30,
)


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def nested(levels: int) -> bytes:
    return b'{"a":' * (levels - 1) + b"[]" + b"}" * (levels - 1)


def test_nesting_at_the_limit_is_decoded() -> None:
    assert depth(decode_json(nested(MAX_DEPTH))) == MAX_DEPTH


def test_nesting_past_the_limit_is_refused_naming_the_limit() -> None:
    with pytest.raises(MalformedJson) as refused:
        decode_json(nested(MAX_DEPTH + 1))

    assert f"more than {MAX_DEPTH} levels" in refused.value.message
    assert refused.value.details == {"limit": MAX_DEPTH}


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    body = json.dumps({"message": "[" * 500 + "{" * 500, "escaped": '\\"[[[['}).encode()

    assert not nesting_exceeds(body)
    assert decode_json(body)["message"].startswith("[[[")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"level": NaN}', "NaN is not a JSON value"),
        (b'{"level": Infinity}', "Infinity is not a JSON value"),
        (b'{"level": -Infinity}', "-Infinity is not a JSON value"),
        (b'{"id": ' + b"9" * 5000 + b"}", "a number is out of range"),
        (b'{"title": "caf\xe9"}', "not UTF-8 text (byte 14)"),
        (b'{"a": 1', "Expecting ',' delimiter at line 1 column 8"),
        (b" \n ", "The body is empty"),
    ],
)
def test_not_quite_json_is_refused_saying_what_is_wrong(body: bytes, says: str) -> None:
    with pytest.raises(MalformedJson) as refused:
        decode_json(body)

    assert says in refused.value.message


def test_duplicate_keys_keep_the_last_and_huge_exponents_are_infinite() -> None:
    assert decode_json(b'{"a": 1, "a": 2}') == {"a": 2}
    assert decode_json(b'{"a": 1e999}') == {"a": math.inf}


@FUZZ
@given(value=JSON_VALUES)
def test_any_json_within_the_limit_decodes_to_itself(value: Any) -> None:
    body = json.dumps(value).encode()

    if depth(value) <= MAX_DEPTH:
        assert decode_json(body) == value


@FUZZ
@given(value=JSON_VALUES, levels=st.integers(min_value=0, max_value=2 * MAX_DEPTH))
def test_nesting_check_agrees_with_the_decoded_depth(value: Any, levels: int) -> None:
    wrapped: Any = value
    for _ in range(levels):
        wrapped = [wrapped]
    body = json.dumps(wrapped, ensure_ascii=False).encode()

    assert nesting_exceeds(body) == (depth(wrapped) > MAX_DEPTH)


@FUZZ
@given(
    body=st.binary(max_size=300) | st.text(alphabet='[]{}"\\:,1 a', max_size=300).map(str.encode)
)
def test_any_bytes_decode_or_raise_malformed_json_only(body: bytes) -> None:
    try:
        decode_json(body)
    except MalformedJson as error:
        assert error.message.startswith("The body")
