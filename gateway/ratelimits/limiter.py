"""Which rate limits cover a request, admitting it against them before the provider is called, and
settling its tokens when the usage is known.

Requests per minute and concurrency are checked at admission. Tokens per minute are charged at admission
with the request's estimate (input estimate plus its output cap, as budgets estimate, capped at the limit)
and corrected by the real usage when the request finishes, so a burst cannot slip far past the limit.
A request covered by no limit costs one dict lookup.
"""
from __future__ import annotations

import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from django.conf import settings

from gateway.budgets.policies import input_tokens_estimate, output_tokens_cap
from gateway.config.snapshot import RateLimitSpec, Snapshot, store
from gateway.errors import GatewayError, ServiceUnavailable
from gateway.ratelimits.durations import openai_duration
from gateway.ratelimits.types import Check, Denied, Granted

logger = logging.getLogger(__name__)
LOG_EVERY_SECONDS = 10.0
# After the store failed, requests apply the failure mode at once for this long instead of each waiting for
# a connection attempt (a black-holed Redis would cost every request the full socket timeout).
RETRY_STORE_AFTER_SECONDS = 1.0


class RateLimited(GatewayError):
    status = 429
    error_type = "rate_limit_exceeded"


class RateIndex:
    """One snapshot's limits by what they cover."""

    def __init__(self, snapshot: Snapshot | None) -> None:
        self.snapshot = snapshot
        limits = snapshot.rate_limits if snapshot is not None else ()
        self.empty = not limits
        self.global_ = tuple(limit for limit in limits if limit.scope == "global")
        groups: dict[tuple[str, str], list[RateLimitSpec]] = defaultdict(list)
        for limit in limits:
            if limit.scope != "global":
                groups[(limit.scope, limit.target)].append(limit)
        self.by: dict[tuple[str, str], tuple[RateLimitSpec, ...]] = {
            group: tuple(items) for group, items in groups.items()}

    def covering(self, endpoint: str, key: str) -> list[tuple[RateLimitSpec, str]]:
        """(limit, subject counted) pairs: "*" limits count each endpoint or key under its own name."""
        found = [(limit, "") for limit in self.global_]
        for scope, name in (("endpoint", endpoint), ("api_key", key)):
            found += [(limit, name) for limit in self.by.get((scope, name), ())]
            found += [(limit, name) for limit in self.by.get((scope, "*"), ())]
        return found


@dataclass
class Admission:
    checks: tuple[Check, ...]
    lease: str
    headers: dict[str, str]


def checks_for(covering: list[tuple[RateLimitSpec, str]], tokens: Callable[[], int]) -> list[Check]:
    checks = []
    for limit, subject in covering:
        base = f"{limit.id}:{limit.scope}:{subject}"
        if limit.requests_per_minute:
            checks.append(Check(base + ":r", "requests", limit.requests_per_minute, 1, limit.name, limit.scope, subject))
        if limit.tokens_per_minute:
            checks.append(Check(base + ":t", "tokens", limit.tokens_per_minute,
                                min(tokens(), limit.tokens_per_minute), limit.name, limit.scope, subject))
        if limit.max_concurrent:
            checks.append(Check(base + ":c", "concurrent", limit.max_concurrent, 1, limit.name, limit.scope, subject))
    return checks


def response_headers(checks: tuple[Check, ...], granted: Granted) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers from the tightest requests limit and the tightest tokens limit."""
    headers: dict[str, str] = {}
    for kind in ("requests", "tokens"):
        found = [(granted.remaining[i], -granted.reset_ms[i], check) for i, check in enumerate(checks)
                 if check.kind == kind]
        if not found:
            continue
        remaining, negative_reset, check = min(found, key=lambda item: (item[0], item[1]))
        headers[f"x-ratelimit-limit-{kind}"] = str(check.limit)
        headers[f"x-ratelimit-remaining-{kind}"] = str(max(remaining, 0))
        headers[f"x-ratelimit-reset-{kind}"] = openai_duration(-negative_reset)
    return headers


def refusal(check: Check, retry_ms: float) -> RateLimited:
    wait = max(1, math.ceil(retry_ms / 1000))
    covered = "all requests" if check.scope == "global" else f"{check.scope.replace('_', ' ')} '{check.subject}'"
    if check.kind == "concurrent":
        allows = f"{check.limit} concurrent requests"
    else:
        allows = f"{check.limit} {check.kind} per minute"
    message = (f"Rate limit '{check.name}' ({covered}) allows {allows}; this request is over it. "
               f"Try again in {openai_duration(retry_ms) if check.kind != 'concurrent' else 'a moment'}.")
    return RateLimited(message, code="rate_limit_exceeded", headers={"Retry-After": str(wait)})


class Limiter:
    """The process's rate limiting. `store` and `snapshot` are injectable for tests."""

    def __init__(self, store_=None, snapshot: Callable[[], Snapshot | None] = lambda: store.current) -> None:
        self._store = store_
        self._snapshot = snapshot
        self._index = RateIndex(None)
        self._failures = 0
        self._down_until = 0.0
        self._logged_at = -LOG_EVERY_SECONDS

    @property
    def store(self):
        if self._store is None:
            self._store = store_from_settings()
        return self._store

    def index(self) -> RateIndex:
        snapshot = self._snapshot()
        if self._index.snapshot is not snapshot:
            self._index = RateIndex(snapshot)
        return self._index

    async def admit(self, ctx, api: str, body: dict) -> None:
        """Admit the request against every limit covering it (sets `ctx.rate_limit`), or raise RateLimited
        naming the first limit it is over."""
        index = self.index()
        if index.empty:
            return
        covering = index.covering(ctx.endpoint.name, ctx.key.name)
        if not covering:
            return
        held = 0

        def tokens() -> int:
            nonlocal held
            if not held:
                held = input_tokens_estimate(body) + output_tokens_cap(api, body)
            return held

        checks = tuple(checks_for(covering, tokens))
        try:
            if time.monotonic() < self._down_until:
                raise ConnectionError("the rate-limit store failed less than a second ago")
            answer = await self.store.acquire(checks, ctx.request_id)
        except Exception:  # noqa: BLE001 - the configured failure mode decides, below
            self._failed()
            if settings.GATEWAY_RATE_LIMIT_FAILURE == "closed":
                raise ServiceUnavailable("The rate-limit store is unavailable; try again shortly.",
                                         code="rate_limit_store_unavailable") from None
            return
        if isinstance(answer, Denied):
            raise refusal(checks[answer.index], answer.retry_ms)
        ctx.rate_limit = Admission(checks, ctx.request_id, response_headers(checks, answer))

    @property
    def failures(self) -> int:
        """Admissions that found the store unreachable, plus settlements that could not be sent."""
        return self._failures + getattr(self._store, "failures", 0)

    def _failed(self) -> None:
        self._failures += 1
        now = time.monotonic()
        if now >= self._down_until:
            self._down_until = now + RETRY_STORE_AFTER_SECONDS
        if now - self._logged_at >= LOG_EVERY_SECONDS:
            self._logged_at = now
            logger.error("rate-limit store unreachable (%d failures so far); GATEWAY_RATE_LIMIT_FAILURE=%s",
                         self.failures, settings.GATEWAY_RATE_LIMIT_FAILURE, exc_info=True)

    def settle(self, admission: Admission | None, used_tokens: int) -> None:
        """Release concurrency and charge each tokens limit the real tokens instead of what it held (the Redis
        store sends this with its next round trip)."""
        if admission is None:
            return
        self.store.settle(admission.checks, admission.lease, used_tokens)

    async def drain(self) -> None:
        """Give back unused allowances and send settlements still queued (graceful shutdown)."""
        if self._store is not None:
            await self._store.flush()


def store_from_settings():
    """Redis when REDIS_URL is set (shared by every process, with per-process allowances for large limits),
    else this process's memory."""
    if settings.REDIS_URL:
        from gateway.ratelimits.allowance import AllowanceStore
        from gateway.ratelimits.redis import RedisStore

        return AllowanceStore(RedisStore(settings.REDIS_URL))
    from gateway.ratelimits.memory import MemoryStore

    return MemoryStore()


limiter = Limiter()
