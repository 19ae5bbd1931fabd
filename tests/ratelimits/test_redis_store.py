"""The Redis rate-limit store against a real redis-server: two stores (as two processes would have) share
each limit, a refusal changes nothing, tokens settle by real usage, concurrency holds are released, and a
Redis that lost its data (restart) starts the limits afresh instead of failing."""
from __future__ import annotations

import asyncio

import pytest

from gateway.ratelimits.redis import RedisStore
from gateway.ratelimits.types import Check, Denied, Granted
from tests.redis_server import redis_server


@pytest.fixture
def redis_url():
    with redis_server() as url:
        yield url


def check(kind: str, limit: int, cost: int = 1, key: str = "1:global:") -> Check:
    return Check(f"{key}:{kind}", kind, limit, cost, "l", "global", "")


async def test_two_stores_share_one_burst(redis_url):
    first, second = RedisStore(redis_url), RedisStore(redis_url)
    answers = await asyncio.gather(*[(first if i % 2 else second).acquire([check("requests", 10)], f"l{i}")
                                     for i in range(25)])
    assert sum(isinstance(a, Granted) for a in answers) == 10
    refused = next(a for a in answers if isinstance(a, Denied))
    assert 0 < refused.retry_ms <= 6000
    assert sorted(a.remaining[0] for a in answers if isinstance(a, Granted)) == list(range(10))
    await first.close()
    await second.close()


async def test_a_refusal_on_one_limit_charges_none_of_the_others(redis_url):
    store = RedisStore(redis_url)
    tight, loose = check("requests", 1, key="a"), check("requests", 5, key="b")
    assert isinstance(await store.acquire([loose, tight], "x"), Granted)
    assert isinstance(await store.acquire([loose, tight], "y"), Denied)
    granted = await store.acquire([loose], "z")
    assert granted.remaining == (3,)
    await store.close()


async def test_tokens_settle_by_real_usage(redis_url):
    store = RedisStore(redis_url)
    tokens = check("tokens", 100, cost=20)
    assert (await store.acquire([tokens], "a")).remaining == (80,)
    store.settle([tokens], "a", 70)  # used 70 instead of 20: sent with the next admission
    assert (await store.acquire([tokens], "b")).remaining == (10,)
    assert isinstance(await store.acquire([tokens], "c"), Denied)
    store.settle([tokens], "b", 0)  # used nothing
    await store.flush()
    assert (await store.acquire([tokens], "d")).remaining == (10,)
    await store.close()


async def test_concurrency_holds_are_released(redis_url):
    first, second = RedisStore(redis_url), RedisStore(redis_url)
    concurrent = check("concurrent", 2)
    assert isinstance(await first.acquire([concurrent], "a"), Granted)
    assert isinstance(await second.acquire([concurrent], "b"), Granted)
    assert isinstance(await first.acquire([concurrent], "c"), Denied)
    second.settle([concurrent], "b", 0)
    assert isinstance(await first.acquire([concurrent], "c"), Denied)  # not sent yet
    await second.flush()  # what the store's timer does after FLUSH_SECONDS without a request
    assert isinstance(await first.acquire([concurrent], "c"), Granted)
    await first.close()
    await second.close()


async def test_settlements_left_queued_are_sent_by_the_timer(redis_url):
    store = RedisStore(redis_url)
    concurrent = check("concurrent", 1)
    assert isinstance(await store.acquire([concurrent], "a"), Granted)
    store.settle([concurrent], "a", 0)
    observer = RedisStore(redis_url)
    for _ in range(200):  # bounded: FLUSH_SECONDS is 50 ms
        if isinstance(await observer.acquire([concurrent], "b"), Granted):
            break
        await asyncio.sleep(0.01)
    else:
        pytest.fail("the release never reached Redis")
    await store.close()
    await observer.close()


async def test_limits_start_afresh_when_redis_lost_its_data(redis_url):
    import redis

    store = RedisStore(redis_url)
    requests = check("requests", 1)
    assert isinstance(await store.acquire([requests], "a"), Granted)
    assert isinstance(await store.acquire([requests], "b"), Denied)
    redis.Redis.from_url(redis_url).flushall()  # as after a restart without persistence (scripts gone too)
    redis.Redis.from_url(redis_url).script_flush()
    assert isinstance(await store.acquire([requests], "c"), Granted)
    await store.close()


async def test_a_crowd_of_concurrent_requests_waits_for_a_connection_instead_of_failing(redis_url):
    """More requests at once than the connection pool holds: each waits its turn for a connection rather
    than counting as an unreachable store (which would admit them all under GATEWAY_RATE_LIMIT_FAILURE=open)."""
    store = RedisStore(redis_url)
    answers = await asyncio.gather(*[store.acquire([check("requests", 10)], f"l{i}") for i in range(300)])
    assert sum(isinstance(a, Granted) for a in answers) == 10
    assert store.failures == 0
    await store.close()
