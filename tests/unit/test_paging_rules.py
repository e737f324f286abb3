"""Pure parts of paging: the acknowledgement timeout as an incident change, a shortened
escalation minute, and acknowledge links that name the contact method they were sent to."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from app.domain import ack_link
from app.domain.errors import IllegalTransition
from app.domain.escalation import FiredStep, Policy, StepOutcome, StepRef, ack_timeout_at, decide
from app.domain.escalation import parse_step as step
from app.domain.incident import IncidentEvent, JobAction, change_incident

T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def incident(status: str) -> dict[str, object]:
    return {
        "status": status,
        "acknowledged_at": T0 if status == "acknowledged" else None,
        "reopen_count": 0,
    }


def test_the_ack_timeout_re_triggers_an_acknowledged_incident_as_a_reopened_event() -> None:
    change = change_incident(incident("acknowledged"), JobAction(T0, 30), T0, T0 + timedelta(1))

    assert change.fields["status"] == "triggered"
    assert change.fields["acknowledged_at"] is None
    assert "reopen_count" not in change.fields  # it was never resolved
    assert change.events == (IncidentEvent.REOPENED,)
    (note,) = change.notes
    assert note.kind == "ack_timeout" and "within 30 min" in note.message


@pytest.mark.parametrize("status", ["triggered", "resolved"])
def test_the_ack_timeout_changes_nothing_unless_still_acknowledged(status: str) -> None:
    change = change_incident(incident(status), JobAction(T0, 30), T0, T0)

    assert change.fields == {} and change.events == () and change.notes == ()


def test_the_ack_timeout_needs_an_incident() -> None:
    with pytest.raises(IllegalTransition):
        change_incident(None, JobAction(T0, 30), T0, T0)


def test_a_shortened_minute_scales_every_delay_and_the_ack_timeout() -> None:
    policy = Policy((step("0:user:a@x"), step("15:user:b@x")), minute=timedelta(seconds=2))
    first = FiredStep(StepRef(0, 0), T0, StepOutcome.PAGED)

    decision = decide(policy, T0, [first], T0 + timedelta(seconds=29))
    assert decision.due == () and decision.next_due_at == T0 + timedelta(seconds=30)
    assert ack_timeout_at(T0, 30, timedelta(seconds=2)) == T0 + timedelta(seconds=60)
    assert ack_timeout_at(T0, 30) == T0 + timedelta(minutes=30)


def test_an_ack_link_sent_to_a_contact_method_names_it_and_channel_links_do_not() -> None:
    key = ack_link.link_key("secret")
    paged = ack_link.verify(key, ack_link.sign(key, "l1", 7, None, T0, contact_method_id=3), T0)
    channel = ack_link.verify(key, ack_link.sign(key, "l2", 7, 5, T0), T0)

    assert (paged.contact_method_id, paged.channel_id) == (3, None)
    assert (channel.contact_method_id, channel.channel_id) == (None, 5)
