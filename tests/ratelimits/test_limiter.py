"""Rate limits through the Limiter with an in-memory store and an injected clock: a fresh limit admits a
burst of its size then refills smoothly, each scope (global, endpoint, key, "*") counts what it should,
tokens are charged by real usage, concurrency is released, OpenAI's headers, and the failure modes."""
from __future__ import annotations

from dataclasses import dataclass

import pytest

from gateway.config.snapshot import ClientKey, EndpointConfig, RateLimitSpec, Snapshot
from gateway.errors import ServiceUnavailable
from gateway.ratelimits.durations import openai_duration
from gateway.ratelimits.limiter import Limiter, RateLimited
from gateway.ratelimits.memory import MemoryStore


class Clock:
    def __init__(self) -> None:
        self.ms = 1_700_000_000_000.0

    def __call__(self) -> float:
        return self.ms


@dataclass
class Ctx:
    endpoint: EndpointConfig
    key: ClientKey
    request_id: str
    rate_limit: object = None


_ids = iter(range(1_000_000))


def ctx(endpoint: str = "chat", key: str = "team-a") -> Ctx:
    return Ctx(EndpointConfig(1, endpoint, "", (), ()), ClientKey(1, key, None), f"req-{next(_ids)}")


def limit(name="l", scope="global", target="", rpm=None, tpm=None, concurrent=None, id=1) -> RateLimitSpec:
    return RateLimitSpec(id, name, scope, target, rpm, tpm, concurrent)


def limiter(*limits: RateLimitSpec) -> tuple[Limiter, Clock]:
    clock = Clock()
    snapshot = Snapshot(version=1, rate_limits=limits)
    return Limiter(MemoryStore(clock), snapshot=lambda: snapshot), clock


BODY = {"messages": [{"role": "user", "content": "x" * 40}], "max_tokens": 10}  # 10 + 10 tokens estimated


async def admitted(lim: Limiter, count: int, **kw) -> int:
    done = 0
    for _ in range(count):
        try:
            await lim.admit(ctx(**kw), "openai-chat", BODY)
            done += 1
        except RateLimited:
            pass
    return done


async def test_a_fresh_limit_admits_a_burst_of_its_size_then_refills_smoothly():
    lim, clock = limiter(limit(rpm=60))
    assert await admitted(lim, 100) == 60
    clock.ms += 1000  # one request's worth of refill per second
    assert await admitted(lim, 5) == 1
    clock.ms += 30_000
    assert await admitted(lim, 100) == 30


async def test_no_double_burst_at_a_minute_boundary():
    lim, clock = limiter(limit(rpm=10))
    clock.ms = (clock.ms // 60_000 + 1) * 60_000 - 100  # just before a minute boundary
    assert await admitted(lim, 10) == 10
    clock.ms += 200  # just after it: a fixed window would admit 10 more
    assert await admitted(lim, 10) == 0


async def test_the_refusal_names_the_limit_and_says_when_to_retry():
    lim, _ = limiter(limit(name="team-a-rpm", scope="api_key", target="team-a", rpm=2))
    await admitted(lim, 2)
    with pytest.raises(RateLimited) as refused:
        await lim.admit(ctx(), "openai-chat", BODY)
    assert refused.value.status == 429
    assert "Rate limit 'team-a-rpm' (api key 'team-a') allows 2 requests per minute" in refused.value.message
    assert refused.value.headers["Retry-After"] == "30"


@pytest.mark.parametrize("scope, target, same, other", [
    ("endpoint", "chat", {"endpoint": "chat"}, {"endpoint": "other"}),
    ("api_key", "team-a", {"key": "team-a"}, {"key": "team-b"}),
])
async def test_a_named_target_counts_only_its_own_requests(scope, target, same, other):
    lim, _ = limiter(limit(scope=scope, target=target, rpm=3))
    assert await admitted(lim, 5, **same) == 3
    assert await admitted(lim, 5, **other) == 5


@pytest.mark.parametrize("scope, first, second", [
    ("endpoint", {"endpoint": "a"}, {"endpoint": "b"}),
    ("api_key", {"key": "a"}, {"key": "b"}),
])
async def test_star_gives_each_endpoint_or_key_its_own_count(scope, first, second):
    lim, _ = limiter(limit(scope=scope, target="*", rpm=3))
    assert await admitted(lim, 5, **first) == 3
    assert await admitted(lim, 5, **second) == 3


async def test_a_global_limit_counts_everything():
    lim, _ = limiter(limit(rpm=4))
    assert await admitted(lim, 3, endpoint="a", key="x") + await admitted(lim, 3, endpoint="b", key="y") == 4


async def test_tokens_are_held_by_estimate_then_charged_by_real_usage():
    lim, _ = limiter(limit(tpm=100))
    first = ctx()
    await lim.admit(first, "openai-chat", BODY)  # holds 20
    assert first.rate_limit.headers["x-ratelimit-remaining-tokens"] == "80"
    lim.settle(first.rate_limit, 60)  # the answer was larger than estimated: 40 more are charged
    second = ctx()
    await lim.admit(second, "openai-chat", BODY)
    assert second.rate_limit.headers["x-ratelimit-remaining-tokens"] == "20"
    lim.settle(second.rate_limit, 0)  # a failed request gives its estimate back
    third = ctx()
    await lim.admit(third, "openai-chat", BODY)
    assert third.rate_limit.headers["x-ratelimit-remaining-tokens"] == "20"
    await lim.admit(ctx(), "openai-chat", BODY)
    with pytest.raises(RateLimited, match="100 tokens per minute"):
        await lim.admit(ctx(), "openai-chat", BODY)


async def test_a_request_larger_than_the_token_limit_still_passes_a_full_limit():
    lim, _ = limiter(limit(tpm=5))
    await lim.admit(ctx(), "openai-chat", BODY)
    with pytest.raises(RateLimited):
        await lim.admit(ctx(), "openai-chat", BODY)


async def test_concurrency_is_released_when_the_request_finishes():
    lim, _ = limiter(limit(name="two-at-once", concurrent=2))
    first, second = ctx(), ctx()
    await lim.admit(first, "openai-chat", BODY)
    await lim.admit(second, "openai-chat", BODY)
    with pytest.raises(RateLimited, match="'two-at-once' \\(all requests\\) allows 2 concurrent requests"):
        await lim.admit(ctx(), "openai-chat", BODY)
    lim.settle(first.rate_limit, 10)
    await lim.admit(ctx(), "openai-chat", BODY)


async def test_headers_report_the_tightest_limit_of_each_kind():
    lim, _ = limiter(limit(rpm=100, id=1), limit(name="k", scope="api_key", target="team-a", rpm=3, tpm=1000, id=2))
    request = ctx()
    await lim.admit(request, "openai-chat", BODY)
    assert request.rate_limit.headers == {
        "x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "2",
        "x-ratelimit-reset-requests": "20s",
        "x-ratelimit-limit-tokens": "1000", "x-ratelimit-remaining-tokens": "980",
        "x-ratelimit-reset-tokens": "1.2s",
    }


async def test_a_request_no_limit_covers_gets_no_headers():
    lim, _ = limiter(limit(scope="endpoint", target="other", rpm=1))
    request = ctx()
    await lim.admit(request, "openai-chat", BODY)
    assert request.rate_limit is None


@pytest.mark.parametrize("ms, text", [(20, "20ms"), (999.2, "1000ms"), (1000, "1s"), (1500, "1.5s"),
                                      (360_000, "6m0s"), (61_000, "1m1s"), (3_723_000, "1h2m3s")])
def test_openai_duration_format(ms, text):
    assert openai_duration(ms) == text


class Broken:
    def __init__(self) -> None:
        self.calls = 0

    async def acquire(self, checks, lease):
        self.calls += 1
        raise ConnectionError("redis is down")


async def test_an_unreachable_store_admits_when_failing_open(settings):
    settings.GATEWAY_RATE_LIMIT_FAILURE = "open"
    snapshot = Snapshot(version=1, rate_limits=(limit(rpm=1),))
    broken = Broken()
    lim = Limiter(broken, snapshot=lambda: snapshot)
    await lim.admit(ctx(), "openai-chat", BODY)
    await lim.admit(ctx(), "openai-chat", BODY)
    assert lim.failures == 2
    assert broken.calls == 1  # right after a failure, requests do not wait for another connection attempt


async def test_an_unreachable_store_refuses_when_failing_closed(settings):
    settings.GATEWAY_RATE_LIMIT_FAILURE = "closed"
    snapshot = Snapshot(version=1, rate_limits=(limit(rpm=1),))
    lim = Limiter(Broken(), snapshot=lambda: snapshot)
    with pytest.raises(ServiceUnavailable, match="rate-limit store is unavailable"):
        await lim.admit(ctx(), "openai-chat", BODY)


async def test_each_tokens_limit_is_charged_the_real_usage_against_its_own_hold():
    """A request's estimate (20) is capped at each limit (10 for the smaller one): settling 30 tokens charges
    each limit 30 in all, whichever limit comes first, not one limit's hold difference to both."""
    large, small = limit(name="large", tpm=1000, id=1), limit(name="small", scope="endpoint", target="chat", tpm=10, id=2)
    lim, clock = limiter(large, small)
    first = ctx()
    await lim.admit(first, "openai-chat", BODY)
    lim.settle(first.rate_limit, 30)
    # The small limit is 20 past its 10 a minute: full again 3 minutes after, so half a minute short of it
    # now, a request estimated at 2 tokens leaves room for 3 more (charged only 10 more, it would show 8).
    clock.ms += 60_000 * 2.5
    second = ctx()
    await lim.admit(second, "openai-chat", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 1})
    assert second.rate_limit.headers["x-ratelimit-remaining-tokens"] == "3"
