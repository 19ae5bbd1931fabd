"""Budget windows: fixed, on calendar boundaries, the same whatever the caller's time zone."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from gateway.budgets.windows import Window, window_for


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


@pytest.mark.parametrize("unit, value, moment, start, end", [
    ("minutes", 1, "2026-11-27 15:43:59", "2026-11-27 15:43:00", "2026-11-27 15:44:00"),
    ("minutes", 15, "2026-11-27 15:43:00", "2026-11-27 15:30:00", "2026-11-27 15:45:00"),
    ("hours", 1, "2026-11-27 15:00:00", "2026-11-27 15:00:00", "2026-11-27 16:00:00"),
    ("hours", 6, "2026-11-27 05:59:59", "2026-11-27 00:00:00", "2026-11-27 06:00:00"),
    ("days", 1, "2026-11-27 23:59:59", "2026-11-27 00:00:00", "2026-11-28 00:00:00"),
    ("days", 1, "2026-11-28 00:00:00", "2026-11-28 00:00:00", "2026-11-29 00:00:00"),
    ("days", 7, "2026-11-27 12:00:00", "2026-11-26 00:00:00", "2026-12-03 00:00:00"),
    ("weeks", 1, "2026-11-27 12:00:00", "2026-11-23 00:00:00", "2026-11-30 00:00:00"),  # Friday -> Monday
    ("weeks", 1, "2026-11-30 00:00:00", "2026-11-30 00:00:00", "2026-12-07 00:00:00"),  # Monday midnight
    ("weeks", 1, "2026-11-29 23:59:59", "2026-11-23 00:00:00", "2026-11-30 00:00:00"),  # Sunday night
    ("weeks", 2, "2026-11-27 12:00:00", "2026-11-16 00:00:00", "2026-11-30 00:00:00"),  # even weeks from 1969-12-29
    ("months", 1, "2026-01-31 23:59:59", "2026-01-01 00:00:00", "2026-02-01 00:00:00"),
    ("months", 1, "2026-02-01 00:00:00", "2026-02-01 00:00:00", "2026-03-01 00:00:00"),
    ("months", 1, "2026-12-31 12:00:00", "2026-12-01 00:00:00", "2027-01-01 00:00:00"),
    ("months", 3, "2026-05-15 00:00:00", "2026-04-01 00:00:00", "2026-07-01 00:00:00"),  # calendar quarters
    ("months", 12, "2026-11-27 00:00:00", "2026-01-01 00:00:00", "2027-01-01 00:00:00"),
])
def test_windows_are_fixed_and_aligned(unit, value, moment, start, end):
    assert window_for(unit, value, at(moment)) == Window(at(start), at(end))


def test_window_boundaries_do_not_depend_on_the_callers_time_zone():
    from zoneinfo import ZoneInfo

    local = datetime(2026, 12, 1, 0, 30, tzinfo=ZoneInfo("Europe/Paris"))  # still November in UTC
    assert window_for("months", 1, local).start == at("2026-11-01 00:00:00")
