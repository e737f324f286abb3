"""Signed acknowledge links (SPEC 7): one incident, one action, expiring, single use.

A token is `<payload>.<signature>`, both URL-safe base64: the payload names the link id
(single use is enforced by storing used ids), the incident, the action, the expiry and
the channel that carried it; the signature is HMAC-SHA256 over the payload. Pure: key,
ids and clock come in.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from app.domain.errors import Forbidden

ACTION = "acknowledge"
DEFAULT_TTL = timedelta(hours=24)


class AckLinkInvalid(Forbidden):
    code = "ack_link_invalid"


class AckLinkExpired(Forbidden):
    code = "ack_link_expired"


@dataclass(frozen=True)
class AckLink:
    link_id: str
    incident_id: int
    channel_id: int | None
    expires_at: datetime
    action: str = ACTION
    # Set when the link was sent to a person's contact method (a page): who acknowledges.
    contact_method_id: int | None = None


def link_key(secret: str) -> bytes:
    """The links' own key, derived from the session secret (so one never signs the other)."""
    return hmac.new(secret.encode("utf-8"), b"bridge ack links v1", hashlib.sha256).digest()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode("ascii").rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(
    key: bytes,
    link_id: str,
    incident_id: int,
    channel_id: int | None,
    now: datetime,
    ttl: timedelta = DEFAULT_TTL,
    contact_method_id: int | None = None,
) -> str:
    expires = int((now + ttl).timestamp())
    claims: dict[str, object] = {
        "l": link_id,
        "i": incident_id,
        "a": ACTION,
        "e": expires,
        "c": channel_id,
    }
    if contact_method_id is not None:  # channel links keep their old shape
        claims["m"] = contact_method_id
    payload = json.dumps(claims, separators=(",", ":")).encode("utf-8")
    signature = hmac.new(key, payload, hashlib.sha256).digest()
    return f"{_b64(payload)}.{_b64(signature)}"


def verify(key: bytes, token: str, now: datetime) -> AckLink:
    """The link a token stands for; AckLinkInvalid or AckLinkExpired otherwise."""
    invalid = AckLinkInvalid("This acknowledge link is not valid (it may have been altered).")
    try:
        encoded_payload, encoded_signature = token.split(".", 1)
        payload = _unb64(encoded_payload)
        signature = _unb64(encoded_signature)
    except (ValueError, binascii.Error):
        raise invalid from None
    if not hmac.compare_digest(hmac.new(key, payload, hashlib.sha256).digest(), signature):
        raise invalid
    try:
        claims = json.loads(payload)
        link = AckLink(
            link_id=str(claims["l"]),
            incident_id=int(claims["i"]),
            channel_id=int(claims["c"]) if claims.get("c") is not None else None,
            expires_at=datetime.fromtimestamp(int(claims["e"]), UTC),
            action=str(claims["a"]),
            contact_method_id=int(claims["m"]) if claims.get("m") is not None else None,
        )
    except (ValueError, KeyError, TypeError, OverflowError):
        raise invalid from None
    if link.action != ACTION:
        raise invalid
    if now >= link.expires_at:
        raise AckLinkExpired(
            "This acknowledge link has expired (links last 24 hours). Open the incident "
            "in the bridge to acknowledge it."
        )
    return link
