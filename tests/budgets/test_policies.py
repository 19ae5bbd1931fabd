"""Budgets: the worst-case estimate, which policies cover a request,
and reserve / settle / release through the Budgets manager (with an injected clock and an in-memory
backend; the backends themselves are tested in test_backends.py, the windows in test_windows.py)."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

import pytest

from gateway.budgets import policies as budgets
from gateway.budgets.memory import MemoryBackend
from gateway.errors import BudgetExceeded, ServiceUnavailable
from gateway.config.snapshot import BudgetSpec, ClientKey, EndpointConfig, Link, Snapshot
from providers.base import ModelTarget, Prices, ProviderAdapter
from providers.wire import Api

pytestmark = [pytest.mark.database, pytest.mark.clock]


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc)


def test_the_estimate_counts_text_and_the_output_cap():
    body = {"messages": [{"role": "user", "content": "x" * 44}], "max_tokens": 7}
    assert budgets.input_tokens_estimate(body) == 11
    assert budgets.output_tokens_cap("openai-chat", body) == 7
    assert budgets.output_tokens_cap("openai-chat", {"max_completion_tokens": 5, "max_tokens": 9, "n": 3}) == 15
    assert budgets.output_tokens_cap("openai-responses", {"max_output_tokens": 12}) == 12
    assert budgets.output_tokens_cap("anthropic-messages", {"max_tokens": 30}) == 30
    assert budgets.output_tokens_cap("gemini-generate",
                                     {"generationConfig": {"maxOutputTokens": 8, "candidateCount": 2}}) == 16
    assert budgets.output_tokens_cap("openai-embeddings", {"input": "x"}) == 0


def test_without_a_cap_the_default_output_cap_applies(settings):
    settings.GATEWAY_BUDGET_DEFAULT_OUTPUT_TOKENS = 123
    assert budgets.output_tokens_cap("openai-chat", {"messages": []}) == 123
    assert budgets.output_tokens_cap("openai-chat", {"max_tokens": True}) == 123


def test_attachments_count_a_fixed_guess_not_their_bytes():
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64," + "A" * 100_000}}
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "abcd"}, image]}]}
    assert budgets.input_tokens_estimate(body) == 1 + budgets.ATTACHMENT_TOKENS


def test_non_ascii_text_counts_its_utf8_bytes():
    assert budgets.input_tokens_estimate({"content": "日本語"}) == 3  # 9 bytes


# --- The manager, on an in-memory backend ----------------------------------------------------------------

PRICES = Prices(Decimal("100"), Decimal("1000"))  # $0.0001 per input token, $0.001 per output token


def endpoint(name: str = "chat", prices: Prices = PRICES) -> EndpointConfig:
    adapter = ProviderAdapter(ModelTarget(id=1, name="m", provider="fake", model_name="m", prices=prices))
    return EndpointConfig(id=1, name=name, routing_strategy="", primaries=(Link(adapter, 1.0, 0),), fallbacks=())


def policy(pid: int, scope: str = "endpoint", target: str = "chat", amount: str = "0.01", action: str = "reject",
           unit: str = "hours", value: int = 1) -> BudgetSpec:
    return BudgetSpec(pid, f"policy-{pid}", scope, target, Decimal(amount), unit, value, action, "")


@dataclass
class Ctx:
    endpoint: EndpointConfig = field(default_factory=endpoint)
    key: ClientKey = field(default_factory=lambda: ClientKey(1, "team-a", None))
    request_id: str = "r1"
    api: str = ""
    body: dict | None = None
    reservation: budgets.Reservation | None = None


class Alerts:
    def __init__(self) -> None:
        self.fired: list[tuple[str, str]] = []

    def fire(self, claim, spent, reason) -> None:
        self.fired.append((claim.policy.name, reason))

    async def drain(self, timeout) -> None:
        pass


class Clock:
    def __init__(self, moment: str) -> None:
        self.now = at(moment)

    def __call__(self) -> datetime:
        return self.now


def manager(*specs: BudgetSpec, clock: Clock | None = None, backend=None):
    snapshot = Snapshot(version=1, budgets=specs)

    async def no_spend(claim):
        return 0

    alerts = Alerts()
    made = budgets.Budgets(backend=backend or MemoryBackend(seed=no_spend), clock=clock or Clock("2026-11-27 15:00:00"),
                           alerts=alerts, snapshot=lambda: snapshot)
    return made, alerts


# One request: 4 input tokens ($0.0004) + 6 output tokens ($0.006) = $0.0064 worst case.
BODY = {"messages": [{"role": "user", "content": "y" * 16}], "max_tokens": 6}


async def settle_now(made: budgets.Budgets, ctx: Ctx, cost: Decimal | None) -> None:
    made.settle(ctx.reservation, cost)
    await made.drain()


async def test_a_request_no_policy_covers_never_touches_the_backend():
    class Exploding:
        async def reserve(self, *args):
            raise AssertionError("the backend was called")

    made, _ = manager(policy(1, target="other-endpoint"), backend=Exploding())
    ctx = Ctx()
    await made.reserve(ctx, "openai-chat", BODY)
    assert ctx.reservation is None and ctx.body is BODY
    empty, _ = manager(backend=Exploding())
    await empty.reserve(Ctx(), "openai-chat", BODY)


async def test_reserve_refuses_what_would_overspend_and_names_the_policy():
    made, alerts = manager(policy(1, amount="0.01"))
    first = Ctx(request_id="a")
    await made.reserve(first, "openai-chat", BODY)
    assert first.reservation.estimate == budgets.Estimate(4, 6, 6_400_000)
    with pytest.raises(BudgetExceeded) as refused:
        await made.reserve(Ctx(request_id="b"), "openai-chat", BODY)
    error = refused.value
    assert error.status == 429 and error.headers == {"Retry-After": "3600"}
    assert "Budget 'policy-1' (endpoint 'chat') allows $0.01 per 1 hours" in error.message
    assert "$0.0064 is already spent or reserved" in error.message
    assert "resets at 2026-11-27T16:00:00Z (in 3600 s)" in error.message
    assert alerts.fired == [("policy-1", "request_rejected")]


async def test_settling_replaces_the_hold_by_the_actual_cost():
    made, alerts = manager(policy(1, amount="0.01"))
    first = Ctx(request_id="a")
    await made.reserve(first, "openai-chat", BODY)
    await settle_now(made, first, Decimal("0.001"))
    counter = next(iter(made.backend.counters.values()))
    assert (counter.spent, counter.reserved) == (1_000_000, 0)
    second = Ctx(request_id="b")
    await made.reserve(second, "openai-chat", BODY)  # 0.001 + 0.0064 <= 0.01
    await settle_now(made, second, None)  # failed upstream: released, nothing spent
    assert (counter.spent, counter.reserved) == (1_000_000, 0)
    assert alerts.fired == []


async def test_every_covering_policy_must_have_room():
    made, _ = manager(policy(1, scope="global", target="", amount="1"), policy(2, amount="1"),
                      policy(3, scope="api_key", target="team-a", amount="0.005"))
    with pytest.raises(BudgetExceeded, match="policy-3"):
        await made.reserve(Ctx(), "openai-chat", BODY)


async def test_alert_policies_never_refuse_but_fire_once_the_limit_is_reached():
    made, alerts = manager(policy(1, amount="0.002", action="alert"))
    for request_id in ("a", "b"):
        ctx = Ctx(request_id=request_id)
        await made.reserve(ctx, "openai-chat", BODY)
        await settle_now(made, ctx, Decimal("0.0015"))
    assert alerts.fired == [("policy-1", "limit_reached")]


async def test_a_spent_window_refuses_even_a_request_of_unknown_cost():
    made, _ = manager(policy(1, amount="0.001"))
    ctx = Ctx(endpoint=endpoint(prices=Prices()))
    await made.reserve(ctx, "openai-chat", BODY)
    assert ctx.reservation.estimate.nanos == 1
    await settle_now(made, ctx, Decimal("0.001"))
    with pytest.raises(BudgetExceeded):
        await made.reserve(Ctx(endpoint=endpoint(prices=Prices()), request_id="b"), "openai-chat", BODY)


async def test_the_next_window_starts_empty():
    clock = Clock("2026-11-27 15:59:00")
    made, _ = manager(policy(1, amount="0.01"), clock=clock)
    ctx = Ctx(request_id="a")
    await made.reserve(ctx, "openai-chat", BODY)
    await settle_now(made, ctx, Decimal("0.009"))
    with pytest.raises(BudgetExceeded) as refused:
        await made.reserve(Ctx(request_id="b"), "openai-chat", BODY)
    assert refused.value.headers == {"Retry-After": "60"}
    clock.now = at("2026-11-27 16:00:00")
    await made.reserve(Ctx(request_id="c"), "openai-chat", BODY)


async def test_concurrent_requests_never_overspend():
    made, _ = manager(policy(1, amount="0.064"))  # exactly ten worst-case requests

    async def one(index: int) -> bool:
        ctx = Ctx(request_id=f"r{index}")
        try:
            await made.reserve(ctx, "openai-chat", BODY)
        except BudgetExceeded:
            return False
        await asyncio.sleep(0)
        made.settle(ctx.reservation, Decimal("0.0064"))
        return True

    results = await asyncio.gather(*(one(i) for i in range(40)))
    await made.drain()
    assert sum(results) == 10
    assert next(iter(made.backend.counters.values())).spent == 64_000_000


async def test_a_broken_backend_refuses_rather_than_overspends():
    class Broken:
        async def reserve(self, *args):
            raise ConnectionError("down")

    made, _ = manager(policy(1), backend=Broken())
    with pytest.raises(ServiceUnavailable):
        await made.reserve(Ctx(), "openai-chat", BODY)


class Hanging:
    """A store that never answers (a stuck database lock, a Redis that stopped replying)."""

    async def reserve(self, *args):
        await asyncio.Event().wait()


async def test_a_store_that_does_not_answer_refuses_a_reject_budget_after_the_deadline(settings):
    settings.GATEWAY_BUDGET_TIMEOUT_SECONDS = 0.05
    made, _ = manager(policy(1), backend=Hanging())
    with pytest.raises(ServiceUnavailable, match="did not answer within 0.05 s") as refused:
        await made.reserve(Ctx(), "openai-chat", BODY)
    assert refused.value.status == 503


async def test_a_store_that_does_not_answer_still_admits_under_an_alert_only_budget(settings):
    settings.GATEWAY_BUDGET_TIMEOUT_SECONDS = 0.05
    made, _ = manager(policy(1, action="alert"), backend=Hanging())
    ctx = Ctx()
    await made.reserve(ctx, "openai-chat", BODY)
    assert ctx.reservation is not None


async def test_a_cost_above_the_estimate_is_settled_before_the_response_ends():
    made, _ = manager(policy(1, amount="0.1"))
    ctx = Ctx()
    await made.reserve(ctx, "openai-chat", BODY)
    made.settle(ctx.reservation, Decimal("0.009"))  # more than the $0.0064 held
    await made.settled(ctx.reservation)
    assert next(iter(made.backend.counters.values())).spent == 9_000_000
    within = Ctx(request_id="r2")
    await made.reserve(within, "openai-chat", BODY)
    made.settle(within.reservation, Decimal("0.001"))
    assert within.reservation.settling is None  # within its hold, already counted by every process


async def test_free_apis_reserve_nothing():
    made, _ = manager(policy(1, amount="0"))
    ctx = Ctx()
    await made.reserve(ctx, "anthropic-count-tokens", {"messages": []})
    assert ctx.reservation is None


def test_the_policy_index_follows_the_snapshot():
    current = Snapshot(version=1, budgets=(policy(1),))
    made = budgets.Budgets(backend=MemoryBackend(), snapshot=lambda: current)
    assert [p.id for p in made.index().covering("chat", "k")] == [1]
    current = Snapshot(version=2, budgets=(policy(2, scope="global", target=""),))
    assert [p.id for p in made.index().covering("chat", "k")] == [2]


def test_an_estimate_saturates_instead_of_overflowing_the_counters():
    worst = budgets.estimate(Api.OPENAI_CHAT, {"max_tokens": 2**80, "n": 2**70}, (Decimal(1000), Decimal(1000)))
    assert worst.nanos == budgets.MAX_NANOS < 2**63
