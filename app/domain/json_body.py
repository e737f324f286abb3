"""Decode a delivery's body as strict JSON, with limits, and say exactly what is wrong.

Limits a hostile body could otherwise abuse: nesting (checked on the raw bytes before the
decoder recurses), NaN/Infinity (not JSON, and Sentry never sends them), and integers too
long for Python to convert. Duplicate keys are JSON all the same: the last one wins, as in
every mainstream decoder; the signature covers the raw bytes, so nothing is ambiguous.
"""

from __future__ import annotations

import json
import re
from itertools import accumulate
from typing import Any

from app.domain.errors import MalformedJson

MAX_DEPTH = 64
UTF8_BOM = b"\xef\xbb\xbf"
# A JSON string with its escapes, possessive so that it never backtracks; an unterminated
# one runs to the end of the body (each quote is then read once: linear time).
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\\?\Z)', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}


def nesting_exceeds(body: bytes, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects in `body` nest deeper than `limit`; brackets inside
    strings do not count. Linear in the size of the body, whatever the body is."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False  # cannot nest deeper than it has brackets
    brackets = _STRING.sub(b"", body).translate(None, _NOT_BRACKETS)
    return max(accumulate(map(_STEP.__getitem__, brackets)), default=0) > limit


def _refuse_constant(name: str) -> Any:
    raise MalformedJson(
        f"The body is not valid JSON: {name} is not a JSON value (JSON has no NaN or Infinity)."
    )


def decode_json(body: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """The decoded body, or MalformedJson naming the problem in words a sender can act on."""
    # A UTF-8 byte-order mark: Sentry never sends one, but editors and curl users may. It
    # is skipped for decoding only; the signature was checked over the bytes as sent.
    body = body.removeprefix(UTF8_BOM)
    if not body.strip():
        raise MalformedJson("The body is empty; Sentry webhooks carry a JSON object.")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MalformedJson(
            f"The body is not valid JSON: it is not UTF-8 text (byte {error.start})."
        ) from None
    if text.startswith("\ufeff"):
        raise MalformedJson("The body is not valid JSON: it starts with a second byte-order mark.")
    if nesting_exceeds(body, max_depth):
        raise MalformedJson(
            f"The body is not accepted: its arrays and objects nest more than {max_depth} "
            "levels deep, the nesting limit of this bridge.",
            limit=max_depth,
        )
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise MalformedJson(
            f"The body is not valid JSON: {error.msg} at line {error.lineno} column {error.colno}."
        ) from None
    except RecursionError:
        raise MalformedJson("The body is not valid JSON: it is nested too deeply.") from None
    except ValueError:
        # int() refuses integers of more than sys.get_int_max_str_digits() digits.
        raise MalformedJson(
            "The body is not valid JSON: a number is out of range (it has thousands of digits)."
        ) from None
