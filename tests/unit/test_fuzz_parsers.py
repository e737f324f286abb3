"""Property tests of the parsers that read what callers send, beside tests/unit/test_alerts.py.

Each parser must answer or refuse with the bridge's own error, whatever it is given.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.domain.alerts import parse_time
from app.domain.errors import InvalidInput
from app.domain.severity import Severity, severity_from_level
from app.sentry.signatures import is_valid_signature, sign
from app.services.incidents import decode_cursor, encode_cursor

FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None)

ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=10,
)
SORTS = st.sampled_from(["-id", "id", "-last_event_at", "last_event_at"])
# The urgency and severity sorts page by segment: their cursors carry status/severity.
ALL_SORTS = SORTS | st.sampled_from(["urgency", "-severity", "severity"])
AWARE_TIMES = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)
)


@FUZZ
@given(value=ANY_JSON | st.integers(min_value=-(10**400), max_value=10**400))
def test_parse_time_answers_utc_or_none_for_any_json_value(value: Any) -> None:
    parsed = parse_time(value)

    assert parsed is None or parsed.utcoffset() == timedelta(0)


@FUZZ
@given(moment=AWARE_TIMES, offset_minutes=st.integers(min_value=-23 * 60, max_value=23 * 60))
def test_parse_time_reads_any_iso_time_back_as_the_same_instant(
    moment: datetime, offset_minutes: int
) -> None:
    zone = moment.astimezone(timezone(timedelta(minutes=offset_minutes)))

    assert parse_time(zone.isoformat()) == moment
    assert parse_time(moment.isoformat().replace("+00:00", "Z")) == moment


@FUZZ
@given(seconds=st.integers(min_value=0, max_value=253_402_000_000))
def test_parse_time_reads_epoch_seconds_as_numbers_and_strings_alike(seconds: int) -> None:
    expected = datetime.fromtimestamp(seconds, UTC)

    assert parse_time(seconds) == expected
    assert parse_time(str(seconds)) == expected
    assert parse_time(float(seconds)) == expected


@FUZZ
@given(level=ANY_JSON)
def test_severity_from_level_answers_a_severity_for_anything(level: Any) -> None:
    assert isinstance(severity_from_level(level), Severity)


@FUZZ
@given(secret=st.text(min_size=1, max_size=40), body=st.binary(max_size=200), header=st.text())
def test_only_the_exact_signature_verifies(secret: str, body: bytes, header: str) -> None:
    expected = sign(secret, body)

    assert is_valid_signature(secret, body, header) == (header.strip().lower() == expected)
    assert is_valid_signature(secret, body, expected.upper())


@FUZZ
@given(cursor=st.text(max_size=60), sort=ALL_SORTS)
def test_decode_cursor_refuses_any_text_with_invalid_input(cursor: str, sort: str) -> None:
    try:
        value, row_id = decode_cursor(cursor, sort)
    except InvalidInput as error:
        assert error.details["fields"] == {"cursor": ["invalid cursor for this sort"]}
        return
    assert isinstance(row_id, int)
    del value


def _forged(document: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


@FUZZ
@given(
    document=st.fixed_dictionaries(
        {"s": ALL_SORTS | ANY_JSON, "v": ANY_JSON, "id": ANY_JSON | st.integers()}
    )
    | ANY_JSON,
    sort=ALL_SORTS,
)
def test_decode_cursor_refuses_forged_documents_with_invalid_input(
    document: Any, sort: str
) -> None:
    try:
        _value, row_id = decode_cursor(_forged(document), sort)
    except InvalidInput:
        return
    # Whatever it lets through must be something the database can bind (else a 500).
    assert -(2**31) <= row_id < 2**31
    if sort.lstrip("-") == "last_event_at":
        assert isinstance(_value, datetime)
        assert _value.tzinfo is not None


@FUZZ
@given(
    sort=st.sampled_from(["-last_event_at", "last_event_at"]),
    moment=st.datetimes(),
    row_id=st.integers(min_value=1, max_value=2**31 - 1),
)
def test_decode_cursor_refuses_a_forged_time_without_a_zone(
    sort: str, moment: datetime, row_id: int
) -> None:
    forged = _forged({"s": sort, "v": moment.isoformat(), "id": row_id})

    try:
        decode_cursor(forged, sort)
    except InvalidInput:
        return
    raise AssertionError("a naive time was let through to a UTC column")


@FUZZ
@given(sort=SORTS, moment=AWARE_TIMES, row_id=st.integers(min_value=1, max_value=2**31 - 1))
def test_decode_cursor_reads_back_what_encode_cursor_wrote(
    sort: str, moment: datetime, row_id: int
) -> None:
    value: Any = moment if sort.lstrip("-") == "last_event_at" else row_id

    assert decode_cursor(encode_cursor(sort, value, row_id), sort) == (value, row_id)


@FUZZ
@given(
    status=st.sampled_from(["triggered", "acknowledged", "resolved"]),
    severity=st.sampled_from(["critical", "error", "warning", "info"]),
    sort=st.sampled_from(["urgency", "-severity", "severity"]),
    row_id=st.integers(min_value=1, max_value=2**31 - 1),
)
def test_decode_cursor_reads_back_a_segment_cursor(
    status: str, severity: str, sort: str, row_id: int
) -> None:
    value = [status, severity] if sort == "urgency" else [severity]
    expected = (status if sort == "urgency" else None, severity)

    assert decode_cursor(encode_cursor(sort, value, row_id), sort) == (expected, row_id)
