"""Per-process allowances in front of the Redis rate-limit store, against a real redis-server: large limits
are admitted from memory with one round trip per allowance, two processes together never admit more than
the limit, near the edge every request is counted in Redis, unused parts go back, concurrency places come
back as requests finish, and small limits stay exact request by request."""
from __future__ import annotations

import asyncio
import time

import pytest

from gateway.ratelimits import allowance as allowances
from gateway.ratelimits.allowance import AllowanceStore, allowance_size
from gateway.ratelimits.redis import PREFIX, RedisStore
from gateway.ratelimits.types import Check, Denied, Granted
from tests.redis_server import redis_server


@pytest.fixture
def redis_url():
    with redis_server() as url:
        yield url


class CountingStore(RedisStore):
    """A RedisStore that counts its round trips."""

    def __init__(self, url: str) -> None:
        super().__init__(url)
        self.trips = 0

    async def _run(self, asks):
        self.trips += 1
        return await super()._run(asks)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def check(kind: str, limit: int, cost: int = 1, key: str = "1:global:") -> Check:
    return Check(f"{key}:{kind}", kind, limit, cost, "l", "global", "")


def store(url: str, clock=None) -> AllowanceStore:
    return AllowanceStore(CountingStore(url), clock=clock or Clock())


def test_only_limits_large_enough_to_share_get_allowances():
    assert allowance_size(check("requests", 60)) is None
    assert allowance_size(check("requests", 199)) is None
    assert allowance_size(check("requests", 200)) == 2
    assert allowance_size(check("requests", 1_000_000)) == allowances.CHUNK_REQUESTS
    assert allowance_size(check("concurrent", 10)) is None
    assert allowance_size(check("tokens", 100_000, cost=500)) == 1000
    assert allowance_size(check("tokens", 100_000, cost=2000)) is None  # not two requests' worth
    assert allowance_size(check("tokens", 10_000_000, cost=500)) == 500 * allowances.CHUNK_REQUESTS


async def test_a_large_limit_is_admitted_from_memory_between_round_trips(redis_url):
    lim = store(redis_url)
    requests = check("requests", 100_000)
    for i in range(100):
        answer = await lim.acquire([requests], f"r{i}")
        assert isinstance(answer, Granted)
        lim.settle([requests], f"r{i}", 0)
    assert lim.inner.trips == 4  # 100 requests, allowances of 32
    await lim.close()


async def test_headers_still_count_down_under_an_allowance(redis_url):
    lim = store(redis_url)
    requests = check("requests", 100_000)
    seen = [(await lim.acquire([requests], f"r{i}")).remaining[0] for i in range(5)]
    assert seen == [99_999, 99_998, 99_997, 99_996, 99_995]
    await lim.close()


async def test_token_headers_count_tokens_under_an_allowance(redis_url):
    lim = store(redis_url)
    tokens = check("tokens", 1_000_000, cost=100)  # allowances of 3,200 tokens
    seen = [(await lim.acquire([tokens], f"r{i}")).remaining[0] for i in range(3)]
    assert seen == [999_900, 999_800, 999_700]
    await lim.close()


async def test_two_processes_never_admit_more_than_the_limit(redis_url):
    first, second = store(redis_url), store(redis_url)
    requests = check("requests", 300)  # allowances of 3; refills 5 a second
    started = time.monotonic()
    answers = await asyncio.gather(*[(first if i % 2 else second).acquire([requests], f"l{i}")
                                     for i in range(400)])
    refilled = int((time.monotonic() - started) * 5) + 1
    admitted = sum(isinstance(a, Granted) for a in answers)
    # Never late; early by at most one allowance held unused by each process.
    assert 300 - 2 * allowance_size(requests) <= admitted <= 300 + refilled
    await first.close()
    await second.close()


async def test_near_the_limit_every_request_is_counted_in_redis(redis_url):
    lim, other = store(redis_url), RedisStore(redis_url)
    requests = check("requests", 1000)  # allowances of 10
    assert isinstance(await other.acquire([replace_cost(requests, 995)], "x"), Granted)
    answers = [await lim.acquire([requests], f"r{i}") for i in range(8)]
    assert [isinstance(a, Granted) for a in answers] == [True] * 5 + [False] * 3
    await lim.close()
    await other.close()


def replace_cost(c: Check, cost: int) -> Check:
    return Check(c.key, c.kind, c.limit, cost, c.name, c.scope, c.subject)


async def test_unused_allowance_goes_back_when_idle(redis_url):
    """Read from the limit's own arrival time in Redis, which only requests and give-backs move (time does not):
    an allowance of 32 with one request used moves it 32 spacings on, then 31 back once idle."""
    import redis

    clock = Clock()
    lim = store(redis_url, clock)
    requests = check("requests", 3_200)  # allowances of 32; 18.75 ms between requests
    spacing = 60_000 / 3_200

    def arrival() -> float:
        return float(redis.Redis.from_url(redis_url).get(PREFIX + requests.key))

    other = RedisStore(redis_url)  # 90 % spent: the arrival time lies 54 s ahead, far from expiring
    assert isinstance(await other.acquire([replace_cost(requests, 2_880)], "x"), Granted)
    assert isinstance(await lim.acquire([requests], "a"), Granted)
    lim.settle([requests], "a", 0)
    taken = arrival()
    clock.now += allowances.IDLE_SECONDS + 1
    for _ in range(200):  # bounded: the sweeper runs every SWEEP_SECONDS, the flush 50 ms later
        await asyncio.sleep(0.05)
        if not lim.open and arrival() != taken:
            break
    else:
        pytest.fail("the idle allowance was never retired and given back")
    assert arrival() == pytest.approx(taken - 31 * spacing, abs=0.01)
    await lim.close()
    await other.close()


async def test_concurrency_places_come_back_as_requests_finish(redis_url):
    lim = store(redis_url)
    concurrent = check("concurrent", 200)  # allowances of 2 places
    assert isinstance(await lim.acquire([concurrent], "a"), Granted)
    assert isinstance(await lim.acquire([concurrent], "b"), Granted)
    assert lim.inner.trips == 1
    lim.settle([concurrent], "a", 0)
    assert isinstance(await lim.acquire([concurrent], "c"), Granted)
    assert lim.inner.trips == 1  # the place "a" freed, reused without Redis
    await lim.close()


async def test_concurrency_allowance_holds_exactly_its_places_in_redis(redis_url):
    import redis

    lim = store(redis_url)
    concurrent = check("concurrent", 500)  # allowances of 5 places
    assert isinstance(await lim.acquire([concurrent], "a"), Granted)
    assert redis.Redis.from_url(redis_url).zcard(PREFIX + concurrent.key) == 5
    lim.settle([concurrent], "a", 0)
    await lim.flush()  # shutdown: every place goes back
    assert redis.Redis.from_url(redis_url).zcard(PREFIX + concurrent.key) == 0
    await lim.close()


async def test_tokens_above_the_estimate_are_charged_to_redis(redis_url):
    lim = store(redis_url)
    tokens = check("tokens", 100_000, cost=100)  # allowances of 1000 tokens; refills 1,667 tokens a second
    started = time.monotonic()
    assert isinstance(await lim.acquire([tokens], "a"), Granted)
    lim.settle([tokens], "a", 5_100)  # the answer was much longer than estimated: 5,000 more
    await lim.inner.flush()
    observer = RedisStore(redis_url)
    left = (await observer.acquire([check("tokens", 100_000, cost=1)], "o")).remaining[0]
    refilled = (time.monotonic() - started) * 100_000 / 60 + 1
    assert left <= 100_000 - 1000 - 5_000 - 1 + refilled < 100_000 - 1000 - 1  # the 5,000 reached Redis
    await lim.close()
    await observer.close()


async def test_a_small_limit_is_exact_request_by_request(redis_url):
    first, second = store(redis_url), store(redis_url)
    requests = check("requests", 10)
    answers = await asyncio.gather(*[(first if i % 2 else second).acquire([requests], f"l{i}")
                                     for i in range(25)])
    assert sum(isinstance(a, Granted) for a in answers) == 10
    assert first.inner.trips + second.inner.trips == 25
    assert not first.open and not second.open
    await first.close()
    await second.close()


async def test_a_refusal_gives_back_what_the_request_drew(redis_url):
    lim = store(redis_url)
    loose, tight = check("requests", 100_000, key="a"), check("requests", 1, key="b")
    assert isinstance(await lim.acquire([loose, tight], "x"), Granted)
    free = lim.open[loose.key][0].free
    assert isinstance(await lim.acquire([loose, tight], "y"), Denied)
    assert lim.open[loose.key][0].free == free
    await lim.close()


class LostReply(CountingStore):
    """Redis runs the script, but the reply takes `delay` to come back (a client may leave meanwhile)."""

    delay = 0.2

    async def acquire_each(self, asks):
        answer = await super().acquire_each(asks)
        await asyncio.sleep(self.delay)
        return answer


async def test_a_request_cancelled_while_redis_grants_its_allowance_gives_the_allowance_back(redis_url):
    import redis

    lim = AllowanceStore(LostReply(redis_url), clock=Clock())
    concurrent = check("concurrent", 1000)  # allowances of 10 places
    pending = asyncio.ensure_future(lim.acquire([concurrent], "gone"))
    await asyncio.sleep(0.1)  # granted in Redis, the reply not back yet
    pending.cancel()
    with pytest.raises(asyncio.CancelledError):
        await pending
    await asyncio.sleep(LostReply.delay)
    await lim.inner.flush()
    assert redis.Redis.from_url(redis_url).zcard(PREFIX + concurrent.key) == 0
    await lim.close()


async def test_a_settlement_sent_twice_moves_a_limit_once(redis_url):
    """A round trip whose reply is lost after Redis ran it is sent again with the next one: a give-back then
    must not count twice (it would admit that many requests too many)."""
    store_ = RedisStore(redis_url)
    requests = check("requests", 1000)  # refills 1 in 60 ms
    assert isinstance(await store_.acquire([replace_cost(requests, 500)], "a"), Granted)
    store_.release(requests, "", -100)
    script = store_._script

    async def ran_then_lost(**kwargs):
        await script(**kwargs)
        raise ConnectionError("reply lost")

    store_._script = ran_then_lost
    await store_.flush()
    assert store_.failures == 1
    store_._script = script
    await store_.flush()  # the same settlement again
    left = (await store_.acquire([requests], "b")).remaining[0]
    assert 599 - 1 <= left <= 599 + 5  # 1000 - 500 + 100 - 1, give or take what refilled meanwhile
    await store_.close()


class SlowStore(CountingStore):
    async def acquire_each(self, asks):
        await asyncio.sleep(0.1)
        return await super().acquire_each(asks)


async def test_near_the_limit_waiting_requests_go_to_redis_together_not_one_by_one(redis_url):
    lim, other = AllowanceStore(SlowStore(redis_url), clock=time.monotonic), RedisStore(redis_url)
    requests = check("requests", 1000)  # allowances of 10
    assert isinstance(await other.acquire([replace_cost(requests, 995)], "x"), Granted)
    started = time.monotonic()
    answers = await asyncio.gather(*[lim.acquire([requests], f"r{i}") for i in range(10)])
    elapsed = time.monotonic() - started
    refilled = int(elapsed * 1000 / 60) + 1
    assert 5 <= sum(isinstance(a, Granted) for a in answers) <= 5 + refilled
    # One refused allowance, then everyone alone and at once: about 3 round trips of 0.1 s, not 20 in a row
    # (2 s); the margin is for a loaded machine.
    assert elapsed < 1.5
    assert lim.inner.trips <= 12
    await lim.close()
    await other.close()
