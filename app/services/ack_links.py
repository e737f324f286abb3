"""Acknowledging an incident through the signed link a notification carried (SPEC 7).

The token itself authorises (no login): it names one incident and one action, expires,
and is single use (used link ids are stored). Opening the link only shows what it would
do; the confirmation page's button POSTs, so a chat app's link preview never acknowledges.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.domain import ack_link
from app.domain.errors import Conflict
from app.domain.lifecycle import HumanAction
from app.services.incidents import act_on_incident, get_incident
from app.store.models import ContactMethod, Incident
from app.store.notify_models import NotificationChannel, UsedAckLink

LINK_ACTOR = "notification link"


@dataclass(frozen=True)
class LinkView:
    incident: Incident
    channel_name: str | None
    is_used: bool


def describe_link(session: Session, key: bytes, token: str, now: datetime) -> LinkView:
    """What a link would do (for its confirmation page); refuses bad or expired links."""
    link = ack_link.verify(key, token, now)
    incident = get_incident(session, link.incident_id)
    return LinkView(
        incident, _channel_name(session, link.channel_id), _is_used(session, link.link_id)
    )


def acknowledge_by_link(session: Session, key: bytes, token: str, now: datetime) -> Incident:
    """Acknowledge the link's incident, once; the timeline names the link's channel."""
    link = ack_link.verify(key, token, now)
    if _is_used(session, link.link_id):
        raise Conflict("This acknowledge link was already used.")
    try:
        with session.begin_nested():  # two clicks at once: the second finds the id taken
            session.add(
                UsedAckLink(link_id=link.link_id, incident_id=link.incident_id, used_at=now)
            )
            session.flush()
    except IntegrityError:
        raise Conflict("This acknowledge link was already used.") from None
    method = (
        session.get(ContactMethod, link.contact_method_id)
        if link.contact_method_id is not None
        else None
    )
    if method is not None:
        # A page went to one person: whoever holds their link is taken to be them.
        return act_on_incident(
            session,
            link.incident_id,
            HumanAction.ACKNOWLEDGE,
            method.user.email,
            now,
            via=f"the page sent by {method.kind}",
        )
    channel = _channel_name(session, link.channel_id)
    via = f"notification link to {channel}" if channel else "notification link"
    return act_on_incident(
        session, link.incident_id, HumanAction.ACKNOWLEDGE, LINK_ACTOR, now, via=via
    )


def _is_used(session: Session, link_id: str) -> bool:
    return session.get(UsedAckLink, link_id) is not None


def _channel_name(session: Session, channel_id: int | None) -> str | None:
    channel = session.get(NotificationChannel, channel_id) if channel_id is not None else None
    return channel.name if channel is not None else None
