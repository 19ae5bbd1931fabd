"""Routing: traffic split, fallback, same-model retries, circuit breakers, deadlines and stream guards,
driven with scripted adapters, a fake clock, a recorded sleep and a seeded random source."""
from __future__ import annotations

import asyncio
import itertools
import random
from collections import Counter
from dataclasses import dataclass

import pytest

from gateway.errors import UpstreamError
from gateway.routing.router import Outcome, Router, pick_weighted
from gateway.config.snapshot import EndpointConfig, Link
from providers.base import ModelTarget, ProviderAdapter, ProviderError

pytestmark = pytest.mark.clock

_ids = itertools.count(1)
HANG = object()  # a script step that never completes


@dataclass
class Slow:
    """A script step that takes `seconds` on the fake clock, then fails with `error` (or succeeds)."""

    seconds: float
    error: Exception | None = None


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Scripted(ProviderAdapter):
    """Plays its script, one step per call: an exception to raise, HANG, Slow, or a list of stream items
    (a ProviderError or HANG among them fails or stalls the stream there). An exhausted script answers
    successfully."""

    provider = "scripted"

    def __init__(self, name: str, *script, clock: FakeClock | None = None, auth_config: dict | None = None) -> None:
        super().__init__(ModelTarget(id=next(_ids), name=name, provider="scripted", model_name=name,
                                     credentials={"api_key": "sk-very-secret-0123"}, auth_config=auth_config or {}))
        self.script = list(script)
        self.clock = clock
        self.calls = 0
        self.closed = 0

    async def _step(self):
        self.calls += 1
        step = self.script.pop(0) if self.script else None
        if step is HANG:
            await asyncio.Event().wait()
        if isinstance(step, Slow):
            self.clock.now += step.seconds
            step = step.error
        if isinstance(step, Exception):
            raise step
        return step

    async def chat(self, request, stats):
        await self._step()
        return {"served_by": self.target.name}

    async def chat_stream(self, request, stats):
        step = await self._step()
        try:
            for item in step if isinstance(step, list) else ["a", "b", "c"]:
                if item is HANG:
                    await asyncio.Event().wait()
                if isinstance(item, Exception):
                    raise item
                yield item
        finally:
            self.closed += 1


def error(status: int, retry_after: float | None = None) -> ProviderError:
    return ProviderError(status, f"Provider 'scripted' returned HTTP {status}: boom", retry_after=retry_after)


def refused() -> ProviderError:
    return ProviderError(502, "Could not reach provider 'scripted': ConnectError.", retryable=True,
                         error_type="connection_error")


def endpoint(primaries, fallbacks=(), *, split=False, weights=None, **settings) -> EndpointConfig:
    weights = weights or [1.0] * len(primaries)
    return EndpointConfig(
        id=1, name="chat", routing_strategy="traffic_split" if split else "",
        primaries=tuple(Link(a, w, 0) for a, w in zip(primaries, weights)),
        fallbacks=tuple(Link(a, 1.0, i) for i, a in enumerate(fallbacks, start=1)), **settings)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def router(clock) -> Router:
    return Router(rand=random.Random(1234).random, clock=clock, sleep=clock.sleep)


async def chat(router: Router, ep: EndpointConfig) -> Outcome:
    return await router.call(ep, lambda adapter, stats: adapter.chat({}, stats))


async def stream(router: Router, ep: EndpointConfig) -> tuple[list, Outcome]:
    first, rest, outcome = await router.open_stream(ep, lambda adapter, stats: adapter.chat_stream({}, stats))
    items = [first]
    try:
        async for item in rest:
            items.append(item)
    finally:
        await rest.aclose()
    return items, outcome


def served(outcome: Outcome) -> str:
    return outcome.link.target.name


# -- traffic split -----------------------------------------------------------------------------

def test_pick_weighted_honours_fractional_weights():
    a, b, c = Scripted("a"), Scripted("b"), Scripted("c")
    links = (Link(a, 0.155, 0), Link(b, 0.345, 0), Link(c, 0.5, 0))
    rand = random.Random(42).random
    counts = Counter(pick_weighted(links, rand).target.name for _ in range(4000))
    assert abs(counts["a"] / 4000 - 0.155) < 0.02
    assert abs(counts["b"] / 4000 - 0.345) < 0.025
    assert abs(counts["c"] / 4000 - 0.5) < 0.025


async def test_traffic_split_distribution_through_the_router(router):
    models = [Scripted("small"), Scripted("big")]
    ep = endpoint(models, split=True, weights=[0.25, 0.75])
    counts = Counter([served(await chat(router, ep)) for _ in range(400)])
    assert abs(counts["small"] / 400 - 0.25) < 0.06


async def test_without_a_strategy_the_first_primary_serves(router):
    ep = endpoint([Scripted("first"), Scripted("second")])
    assert {served(await chat(router, ep)) for _ in range(20)} == {"first"}


# -- fallback ----------------------------------------------------------------------------------

async def test_fallbacks_are_tried_in_order_up_to_max_attempts(router):
    primary, f1, f2, f3 = (Scripted(n, error(500)) for n in ("p", "f1", "f2", "f3"))
    ep = endpoint([primary], [f1, f2, f3], fallback_max_attempts=2)
    outcome = Outcome()
    with pytest.raises(UpstreamError) as info:
        await router.call(ep, lambda adapter, stats: adapter.chat({}, stats), outcome)
    assert [a.model for a in outcome.attempts] == ["p", "f1", "f2"]
    assert f3.calls == 0
    assert info.value.status == 500
    assert "All 3 attempts failed" in info.value.message and "f2: Provider 'scripted'" in info.value.message


async def test_fallback_serves_after_a_retryable_failure(router):
    ep = endpoint([Scripted("p", refused())], [Scripted("backup")])
    outcome = await chat(router, ep)
    assert served(outcome) == "backup" and len(outcome.attempts) == 2


@pytest.mark.parametrize("status", [400, 404, 413, 422])
async def test_client_errors_are_returned_at_once(router, status):
    primary, backup = Scripted("p", error(status)), Scripted("backup")
    ep = endpoint([primary], [backup], retries=3)
    with pytest.raises(UpstreamError) as info:
        await chat(router, ep)
    assert info.value.status == status and "attempts" not in info.value.message
    assert (primary.calls, backup.calls) == (1, 0)


async def test_408_moves_to_the_fallback_without_a_same_model_retry(router, clock):
    primary, backup = Scripted("p", error(408)), Scripted("backup")
    outcome = await chat(router, endpoint([primary], [backup], retries=2))
    assert (primary.calls, served(outcome), clock.sleeps) == (1, "backup", [])


async def test_the_final_error_is_the_last_retryable_one_and_names_no_credentials(router):
    ep = endpoint([Scripted("p", error(503))], [Scripted("backup", error(429, retry_after=3))])
    with pytest.raises(UpstreamError) as info:
        await chat(router, ep)
    assert info.value.status == 429 and info.value.headers == {"retry-after": "3"}
    assert "p: Provider 'scripted' returned HTTP 503" in info.value.message
    assert "sk-very-secret" not in info.value.message


def echoing(status: int) -> ProviderError:
    """An upstream whose error text quotes the key it refused (LiteLLM-style proxies do)."""
    return ProviderError(status, f"Provider 'scripted' returned HTTP {status}: bad key sk-very-secret-0123 sent")


async def test_credentials_an_upstream_echoes_are_redacted(router):
    with pytest.raises(UpstreamError) as info:
        await chat(router, endpoint([Scripted("p", echoing(502))], [Scripted("backup", echoing(401))]))
    assert "sk-very-secret" not in info.value.message
    assert "p: Provider 'scripted' returned HTTP 502: bad key [REDACTED] sent" in info.value.message


async def test_credentials_echoed_mid_stream_are_redacted(router):
    with pytest.raises(ProviderError) as info:
        await stream(router, endpoint([Scripted("p", ["a", echoing(502)])]))
    assert info.value.message == "Provider 'scripted' returned HTTP 502: bad key [REDACTED] sent"


async def test_no_primary_is_503(router):
    with pytest.raises(UpstreamError) as info:
        await chat(router, endpoint([]))
    assert info.value.status == 503


# -- retries -----------------------------------------------------------------------------------

async def test_retry_on_the_same_model_waits_for_retry_after(router, clock):
    model = Scripted("only", error(429, retry_after=2.5))
    outcome = await chat(router, endpoint([model]))
    assert served(outcome) == "only" and model.calls == 2
    assert clock.sleeps == [2.5]
    assert [a.status for a in outcome.attempts] == [429, None]


async def test_backoff_is_exponential_with_full_jitter(clock):
    router = Router(rand=lambda: 0.5, clock=clock, sleep=clock.sleep)
    model = Scripted("only", error(500), error(502), refused(), error(503))
    with pytest.raises(UpstreamError) as info:
        await chat(router, endpoint([model], retries=3, breaker_threshold=10))
    assert clock.sleeps == [0.125, 0.25, 0.5]
    assert model.calls == 4 and info.value.status == 503


async def test_retry_after_beyond_the_cap_goes_back_to_the_client(router, clock):
    model = Scripted("only", error(429, retry_after=60))
    with pytest.raises(UpstreamError) as info:
        await chat(router, endpoint([model]))
    assert model.calls == 1 and clock.sleeps == []
    assert info.value.headers == {"retry-after": "60"}


async def test_default_retries_are_one_alone_and_zero_with_fallbacks(router):
    alone = Scripted("alone", error(500), error(500), error(500))
    with pytest.raises(UpstreamError):
        await chat(router, endpoint([alone]))
    assert alone.calls == 2
    primary = Scripted("p", error(500), error(500))
    await chat(router, endpoint([primary], [Scripted("backup")]))
    assert primary.calls == 1


async def test_attempts_count_same_model_retries(router):
    outcome = await chat(router, endpoint([Scripted("p", *[error(500)] * 3)], [Scripted("b")], retries=2))
    assert [a.model for a in outcome.attempts] == ["p", "p", "p", "b"]


# -- circuit breaker ---------------------------------------------------------------------------

async def test_circuit_opens_after_threshold_and_skips_the_model(router):
    primary = Scripted("p", *[error(500)] * 3)
    backup = Scripted("backup")
    ep = endpoint([primary], [backup], breaker_threshold=3)
    for _ in range(3):
        assert served(await chat(router, ep)) == "backup"
    outcome = await chat(router, ep)
    assert served(outcome) == "backup" and len(outcome.attempts) == 1
    assert primary.calls == 3


async def test_half_open_lets_one_trial_through_then_closes(router, clock):
    primary = Scripted("p", error(500), error(500), HANG)
    backup = Scripted("backup")
    ep = endpoint([primary], [backup], breaker_threshold=2, breaker_cooldown=30)
    for _ in range(2):
        await chat(router, ep)
    clock.now += 29
    assert served(await chat(router, ep)) == "backup" and primary.calls == 2
    clock.now += 1
    trial = asyncio.create_task(chat(router, ep))
    await asyncio.sleep(0)
    assert primary.calls == 3
    assert served(await chat(router, ep)) == "backup" and primary.calls == 3  # one trial only
    trial.cancel()
    with pytest.raises(asyncio.CancelledError):
        await trial
    assert served(await chat(router, ep)) == "p"  # the abandoned trial was released; this one closes it
    assert served(await chat(router, ep)) == "p" and primary.calls == 5


async def test_a_failed_trial_reopens_for_another_cooldown(router, clock):
    primary = Scripted("p", error(500), error(500), error(500))
    ep = endpoint([primary], [Scripted("backup")], breaker_threshold=2, breaker_cooldown=10)
    for _ in range(2):
        await chat(router, ep)
    clock.now += 10
    assert served(await chat(router, ep)) == "backup" and primary.calls == 3
    clock.now += 9
    await chat(router, ep)
    assert primary.calls == 3
    clock.now += 1
    assert served(await chat(router, ep)) == "p"


async def test_client_errors_do_not_open_the_circuit(router):
    primary = Scripted("p", *[error(400)] * 5)
    ep = endpoint([primary], [Scripted("backup")], breaker_threshold=2)
    for _ in range(5):
        with pytest.raises(UpstreamError):
            await chat(router, ep)
    assert primary.calls == 5


async def test_threshold_zero_disables_the_breaker(router):
    primary = Scripted("p", *[error(500)] * 8)
    ep = endpoint([primary], [Scripted("backup")], breaker_threshold=0)
    for _ in range(8):
        await chat(router, ep)
    assert primary.calls == 8


async def test_traffic_split_redistributes_over_healthy_primaries(router):
    sick = Scripted("sick", *[error(500)] * 50)
    ep = endpoint([sick, Scripted("a"), Scripted("b")], split=True, weights=[0.5, 0.25, 0.25],
                  breaker_threshold=2, retries=0)
    results = []
    for _ in range(200):
        try:
            results.append(served(await chat(router, ep)))
        except UpstreamError:
            results.append("failed")
    assert sick.calls == 2 and results.count("failed") == 2
    assert abs(results.count("a") - results.count("b")) < 40


async def test_when_every_circuit_is_open_the_least_recently_failed_is_tried(router, clock):
    primary, backup = Scripted("p", error(500)), Scripted("backup", error(500))
    ep = endpoint([primary], [backup], breaker_threshold=1, breaker_cooldown=60)
    with pytest.raises(UpstreamError):
        await chat(router, ep)  # p fails, then backup fails: both open, p failed first
    clock.now += 1
    outcome = await chat(router, ep)
    assert served(outcome) == "p" and len(outcome.attempts) == 1


# -- deadline ----------------------------------------------------------------------------------

async def test_no_attempt_starts_after_the_total_timeout(router, clock):
    p = Scripted("p", Slow(4, error(500)), clock=clock)
    f1 = Scripted("f1", Slow(7, error(502)), clock=clock)
    f2 = Scripted("f2")
    with pytest.raises(UpstreamError) as info:
        await chat(router, endpoint([p], [f1, f2], total_timeout=10))
    assert (p.calls, f1.calls, f2.calls) == (1, 1, 0)
    assert info.value.status == 502 and "All 2 attempts failed" in info.value.message


async def test_a_backoff_that_would_cross_the_deadline_moves_on(router, clock):
    model = Scripted("only", Slow(8, error(429, retry_after=3)), clock=clock)
    with pytest.raises(UpstreamError) as info:
        await chat(router, endpoint([model], total_timeout=10))
    assert model.calls == 1 and clock.sleeps == [] and info.value.status == 429


async def test_the_running_attempt_is_cut_at_the_deadline(router):
    primary, backup = Scripted("p", HANG), Scripted("backup")
    with pytest.raises(UpstreamError) as info:
        await chat(router, endpoint([primary], [backup], total_timeout=0.02))
    assert info.value.status == 504 and "total timeout (0.02 s)" in info.value.message
    assert backup.calls == 0


async def test_a_models_own_total_timeout_fails_only_that_attempt(router):
    primary = Scripted("p", HANG, auth_config={"timeout": {"connect": 5, "total": 0.01}})
    outcome = await chat(router, endpoint([primary], [Scripted("backup")], total_timeout=30))
    assert served(outcome) == "backup"
    assert outcome.attempts[0].status == 504 and "its total timeout (0.01 s)" in outcome.attempts[0].error


async def test_a_cut_attempt_is_not_retried(router):
    model = Scripted("only", HANG)
    with pytest.raises(UpstreamError) as info:
        await chat(router, endpoint([model], retries=2, total_timeout=0.02))
    assert info.value.status == 504 and model.calls == 1


# -- streams -----------------------------------------------------------------------------------

async def test_stream_falls_back_before_the_first_item(router):
    primary = Scripted("p", error(503))
    items, outcome = await stream(router, endpoint([primary], [Scripted("backup")]))
    assert items == ["a", "b", "c"] and served(outcome) == "backup" and len(outcome.attempts) == 2


async def test_stream_failing_on_its_first_item_falls_back_and_is_closed(router):
    primary = Scripted("p", [error(502)])
    items, outcome = await stream(router, endpoint([primary], [Scripted("backup")]))
    assert served(outcome) == "backup" and primary.closed == 1


async def test_empty_stream_falls_back(router):
    items, outcome = await stream(router, endpoint([Scripted("p", [])], [Scripted("backup")]))
    assert served(outcome) == "backup" and "empty stream" in outcome.attempts[0].error


async def test_stream_stall_before_the_first_item_falls_back(router):
    primary = Scripted("p", [HANG])
    items, outcome = await stream(router, endpoint([primary], [Scripted("backup")], stream_idle_timeout=0.01))
    assert served(outcome) == "backup" and outcome.attempts[0].status == 504 and primary.closed == 1


async def test_stream_stall_after_the_first_item_fails_the_stream(router):
    primary = Scripted("p", ["a", HANG])
    with pytest.raises(ProviderError) as info:
        await stream(router, endpoint([primary], [Scripted("backup")], stream_idle_timeout=0.01))
    assert info.value.status == 504 and info.value.error_type == "stream_idle_timeout"
    assert primary.closed == 1


async def test_streams_cut_midway_count_against_the_breaker(router):
    primary = Scripted("p", ["a", error(502)], ["a", error(502)])
    backup = Scripted("backup")
    ep = endpoint([primary], [backup], breaker_threshold=2)
    for _ in range(2):
        with pytest.raises(ProviderError):
            await stream(router, ep)
    items, outcome = await stream(router, ep)
    assert served(outcome) == "backup" and primary.calls == 2


async def test_a_complete_stream_closes_a_half_open_circuit(router, clock):
    primary = Scripted("p", error(500))
    ep = endpoint([primary], [Scripted("backup")], breaker_threshold=1, breaker_cooldown=5)
    await stream(router, ep)
    clock.now += 5
    first, rest, outcome = await router.open_stream(ep, lambda adapter, stats: adapter.chat_stream({}, stats))
    assert served(outcome) == "p"
    assert served(await chat(router, ep)) == "backup"  # the trial stream is still running
    assert [item async for item in rest] == ["b", "c"]
    await rest.aclose()
    assert served(await chat(router, ep)) == "p"


async def test_a_stream_its_consumer_finds_incomplete_counts_against_the_breaker(router):
    primary = Scripted("p")
    ep = endpoint([primary], [Scripted("backup")], breaker_threshold=1)
    first, rest, _ = await router.open_stream(ep, lambda adapter, stats: adapter.chat_stream({}, stats))
    assert [item async for item in rest] == ["b", "c"]
    rest.fail(ProviderError(502, "no terminator", retryable=True))
    await rest.aclose()
    assert served(await chat(router, ep)) == "backup" and primary.calls == 1


async def test_an_abandoned_trial_stream_lets_the_next_request_try(router, clock):
    primary = Scripted("p", error(500))
    ep = endpoint([primary], [Scripted("backup")], breaker_threshold=1, breaker_cooldown=5)
    await chat(router, ep)
    clock.now += 5
    first, rest, outcome = await router.open_stream(ep, lambda adapter, stats: adapter.chat_stream({}, stats))
    assert served(outcome) == "p"
    await rest.aclose()  # the client went away mid-stream: no verdict
    assert primary.closed == 1
    assert served(await chat(router, ep)) == "p"


def misconfigured(name: str) -> Scripted:
    adapter = Scripted(name)
    adapter.problem = f"its secret '{name}-key' cannot be decrypted: GATEWAY_KEK_PASSPHRASE is not set"
    return adapter


async def test_a_misconfigured_model_is_skipped_without_a_call_and_its_fallback_serves(router):
    broken, backup = misconfigured("broken"), Scripted("backup")
    for _ in range(10):
        outcome = await chat(router, endpoint([broken], [backup], breaker_threshold=2))
        assert served(outcome) == "backup" and len(outcome.attempts) == 1
    assert broken.calls == 0
    assert not router.breakers.is_open(broken.target.id)


async def test_when_every_model_is_misconfigured_the_answer_is_an_immediate_503_naming_the_cause(router):
    broken, other = misconfigured("broken"), misconfigured("other")
    with pytest.raises(UpstreamError) as info:
        await stream(router, endpoint([broken], [other]))
    assert info.value.status == 503 and info.value.error_type == "configuration_error"
    assert "'broken-key'" in info.value.message and "'other-key'" in info.value.message
    assert "GATEWAY_KEK_PASSPHRASE" in info.value.message
    assert broken.calls == other.calls == 0
