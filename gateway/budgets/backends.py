"""Where budget windows are counted. Every backend admits a reservation atomically and keeps the same
contract (tests/budgets/test_backends.py):

- `RedisBackend` (gateway/budgets/redis.py; default when REDIS_URL is set): one Lua script checks and holds
  every window of a request at once; shared by every process and replica.
- `DatabaseBackend` (gateway/budgets/database.py; default otherwise): conditional UPDATEs in one transaction;
  shared by every process using the database.
- `MemoryBackend` (here): counters in this process only. Exact and cheapest, but correct only when a single
  server process serves the budgeted traffic.

All amounts are integer nano-USD. A window a backend has never seen starts from the cost of the usage
records already in it, so spend survives restarts. Holds expire after GATEWAY_BUDGET_RESERVATION_TTL_SECONDS,
so a process that dies mid-request does not keep budget reserved.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Sum

from gateway.budgets.policies import Claim, to_nanos
from gateway.models import UsageRecord
from gateway.db import db_task


@dataclass(frozen=True)
class Refusal:
    claim: Claim
    spent: int
    reserved: int


def recorded_spend(claim: Claim) -> int:
    """The cost of the usage records inside the claim's window and scope (sync; seeds a new window)."""
    records = UsageRecord.objects.filter(created_at__gte=claim.window.start, created_at__lt=claim.window.end)
    if claim.policy.scope == "endpoint":
        records = records.filter(endpoint_name=claim.policy.target)
    elif claim.policy.scope == "api_key":
        records = records.filter(api_key_name=claim.policy.target)
    return to_nanos(records.aggregate(total=Sum("cost_usd"))["total"])


def lease_ttl() -> timedelta:
    return timedelta(seconds=settings.GATEWAY_BUDGET_RESERVATION_TTL_SECONDS)


# --- In memory ------------------------------------------------------------------------------------------


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


def backend_from_settings():
    """GATEWAY_BUDGET_BACKEND, or Redis when REDIS_URL is set, else the database; shared backends get
    local allowances in front (gateway/budgets/allowance.py)."""
    from gateway.budgets.allowance import AllowanceBackend

    choice = settings.GATEWAY_BUDGET_BACKEND or ("redis" if settings.REDIS_URL else "database")
    if choice == "memory":
        return MemoryBackend()
    if choice == "redis":
        from gateway.budgets.redis import RedisBackend

        return AllowanceBackend(RedisBackend(settings.REDIS_URL))
    from gateway.budgets.database import DatabaseBackend

    return AllowanceBackend(DatabaseBackend())
