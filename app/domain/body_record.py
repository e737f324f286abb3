"""What a delivery's record keeps of its body: all of it once applied, a prefix if refused.

A refused delivery (bad signature, unknown format, rate limited...) is kept so that an
admin can see what was sent, but anyone can send one: keeping a full 1 MiB body for each
would let a flood of forgeries fill the disk. So a record starts with at most the first
8 KiB, the body's size and its SHA-256; the full body is written only when the delivery
is applied (its sender was authenticated and rate limited).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

PREFIX_BYTES = 8 * 1024


@dataclass(frozen=True)
class BodyRecord:
    """The body columns of a delivery record before it is applied."""

    prefix: bytes | None
    sha256: str | None
    is_truncated: bool


def body_record(body: bytes | None) -> BodyRecord:
    """The bounded prefix, hash and truncation flag of a body (None: it was not read)."""
    if body is None:
        return BodyRecord(None, None, False)
    return BodyRecord(
        body[:PREFIX_BYTES], hashlib.sha256(body).hexdigest(), len(body) > PREFIX_BYTES
    )
