"""Spooled deliveries are logged at most once a second, with how many since the last line."""

from __future__ import annotations

import logging

import pytest

from app.web.webhooks import _SpoolNotes


def test_a_burst_of_spooled_deliveries_is_one_line_with_the_count_after_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Its own clock: patching time.monotonic would feed every thread of the process.
    clock = iter([100.0, 100.1, 100.2, 100.3, 101.5])
    notes = _SpoolNotes(interval_seconds=1.0, clock=lambda: next(clock))

    with caplog.at_level(logging.WARNING, logger="app.web.webhooks"):
        for index in range(5):
            notes.note(f"spool-{index}")

    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("database unavailable or busy: 1 deliveries spooled")
    assert "latest spool-0" in lines[0]
    # The three in between are counted in the next line, with the one that wrote it.
    assert " 4 deliveries spooled" in lines[1] and "latest spool-4" in lines[1]
