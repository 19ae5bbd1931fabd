"""Local allowances in front of a shared backend: most requests never reach the shared store, yet the limit
still holds across processes, near the limit admission is exact, and every allowance's consumption ends
up as shared spend."""
from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from gateway.budgets.allowance import CHUNK_REQUESTS, AllowanceBackend
from gateway.budgets.memory import MemoryBackend
from gateway.budgets.database import DatabaseBackend
from gateway.budgets.windows import claim_for
from gateway.models import BudgetPolicy
from gateway.config.snapshot import BudgetSpec
from tests.clock import this_hour

pytestmark = pytest.mark.clock

NOW = this_hour()
COST = 6_400_000


async def no_spend(claim) -> int:
    return 0


class Counting(MemoryBackend):
    """A shared store stand-in that counts the round trips made to it."""

    def __init__(self) -> None:
        super().__init__(seed=no_spend)
        self.reserves = self.settles = 0

    async def reserve(self, *args):
        self.reserves += 1
        return await super().reserve(*args)

    async def settle(self, *args):
        self.settles += 1
        return await super().settle(*args)


def claim(amount: str, pid: int = 1, action: str = "reject"):
    spec = BudgetSpec(pid, f"p{pid}", "endpoint", "chat", Decimal(amount), "hours", 1, action, "")
    return claim_for(spec, NOW)


async def test_a_roomy_budget_admits_most_requests_without_a_round_trip():
    store = Counting()
    backend = AllowanceBackend(store)
    roomy = claim("1000")
    for index in range(100):
        assert await backend.reserve([roomy], COST, f"r{index}", NOW) is None
        await backend.settle([roomy], f"r{index}", COST, COST // 2)
    assert store.reserves <= 100 // (CHUNK_REQUESTS // 2) + 1
    await backend.drain()
    assert store.counters[roomy.key].spent == 100 * (COST // 2)
    assert store.counters[roomy.key].reserved == 0 and backend.open == {}


async def test_near_the_limit_admission_is_exact():
    backend = AllowanceBackend(MemoryBackend(seed=no_spend))
    tight = claim("0.064")  # ten requests
    results = await asyncio.gather(*(backend.reserve([tight], COST, f"r{i}", NOW) for i in range(40)))
    assert sum(result is None for result in results) == 10


async def test_a_grant_too_big_for_the_room_left_falls_back_to_the_one_request():
    store = Counting()
    backend = AllowanceBackend(store)
    big = claim("100")  # an allowance would be 32 requests, i.e. about $0.2
    assert await store.reserve([big], to_fill := 100 * 10**9 - COST, "others", NOW) is None
    assert await backend.reserve([big], COST, "last", NOW) is None
    assert (await backend.reserve([big], COST, "one-too-many", NOW)).reserved == to_fill + COST


async def test_a_refusal_gives_back_what_was_drawn_from_other_allowances():
    backend = AllowanceBackend(MemoryBackend(seed=no_spend))
    roomy, tight = claim("1000", 1), claim("0.001", 2)
    assert await backend.reserve([roomy], COST, "first", NOW) is None
    free = backend.open[roomy.key][0].free
    assert await backend.reserve([roomy, tight], COST, "refused", NOW) is not None
    assert backend.open[roomy.key][0].free == free and "refused" not in backend.drawn


async def test_a_failed_grant_gives_back_what_was_drawn_from_other_allowances():
    class Flaky(MemoryBackend):
        async def reserve(self, claims, *args):
            if claims[0].policy.id == 2:
                raise ConnectionError("store unreachable")
            return await super().reserve(claims, *args)

    backend = AllowanceBackend(Flaky(seed=no_spend))
    roomy, other = claim("1000", 1), claim("1000", 2)
    assert await backend.reserve([roomy], COST, "first", NOW) is None
    await backend.settle([roomy], "first", COST, COST)
    with pytest.raises(ConnectionError):
        await backend.reserve([roomy, other], COST, "failed", NOW)
    assert (backend.open[roomy.key][0].held, backend.open[roomy.key][0].in_flight) == (0, 0)
    await backend.drain()  # so the allowance can still close, and its spend reach the shared window
    assert backend.open == {} and backend.inner.counters[roomy.key].spent == COST


async def test_alert_windows_are_settled_exactly_and_at_once():
    store = Counting()
    backend = AllowanceBackend(store)
    watch = claim("1", 3, action="alert")
    assert await backend.reserve([watch], COST, "a", NOW) is None
    assert await backend.settle([watch], "a", COST, 123) == [123]
    assert store.reserves == 0 and store.counters[watch.key].spent == 123


@pytest.mark.django_db(transaction=True)
async def test_two_processes_with_allowances_on_one_database_never_overspend():
    def make_spec(amount: str) -> BudgetSpec:
        row = BudgetPolicy.objects.create(name=f"p{amount}", scope="endpoint", target="chat",
                                          amount_usd=Decimal(amount), window_unit="hours")
        return BudgetSpec(row.id, row.name, row.scope, row.target, row.amount_usd, row.window_unit, row.window_value,
                          row.action, row.webhook_url)

    tight = claim_for(await sync_to_async(make_spec)("0.064"), NOW)
    roomy = claim_for(await sync_to_async(make_spec)("1000"), NOW)
    first, second = AllowanceBackend(DatabaseBackend()), AllowanceBackend(DatabaseBackend())
    processes = [first, second] * 20
    results = await asyncio.gather(*(p.reserve([tight], COST, f"t{i}", NOW) for i, p in enumerate(processes)))
    assert sum(result is None for result in results) == 10
    for index, process in enumerate(processes):
        assert await process.reserve([roomy], COST, f"r{index}", NOW) is None
        await process.settle([roomy], f"r{index}", COST, 1_000)
    for process in (first, second):
        await process.drain()
    assert await sync_to_async(first.current)(roomy) == (40_000, 0)


async def test_a_cost_above_the_estimate_reaches_the_shared_store_at_settlement():
    store = Counting()
    first, second = AllowanceBackend(store), AllowanceBackend(store)  # two processes
    small = claim(str(Decimal(COST * 5 // 2) / 10**9))  # room for two and a half estimates
    assert await first.reserve([small], COST, "a", NOW) is None
    await first.settle([small], "a", COST, COST * 2)  # the answer cost twice its estimate
    assert store.counters[small.key].spent == COST  # the overrun, before any allowance closes
    # The other process sees the overrun and the first allowance (still open, held in full): no room left.
    assert await second.reserve([small], COST, "b", NOW) is not None
    await first.drain()
    assert store.counters[small.key].spent == COST * 2 and store.counters[small.key].reserved == 0
