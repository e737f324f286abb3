"""Which events reach which channels, silences, storms, backoff (app/domain/notify.py),
and signed acknowledge links (app/domain/ack_link.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from app.domain import ack_link
from app.domain.incident import IncidentEvent
from app.domain.notify import (
    ChannelRule,
    IncidentFacts,
    Route,
    SilenceRule,
    StormRule,
    backoff,
    holding_silence,
    is_storm,
    next_attempt_at,
    parse_events,
    plan_notifications,
    reaches,
)

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
CART = IncidentFacts("TypeError: cart is undefined", "sentry-42", "error")


def test_a_channel_gets_events_at_or_above_its_minimum_severity() -> None:
    channel = ChannelRule(1, min_severity="error")

    assert reaches(channel, IncidentEvent.TRIGGERED, "critical")
    assert reaches(channel, IncidentEvent.TRIGGERED, "error")
    assert not reaches(channel, IncidentEvent.TRIGGERED, "warning")
    assert not reaches(ChannelRule(1, enabled=False), IncidentEvent.TRIGGERED, "critical")


def test_by_default_channels_want_everything_but_acknowledgements() -> None:
    channel = ChannelRule(1)

    assert [e for e in IncidentEvent if reaches(channel, e, "error")] == [
        IncidentEvent.TRIGGERED,
        IncidentEvent.REOPENED,
        IncidentEvent.SEVERITY_RAISED,
        IncidentEvent.RESOLVED,
    ]


def test_event_lists_are_parsed_and_unknown_names_refused() -> None:
    assert parse_events("triggered, resolved,") == {
        IncidentEvent.TRIGGERED,
        IncidentEvent.RESOLVED,
    }
    with pytest.raises(ValueError, match="unknown event 'paged'"):
        parse_events("triggered,paged")


def silence(**changes: object) -> SilenceRule:
    values: dict[str, object] = {"id": 1, "starts_at": T0, "ends_at": T0 + HOUR}
    values.update(changes)
    return SilenceRule(**values)  # type: ignore[arg-type]


def test_a_service_wide_silence_holds_everything_while_active() -> None:
    rule = silence()

    assert holding_silence([rule], CART, T0) == rule
    assert holding_silence([rule], CART, T0 + HOUR) is None  # its end is excluded
    assert holding_silence([rule], CART, T0 - timedelta(seconds=1)) is None
    assert holding_silence([silence(ended_at=T0)], CART, T0 + timedelta(minutes=1)) is None


def test_a_matching_silence_looks_in_title_and_dedup_key_ignoring_case() -> None:
    assert holding_silence([silence(match_text="CART")], CART, T0) is not None
    assert holding_silence([silence(match_text="sentry-42")], CART, T0) is not None
    assert holding_silence([silence(match_text="checkout")], CART, T0) is None


def test_of_two_matching_silences_the_one_ending_last_holds() -> None:
    short, long = silence(id=1), silence(id=2, ends_at=T0 + 2 * HOUR)

    assert holding_silence([short, long], CART, T0) == long


def test_a_storm_is_more_than_the_threshold_within_the_window() -> None:
    rule = StormRule(threshold=10, window=timedelta(minutes=5))

    assert not is_storm(10, rule)
    assert is_storm(11, rule)


def test_the_plan_holds_when_silenced_digests_new_incidents_in_a_storm_and_sends_the_rest() -> None:
    channels = [ChannelRule(1), ChannelRule(2, min_severity="critical")]
    events = [IncidentEvent.TRIGGERED]

    quiet = plan_notifications(events, CART, channels, [], False, T0)
    storm = plan_notifications(events, CART, channels, [], True, T0)
    silenced = plan_notifications(events, CART, channels, [silence()], True, T0)
    reopened = plan_notifications([IncidentEvent.REOPENED], CART, channels, [], True, T0)

    assert [(r.channel_id, r.route) for r in quiet.routed] == [(1, Route.SEND)]
    assert [(r.channel_id, r.route) for r in storm.routed] == [(1, Route.DIGEST)]
    assert [(r.channel_id, r.route) for r in silenced.routed] == [(1, Route.HOLD)]
    assert silenced.routed[0].silence == silence()
    assert [r.route for r in reopened.routed] == [Route.SEND]  # storms digest new ones only


def test_backoff_doubles_with_equal_jitter_up_to_ten_minutes() -> None:
    assert backoff(1, 0.0) == timedelta(seconds=1)
    assert backoff(1, 0.999) < timedelta(seconds=2)
    assert backoff(2, 0.0) == timedelta(seconds=2)
    assert backoff(4, 0.0) == timedelta(seconds=8)
    assert backoff(30, 0.999) <= timedelta(minutes=10)
    assert backoff(30, 0.0) == timedelta(minutes=5)


def test_backoff_never_comes_before_retry_after() -> None:
    assert backoff(1, 0.0, retry_after=90) == timedelta(seconds=90)
    assert backoff(10, 0.0, retry_after=1) == backoff(10, 0.0)


@given(st.integers(min_value=1, max_value=200), st.floats(min_value=0, max_value=1))
def test_backoff_is_between_half_and_all_of_the_nominal_delay(attempts: int, jitter: float) -> None:
    delay = backoff(attempts, jitter)
    nominal = min(timedelta(seconds=2) * 2 ** min(attempts - 1, 20), timedelta(minutes=10))

    assert nominal / 2 <= delay <= nominal


def test_retries_stop_at_the_end_of_the_retry_window() -> None:
    assert next_attempt_at(T0, T0 + timedelta(minutes=30), 3, 0.0, HOUR) == (
        T0 + timedelta(minutes=30, seconds=4)
    )
    assert next_attempt_at(T0, T0 + timedelta(minutes=59, seconds=59), 3, 0.0, HOUR) is None
    assert next_attempt_at(T0, T0, 1, 0.0, HOUR, retry_after=2 * 3600) is None


# ---------------------------------------------------------------- acknowledge links

KEY = ack_link.link_key("session secret")


def test_a_signed_link_names_its_incident_channel_and_expiry() -> None:
    token = ack_link.sign(KEY, "n-1", 7, 3, T0)

    link = ack_link.verify(KEY, token, T0 + timedelta(hours=23))

    assert (link.link_id, link.incident_id, link.channel_id) == ("n-1", 7, 3)
    assert link.expires_at == T0 + timedelta(hours=24)


def test_a_link_expires_after_its_lifetime() -> None:
    token = ack_link.sign(KEY, "n-1", 7, 3, T0)

    with pytest.raises(ack_link.AckLinkExpired):
        ack_link.verify(KEY, token, T0 + timedelta(hours=24))


@pytest.mark.parametrize(
    "tamper",
    [
        lambda t: t[:-2] + ("AA" if not t.endswith("AA") else "BB"),
        lambda t: "x" + t,
        lambda t: t.split(".")[0],
        lambda t: "",
        lambda t: "....",
    ],
)
def test_an_altered_link_is_refused(tamper: object) -> None:
    token = ack_link.sign(KEY, "n-1", 7, 3, T0)

    with pytest.raises(ack_link.AckLinkInvalid):
        ack_link.verify(KEY, tamper(token), T0)  # type: ignore[operator]


def test_a_link_signed_with_another_key_is_refused() -> None:
    token = ack_link.sign(ack_link.link_key("other"), "n-1", 7, 3, T0)

    with pytest.raises(ack_link.AckLinkInvalid):
        ack_link.verify(KEY, token, T0)
