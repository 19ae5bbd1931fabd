"""The budget backends keep the same contract: reservations are admitted atomically (concurrent requests
never overspend), settling swaps a hold for the actual cost, holds expire, and a window first seen starts
from the cost of the usage records already in it. Each test runs against memory, database and a real
redis-server on 127.0.0.1."""
from __future__ import annotations

import asyncio
from datetime import timedelta
from decimal import Decimal

import pytest
from asgiref.sync import sync_to_async

from gateway.budgets.memory import MemoryBackend
from gateway.budgets.database import DatabaseBackend
from gateway.budgets.windows import claim_for
from gateway.models import BudgetPolicy, UsageRecord
from gateway.config.snapshot import BudgetSpec
from tests.clock import this_hour
from tests.redis_server import redis_server

pytestmark = [pytest.mark.database, pytest.mark.clock]

NOW = this_hour()
COST = 6_400_000  # nano-USD per request


@pytest.fixture(scope="module")
def redis_url():
    with redis_server() as url:
        yield url


@pytest.fixture(params=["memory", "database", "redis"])
def make_backend(request):
    """A factory, so a test can build two backends sharing one store (two server processes)."""
    made = []

    def build():
        if request.param == "memory":
            backend = MemoryBackend()
        elif request.param == "database":
            backend = DatabaseBackend()
        else:
            from gateway.budgets.redis import RedisBackend

            backend = RedisBackend(request.getfixturevalue("redis_url"))
            backend.sync_client.flushdb()
        made.append(backend)
        return backend

    build.kind = request.param
    yield build


def spec(amount: str = "0.064", action: str = "reject", scope: str = "endpoint", target: str = "chat") -> BudgetSpec:
    row = BudgetPolicy.objects.create(name=f"p-{BudgetPolicy.objects.count()}", scope=scope, target=target,
                                      amount_usd=Decimal(amount), window_unit="hours", action=action)
    return BudgetSpec(row.id, row.name, row.scope, row.target, row.amount_usd, row.window_unit, row.window_value,
                      row.action, row.webhook_url)


async def new_claim(**kwargs):
    return claim_for(await sync_to_async(spec)(**kwargs), NOW)


@pytest.mark.django_db(transaction=True)
async def test_concurrent_reservations_admit_exactly_what_fits(make_backend):
    backend = make_backend()
    claim = await new_claim()

    async def one(index: int):
        return await backend.reserve([claim], COST, f"lease-{index}", NOW)

    refusals = await asyncio.gather(*(one(i) for i in range(40)))
    assert sum(refusal is None for refusal in refusals) == 10
    assert await sync_to_async(backend.current)(claim) == (0, 10 * COST)


@pytest.mark.django_db(transaction=True)
async def test_settling_swaps_the_hold_for_the_actual_cost(make_backend):
    backend = make_backend()
    claim, watch = await new_claim(), await new_claim(amount="1", action="alert")
    assert await backend.reserve([claim, watch], COST, "a", NOW) is None
    assert await backend.settle([claim, watch], "a", COST, 1_000) == [1_000, 1_000]
    assert await backend.settle([claim, watch], "a", COST, 0) == [1_000, 1_000]  # settling twice adds nothing more
    for index in range(9):
        assert await backend.reserve([claim], COST, f"b{index}", NOW) is None
    refusal = await backend.reserve([claim], COST, "c", NOW)
    assert (refusal.claim, refusal.spent, refusal.reserved) == (claim, 1_000, 9 * COST)


@pytest.mark.django_db(transaction=True)
async def test_a_refusal_holds_nothing_in_any_window(make_backend):
    backend = make_backend()
    roomy, tight = await new_claim(amount="1"), await new_claim(amount="0.001")
    assert await backend.reserve([roomy, tight], COST, "a", NOW) is not None
    assert await backend.reserve([roomy], 1_000_000_000, "b", NOW) is None  # the whole $1 is still free


@pytest.mark.django_db(transaction=True)
async def test_holds_of_a_vanished_process_expire(make_backend, settings):
    settings.GATEWAY_BUDGET_RESERVATION_TTL_SECONDS = 60
    backend = make_backend()
    claim = await new_claim(amount="0.0064")
    assert await backend.reserve([claim], COST, "crashed", NOW) is None
    assert await backend.reserve([claim], COST, "early", NOW + timedelta(seconds=59)) is not None
    assert await backend.reserve([claim], COST, "later", NOW + timedelta(seconds=61)) is None


@pytest.mark.django_db(transaction=True)
async def test_a_new_window_starts_from_the_recorded_spend(make_backend):
    def record(cost: str, minutes: int, endpoint: str = "chat") -> None:
        UsageRecord.objects.create(created_at=NOW + timedelta(minutes=minutes), endpoint_name=endpoint,
                                   cost_usd=Decimal(cost))

    for args in (("0.02", 1), ("0.01", 30), ("5", -1), ("5", 61), ("5", 2, "other")):
        await sync_to_async(record)(*args)
    backend = make_backend()
    claim = await new_claim()
    refusal = await backend.reserve([claim], 40_000_000, "a", NOW)
    assert (refusal.spent, refusal.reserved) == (30_000_000, 0)
    assert await backend.reserve([claim], 34_000_000, "b", NOW) is None


@pytest.mark.django_db(transaction=True)
async def test_two_processes_share_one_count(make_backend):
    if make_backend.kind == "memory":
        pytest.skip("the memory backend counts one process only, by design")
    first, second = make_backend(), make_backend()
    claim = await new_claim()
    results = await asyncio.gather(*(backend.reserve([claim], COST, f"l{i}", NOW)
                                     for i, backend in enumerate([first, second] * 20)))
    assert sum(result is None for result in results) == 10
    admitted = next(i for i, result in enumerate(results) if result is None)
    await first.settle([claim], f"l{admitted}", COST, COST)
    refusal = await second.reserve([claim], COST, "x", NOW)
    assert (refusal.spent, refusal.reserved) == (COST, 9 * COST)


@pytest.mark.django_db(transaction=True)
async def test_redis_that_lost_its_data_is_reseeded_from_usage(make_backend):
    if make_backend.kind != "redis":
        pytest.skip("only Redis can lose its windows behind the gateway's back")
    backend = make_backend()
    claim = await new_claim()
    assert await backend.reserve([claim], COST, "a", NOW) is None
    await sync_to_async(UsageRecord.objects.create)(created_at=NOW, endpoint_name="chat", cost_usd=Decimal("0.05"))
    backend.sync_client.flushdb()
    refusal = await backend.reserve([claim], 20_000_000, "b", NOW)
    assert (refusal.spent, refusal.reserved) == (50_000_000, 0)
    await backend.close()


@pytest.mark.django_db(transaction=True)
async def test_concurrent_settlements_add_up(make_backend):
    backend = make_backend()
    claim, watch = await new_claim(), await new_claim(amount="1", action="alert")
    for index in range(10):
        assert await backend.reserve([claim, watch], COST, f"l{index}", NOW) is None
    totals = await asyncio.gather(*(backend.settle([claim, watch], f"l{i}", COST, 1_000 * (i + 1)) for i in range(10)))
    assert max(total[0] for total in totals) == 55_000
    assert await sync_to_async(backend.current)(claim) == (55_000, 0)
    assert await sync_to_async(backend.current)(watch) == (55_000, 0)


@pytest.mark.django_db(transaction=True)
async def test_a_crowd_of_reservations_waits_for_a_redis_connection_instead_of_failing(make_backend):
    """More reservations at once than Redis's connection pool holds wait their turn: none fails with
    'Too many connections' (a budget on Redis would answer 503 to each)."""
    if make_backend.kind != "redis":
        pytest.skip("a Redis connection pool")
    backend = make_backend()
    claim = await new_claim()
    refusals = await asyncio.gather(*(backend.reserve([claim], COST, f"crowd-{i}", NOW) for i in range(300)))
    assert sum(refusal is None for refusal in refusals) == 10
