"""Test instants derived from the real clock, so no test depends on the day it was written.

Budget windows, Redis key expiry and usage queries all meet the real now somewhere (redis-server's own clock
cannot be frozen), so tests anchor their instants to it instead of to a calendar date."""
from __future__ import annotations

import time
from datetime import datetime, timezone

from gateway.budgets.windows import window_for


def this_hour() -> datetime:
    """The start of the current UTC hour: a window boundary, so offsets of minutes stay inside one hourly window."""
    return datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)


def clear_of_window_end(unit: str, value: int, margin_seconds: float) -> None:
    """Wait out a budget window's last `margin_seconds`, so a test that spends and then checks one window never
    straddles its end (a daily budget test started at 23:59:59 UTC would otherwise see two windows). Waits at
    most `margin_seconds`, and only when the clock is that close to the boundary."""
    now = datetime.now(timezone.utc)
    left = (window_for(unit, value, now).end - now).total_seconds()
    if left < margin_seconds:
        time.sleep(left + 0.05)
