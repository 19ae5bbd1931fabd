"""The in-memory budget backend: counters in this process only. Exact and cheapest, but correct only when a
single server process serves the budgeted traffic."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.budgets.windows import Claim, Refusal, lease_ttl, recorded_spend
from gateway.db import db_task


@dataclass
class _Counter:
    spent: int
    end: datetime
    holds: dict[str, tuple[int, datetime]] = field(default_factory=dict)
    reserved: int = 0

    def expire(self, now: datetime) -> None:
        for lease, (amount, expires) in list(self.holds.items()):
            if expires <= now:
                self.reserved -= amount
                del self.holds[lease]


class MemoryBackend:
    """Counters in this process. Checks and holds run without an `await` in between, so they are atomic
    on the event loop."""

    name = "memory"

    def __init__(self, seed=None) -> None:
        self.counters: dict[str, _Counter] = {}
        self._seed = seed or db_task(recorded_spend)

    async def _counters(self, claims: Sequence[Claim]) -> list[_Counter]:
        for claim in claims:
            if claim.key not in self.counters:
                spent = await self._seed(claim)
                self.counters.setdefault(claim.key, _Counter(spent, claim.window.end))
        return [self.counters[claim.key] for claim in claims]

    async def reserve(self, claims: Sequence[Claim], nanos: int, lease: str, now: datetime) -> Refusal | None:
        for key in [k for k, counter in self.counters.items() if counter.end < now and not counter.holds]:
            del self.counters[key]
        counters = await self._counters(claims)
        checked = [(c, counter) for c, counter in zip(claims, counters) if c.limit is not None]
        for claim, counter in checked:
            counter.expire(now)
            if counter.spent + counter.reserved + nanos > claim.limit:
                return Refusal(claim, counter.spent, counter.reserved)
        for _claim, counter in checked:
            counter.holds[lease] = (nanos, now + lease_ttl())
            counter.reserved += nanos
        return None

    async def settle(self, claims: Sequence[Claim], lease: str, held: int, nanos: int) -> list[int]:
        counters = await self._counters(claims)
        for counter in counters:
            if counter.holds.pop(lease, None) is not None:
                counter.reserved -= held
            counter.spent += nanos
        return [counter.spent for counter in counters]

    def current(self, claim: Claim) -> tuple[int, int] | None:
        counter = self.counters.get(claim.key)
        return (counter.spent, counter.reserved) if counter else None
