"""Rate-limit counters in this process: exact and free, but each server process counts on its own."""
from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from gateway.ratelimits.types import PERIOD_MS, Check, Denied, Granted, gcra


class MemoryStore:
    """GCRA arrival times and concurrency holds in dicts. Checks and updates run without an `await`, so
    each request's admission is atomic on the event loop. `clock` (ms) is injectable for tests."""

    name = "memory"

    def __init__(self, clock: Callable[[], float] = lambda: time.time() * 1000) -> None:
        self.clock = clock
        self.tats: dict[str, float] = {}
        self.holds: dict[str, set[str]] = {}

    async def acquire(self, checks: Sequence[Check], lease: str) -> Granted | Denied:
        now = self.clock()
        self._forget(now)
        remaining, resets, new_tats = [], [], {}
        for index, check in enumerate(checks):
            if check.kind == "concurrent":
                count = len(self.holds.get(check.key, ()))
                if count >= check.limit:
                    return Denied(index, 1000.0)
                remaining.append(check.limit - count - 1)
                resets.append(0.0)
                continue
            answer = gcra(self.tats.get(check.key, 0.0), now, check.limit, check.cost)
            if isinstance(answer, float):
                return Denied(index, answer)
            new_tats[check.key], left, reset = answer
            remaining.append(left)
            resets.append(reset)
        self.tats.update(new_tats)
        for check in checks:
            if check.kind == "concurrent":
                self.holds.setdefault(check.key, set()).add(lease)
        return Granted(tuple(remaining), tuple(resets))

    def settle(self, checks: Sequence[Check], lease: str, used_tokens: int) -> None:
        """Release the concurrency holds and move each token limit by the tokens used minus what it held."""
        for check in checks:
            if check.kind == "concurrent":
                self.holds.get(check.key, set()).discard(lease)
            elif check.kind == "tokens" and used_tokens != check.cost and check.key in self.tats:
                self.tats[check.key] += (used_tokens - check.cost) * PERIOD_MS / check.limit

    def _forget(self, now: float) -> None:
        """Drop limits back to full, so counters for many keys do not accumulate forever."""
        if len(self.tats) > 10_000:
            self.tats = {key: tat for key, tat in self.tats.items() if tat > now}

    async def flush(self) -> None:
        return None

    async def ping(self) -> None:
        return None
