"""Budgets: which policies cover a request, their fixed windows, the request's worst-case cost, and the
reserve-then-settle protocol that keeps concurrent requests, in any number of processes, from spending past
a `reject` limit. Windows and claims are in gateway/budgets/windows.py; the counters behind them in
gateway/budgets/backends.py.

Protocol: before the provider is called, the request's worst-case cost is reserved against every policy
covering it, and admitted only if every `reject` policy still has room (spent + reserved + estimate <=
limit). When usage is known, the reservation is replaced by the actual cost (a failed request settles 0).
A request covered by no policy costs one dict lookup: no estimate, no database or Redis round trip.
"""
from __future__ import annotations

import asyncio
import logging
import math
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from django.conf import settings

from gateway.budgets.alerts import AlertSender
from gateway.budgets.backends import backend_from_settings
from gateway.budgets.windows import Claim, claim_for, recorded_spend, to_nanos, to_usd, utcnow
from gateway.observability import metrics
from gateway.config.snapshot import BudgetSpec, EndpointConfig, Snapshot, store
from gateway.errors import BudgetExceeded, ServiceUnavailable
from providers.wire import Api

logger = logging.getLogger(__name__)

# A picture, audio clip or file costs tokens we cannot count from its bytes; this is a generous guess.
ATTACHMENT_TOKENS = 1_000
ATTACHMENT_KEYS = frozenset({"data", "url", "image_url", "file_data", "file_url", "fileUri", "file_uri"})
UNCOUNTED_KEYS = frozenset({"model", "role", "type", "id", "tool_call_id", "mime_type", "mimeType", "media_type",
                            "detail", "format", "encoding_format"})
FREE_APIS = frozenset({Api.ANTHROPIC_COUNT_TOKENS})


# --- Worst-case cost ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    input_tokens: int
    output_tokens: int
    nanos: int


def _text_size(body: object) -> tuple[int, int]:
    """UTF-8 bytes of the request's text values, and how many attachments (images, files) it carries."""
    size = attachments = 0
    stack = [body]
    while stack:
        value = stack.pop()
        if isinstance(value, str):
            size += len(value.encode())
        elif isinstance(value, dict):
            for key, item in value.items():
                if key in ATTACHMENT_KEYS and isinstance(item, str):
                    attachments += 1
                elif key not in UNCOUNTED_KEYS:
                    stack.append(item)
        elif isinstance(value, list):
            stack.extend(value)
    return size, attachments


def input_tokens_estimate(body: object) -> int:
    """About four bytes of UTF-8 text per token (exact for no tokenizer, close for English and code)."""
    size, attachments = _text_size(body)
    return math.ceil(size / 4) + attachments * ATTACHMENT_TOKENS


def _positive_int(value) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def output_tokens_cap(api: str, body: dict) -> int:
    """The most output tokens the request allows, from its own limit or GATEWAY_BUDGET_DEFAULT_OUTPUT_TOKENS."""
    if api in (Api.OPENAI_EMBEDDINGS, Api.PROXY) or api in FREE_APIS:
        return 0
    choices = 1
    if api == Api.OPENAI_CHAT:
        cap = _positive_int(body.get("max_completion_tokens")) or _positive_int(body.get("max_tokens"))
        choices = _positive_int(body.get("n")) or 1
    elif api == Api.OPENAI_RESPONSES:
        cap = _positive_int(body.get("max_output_tokens"))
    elif api == Api.OPENAI_REALTIME:  # a `response.create` event
        response = body.get("response") if isinstance(body.get("response"), dict) else {}
        cap = _positive_int(response.get("max_output_tokens"))
    elif api in (Api.GEMINI_GENERATE, Api.GEMINI_STREAM):
        config = body.get("generationConfig") or body.get("generation_config") or {}
        config = config if isinstance(config, dict) else {}
        cap = _positive_int(config.get("maxOutputTokens")) or _positive_int(config.get("max_output_tokens"))
        choices = _positive_int(config.get("candidateCount")) or 1
    else:
        cap = _positive_int(body.get("max_tokens"))
    return (cap or settings.GATEWAY_BUDGET_DEFAULT_OUTPUT_TOKENS) * choices


def worst_prices(endpoint: EndpointConfig) -> tuple[Decimal, Decimal]:
    """The highest input and output prices among the endpoint's models: routing may pick any of them.
    Models with no known price are not counted (their cost is recorded as unknown)."""
    targets = [link.target for link in endpoint.primaries + endpoint.fallbacks]
    inputs = [t.prices.input for t in targets if t.prices.input is not None]
    outputs = [t.prices.output for t in targets if t.prices.output is not None]
    return max(inputs, default=Decimal(0)), max(outputs, default=Decimal(0))


MAX_NANOS = 2**62


def estimate(api: str, body: dict, prices: tuple[Decimal, Decimal]) -> Estimate:
    input_tokens, output_tokens = input_tokens_estimate(body), output_tokens_cap(api, body)
    cost = (input_tokens * prices[0] + output_tokens * prices[1]) / 1_000_000
    # Saturates below the signed 64-bit counters (SQL BIGINT, Redis) with room for spend and other holds to
    # be added to it; an estimate that large already exceeds every budget.
    return Estimate(input_tokens, output_tokens, min(to_nanos(cost), MAX_NANOS))


# --- Which policies cover a request ---------------------------------------------------------------------


class PolicyIndex:
    """One snapshot's policies by what they cover, and its endpoints' worst-case prices."""

    def __init__(self, snapshot: Snapshot | None) -> None:
        self.snapshot = snapshot
        budgets = snapshot.budgets if snapshot is not None else ()
        self.empty = not budgets
        self.global_ = tuple(b for b in budgets if b.scope == "global")
        self.by_endpoint: dict[str, tuple[BudgetSpec, ...]] = self._group(budgets, "endpoint")
        self.by_key: dict[str, tuple[BudgetSpec, ...]] = self._group(budgets, "api_key")
        self._prices: dict[str, tuple[Decimal, Decimal]] = {}

    @staticmethod
    def _group(budgets: tuple[BudgetSpec, ...], scope: str) -> dict[str, tuple[BudgetSpec, ...]]:
        groups: dict[str, list[BudgetSpec]] = defaultdict(list)
        for budget in budgets:
            if budget.scope == scope:
                groups[budget.target].append(budget)
        return {target: tuple(items) for target, items in groups.items()}

    def covering(self, endpoint: str, key: str) -> tuple[BudgetSpec, ...]:
        return self.global_ + self.by_endpoint.get(endpoint, ()) + self.by_key.get(key, ())

    def prices(self, endpoint: EndpointConfig) -> tuple[Decimal, Decimal]:
        found = self._prices.get(endpoint.name)
        if found is None:
            found = self._prices[endpoint.name] = worst_prices(endpoint)
        return found


# --- Reserve and settle ---------------------------------------------------------------------------------


@dataclass
class Reservation:
    claims: tuple[Claim, ...]
    lease: str
    estimate: Estimate
    # The settlement of a cost above the estimate, which the response waits for (see Budgets.settled).
    settling: asyncio.Task | None = None


def refusal_error(claim: Claim, spent: int, reserved: int, needed: int, now: datetime) -> BudgetExceeded:
    policy, window = claim.policy, claim.window
    wait = max(1, math.ceil((window.end - now).total_seconds()))
    scope = "all requests" if policy.scope == "global" else f"{policy.scope.replace('_', ' ')} '{policy.target}'"
    message = (
        f"Budget '{policy.name}' ({scope}) allows ${to_usd(claim.amount):f} per {policy.window_value} "
        f"{policy.window_unit}; ${to_usd(spent + reserved):f} is already spent or reserved in the window "
        f"{window.describe()}, and this request may cost up to ${to_usd(needed):f}. "
        f"The window resets at {window.end:%Y-%m-%dT%H:%M:%SZ} (in {wait} s)."
    )
    return BudgetExceeded(message, code="budget_exceeded", headers={"Retry-After": str(wait)})


class Budgets:
    """The process's budget enforcement. `backend`, `clock` and `alerts` are injectable for tests."""

    def __init__(self, backend=None, clock: Callable[[], datetime] = utcnow, alerts=None,
                 snapshot: Callable[[], Snapshot | None] = lambda: store.current) -> None:
        self._backend = backend
        self.clock = clock
        self._alerts = alerts
        self._snapshot = snapshot
        self._index = PolicyIndex(None)
        self._pending: set[asyncio.Task] = set()

    @property
    def backend(self):
        if self._backend is None:
            self._backend = backend_from_settings()
        return self._backend

    @property
    def alerts(self):
        if self._alerts is None:
            self._alerts = AlertSender(counted=lambda claim: self.backend.current(claim))
        return self._alerts

    def index(self) -> PolicyIndex:
        snapshot = self._snapshot()
        if self._index.snapshot is not snapshot:
            self._index = PolicyIndex(snapshot)
        return self._index

    async def reserve(self, ctx, api: str, body: dict) -> None:
        """Hold the request's worst-case cost against every policy covering it (sets `ctx.reservation`),
        or raise BudgetExceeded naming the first `reject` policy without room."""
        ctx.api, ctx.body = api, body
        index = self.index()
        if index.empty or api in FREE_APIS:
            return
        policies = index.covering(ctx.endpoint.name, ctx.key.name)
        if not policies:
            return
        now = self.clock()
        claims = tuple(claim_for(policy, now) for policy in policies)
        worst = estimate(api, body, index.prices(ctx.endpoint))
        needed = max(worst.nanos, 1)  # a request of unknown cost still needs a window that is not exhausted
        reservation = Reservation(claims, ctx.request_id, Estimate(worst.input_tokens, worst.output_tokens, needed))
        if all(claim.limit is None for claim in claims):
            ctx.reservation = reservation  # alert-only: nothing to hold, only spend to count at settlement
            return
        try:
            async with asyncio.timeout(settings.GATEWAY_BUDGET_TIMEOUT_SECONDS):
                refusal = await self.backend.reserve(claims, needed, ctx.request_id, now)
        except TimeoutError:
            logger.warning("budget reservation for request %s timed out after %ss", ctx.request_id,
                           settings.GATEWAY_BUDGET_TIMEOUT_SECONDS)
            raise ServiceUnavailable(
                f"The budget store did not answer within {settings.GATEWAY_BUDGET_TIMEOUT_SECONDS:g} s, and a "
                f"budget that refuses overspending covers this request; try again shortly.",
                code="budget_store_unavailable") from None
        except Exception:  # noqa: BLE001 - without the counters a reject limit cannot be enforced: refuse
            logger.exception("budget reservation failed for request %s", ctx.request_id)
            raise ServiceUnavailable("The budget store is unavailable; try again shortly.",
                                     code="budget_store_unavailable") from None
        if refusal is not None:
            self.alerts.fire(refusal.claim, refusal.spent + refusal.reserved, "request_rejected")
            raise refusal_error(refusal.claim, refusal.spent, refusal.reserved, needed, now)
        ctx.reservation = reservation

    def settle(self, reservation: Reservation | None, cost: Decimal | None) -> None:
        """Replace the reservation by the actual cost (None or 0 releases it), off the request path."""
        if reservation is None:
            return
        nanos = to_nanos(cost)
        task = asyncio.get_running_loop().create_task(self._settle(reservation, nanos))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)
        if nanos > reservation.estimate.nanos and any(claim.limit is not None for claim in reservation.claims):
            reservation.settling = task

    async def settled(self, reservation: Reservation | None) -> None:
        """Wait (at most GATEWAY_BUDGET_TIMEOUT_SECONDS) until a cost above the request's estimate is in the
        shared counters. A cost within the estimate needs no wait: every process already counts the hold."""
        task = reservation.settling if reservation is not None else None
        if task is None or task.done():
            return
        try:
            async with asyncio.timeout(settings.GATEWAY_BUDGET_TIMEOUT_SECONDS):
                await asyncio.shield(task)
        except TimeoutError:
            logger.warning("settling request %s's budget took longer than %ss; answering anyway",
                           reservation.lease, settings.GATEWAY_BUDGET_TIMEOUT_SECONDS)

    async def _settle(self, reservation: Reservation, nanos: int, attempts: int = 5) -> None:
        for attempt in range(attempts):
            try:
                spent = await self.backend.settle(reservation.claims, reservation.lease, reservation.estimate.nanos,
                                                  nanos)
                break
            except Exception:  # noqa: BLE001 - retried; the reservation expires on its own if all attempts fail
                logger.exception("settling budget reservation %s failed (attempt %d)", reservation.lease, attempt + 1)
                await asyncio.sleep(min(0.2 * 2**attempt, 2))
        else:
            return
        for claim, total in zip(reservation.claims, spent):
            if claim.amount:
                metrics.child(metrics.budget_spend_ratio, claim.policy.name).set(total / claim.amount)
            if total >= claim.amount:
                self.alerts.fire(claim, total, "limit_reached")

    async def drain(self, timeout: float = 10.0) -> None:
        """Wait for settlements and alerts still running (graceful shutdown)."""
        if self._pending:
            await asyncio.wait(list(self._pending), timeout=timeout)
        drain = getattr(self._backend, "drain", None)
        if drain is not None:
            await asyncio.wait_for(drain(), timeout)
        if self._alerts is not None:
            await self._alerts.drain(timeout)

    def status(self, policy: BudgetSpec) -> dict:
        """The policy's current window and spend, for the dashboard and the usage API (sync)."""
        claim = claim_for(policy, self.clock())
        counted = self.backend.current(claim)
        if counted is None:
            counted = (recorded_spend(claim), 0)
        spent, reserved = counted
        return {
            "id": policy.id, "name": policy.name, "scope": policy.scope, "target": policy.target,
            "action": policy.action, "amount_usd": str(policy.amount_usd),
            "window": {"unit": policy.window_unit, "value": policy.window_value,
                       "start": claim.window.start.isoformat(), "end": claim.window.end.isoformat()},
            "spent_usd": str(to_usd(spent)), "reserved_usd": str(to_usd(reserved)),
            "fraction": float(spent / claim.amount) if claim.amount else (1.0 if spent else 0.0),
        }


manager = Budgets()


async def reserve(ctx, api: str, body: dict) -> None:
    await manager.reserve(ctx, api, body)


def settle(ctx, cost: Decimal | None) -> None:
    manager.settle(getattr(ctx, "reservation", None), cost)


async def settled(ctx) -> None:
    await manager.settled(getattr(ctx, "reservation", None))
