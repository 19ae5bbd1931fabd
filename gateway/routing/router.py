"""Choosing which model serves a request, and what to do when it fails.

Attempt order: one primary (the first, or a weighted pick with `traffic_split`), then the endpoint's
fallbacks in order, at most `fallback_max_attempts` of them. Each model gets `retries` extra attempts for
429/5xx after a backoff (gateway/routing/retry.py). Only retryable failures (connection errors, timeouts, 408, 429,
5xx) move on; a client error is returned at once, never retried and never masked. The endpoint's total
timeout bounds the whole sequence: no attempt starts after it and the running one is cut (504). Models
whose circuit is open (gateway/routing/breaker.py) are skipped, and so are models the configuration makes
unusable (an undecryptable secret, a forbidden provider): those are never called, retried or counted by a
breaker. Streams can move on only until their first item has been produced; after that
gateway/routing/watchdog.py watches for stalls and reports how the stream ended.
"""
from __future__ import annotations

import asyncio
import math
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.routing.breaker import CircuitBreakers
from gateway.errors import UpstreamError
from gateway.observability import tracing
from gateway.routing.retry import Backoff, retries_same_model
from gateway.config.snapshot import EndpointConfig, Link
from gateway.routing.watchdog import StallWatchdog
from providers.base import CallStats, ProviderAdapter, ProviderError

T = TypeVar("T")

DEFAULT_BREAKER_THRESHOLD = 5
DEFAULT_BREAKER_COOLDOWN = 30.0
# Long enough for a model that thinks before its first token, short enough that a dead stream does not
# hold the client for the provider's whole read timeout (300 s).
DEFAULT_STREAM_IDLE_TIMEOUT = 120.0


@dataclass
class Attempt:
    model: str
    error: str = ""
    status: int | None = None
    provider: str = ""


@dataclass
class Outcome(Generic[T]):
    """What routing did: the value, the link that produced it, every attempt, the time spent upstream."""

    value: T | None = None
    link: Link | None = None
    attempts: list[Attempt] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)


@dataclass(frozen=True)
class Policy:
    """An endpoint's resilience settings with the defaults filled in."""

    retries: int
    total_timeout: float | None
    idle_timeout: float
    threshold: int
    cooldown: float
    max_fallbacks: int | None

    @classmethod
    def of(cls, endpoint: EndpointConfig) -> Policy:
        def given(value, default):
            return default if value is None else value

        has_fallbacks = bool(endpoint.fallbacks) and endpoint.fallback_max_attempts != 0
        return cls(
            retries=given(endpoint.retries, 0 if has_fallbacks else 1),
            total_timeout=endpoint.total_timeout,
            idle_timeout=given(endpoint.stream_idle_timeout, DEFAULT_STREAM_IDLE_TIMEOUT),
            threshold=given(endpoint.breaker_threshold, DEFAULT_BREAKER_THRESHOLD),
            cooldown=given(endpoint.breaker_cooldown, DEFAULT_BREAKER_COOLDOWN),
            max_fallbacks=endpoint.fallback_max_attempts,
        )


@dataclass
class _Run:
    """One request's routing state."""

    policy: Policy
    deadline: float | None
    outcome: Outcome
    last: ProviderError | None = None
    timed_out: bool = False


def attempt_timeout(link: Link) -> float | None:
    """The `total` of the secret's `auth_config.timeout` ({connect, read, total}): a bound on one attempt
    (for streams: until the first chunk), where connect and read timeouts only bound each network wait."""
    conf = link.target.auth_config.get("timeout")
    total = conf.get("total") if isinstance(conf, Mapping) else None
    return float(total) if total else None


def pick_weighted(links: tuple[Link, ...], rand: Callable[[], float]) -> Link:
    """Probability proportional to weight; weights need not sum to 1."""
    total = sum(link.weight for link in links)
    point = rand() * total
    for link in links:
        point -= link.weight
        if point < 0:
            return link
    return links[-1]


class Router:
    """`rand` (traffic split and jitter), `clock` (monotonic seconds), `sleep` (backoff waits) and the
    circuit breakers are injectable so tests control chance and time."""

    def __init__(self, rand: Callable[[], float] = random.random, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 breakers: CircuitBreakers | None = None, backoff: Backoff = Backoff()) -> None:
        self.rand = rand
        self.clock = clock
        self.sleep = sleep
        self.breakers = breakers if breakers is not None else CircuitBreakers(clock)
        self.backoff = backoff

    def candidates(self, endpoint: EndpointConfig, policy: Policy) -> Iterator[tuple[Link, bool]]:
        """The models to try, in order, each with whether it is its circuit's half-open trial. Lazy: a model
        is claimed from its breaker only when its turn comes.

        Models with an open circuit are skipped and do not use up `fallback_max_attempts`; the traffic split
        redistributes over the primaries still available. If every candidate's circuit is open, the one
        that failed least recently is tried anyway: answering from a possibly recovered model beats
        refusing without trying. Models the configuration makes unusable are never candidates."""
        if not endpoint.primaries:
            return
        fallbacks = tuple(link for link in endpoint.fallbacks if link.adapter.problem is None)
        healthy = tuple(link for link in endpoint.primaries if link.adapter.problem is None
                        and self.breakers.available(link.target.id, policy.cooldown))
        tried = 0
        if healthy:
            first = pick_weighted(healthy, self.rand) if endpoint.traffic_split else healthy[0]
            tried += 1
            yield first, bool(self.breakers.claim(first.target.id, policy.cooldown))
        taken = 0
        for link in fallbacks:
            if policy.max_fallbacks is not None and taken >= policy.max_fallbacks:
                break
            trial = self.breakers.claim(link.target.id, policy.cooldown)
            if trial is not None:
                taken += 1
                tried += 1
                yield link, trial
        if tried:
            return
        pool = tuple(link for link in endpoint.primaries if link.adapter.problem is None)
        pool += fallbacks[: policy.max_fallbacks]
        if pool:
            model_id = self.breakers.least_recently_failed(link.target.id for link in pool)
            yield next(link for link in pool if link.target.id == model_id), False

    async def call(self, endpoint: EndpointConfig,
                   operation: Callable[[ProviderAdapter, CallStats], Awaitable[T]],
                   outcome: Outcome[T] | None = None) -> Outcome[T]:
        outcome = outcome or Outcome()

        async def attempt(link: Link, run: _Run, trial: bool) -> T:
            value = await operation(link.adapter, outcome.stats)
            self.breakers.succeeded(link.target.id)
            return value

        outcome.value = await self._route(endpoint, attempt, outcome)
        return outcome

    async def open_stream(self, endpoint: EndpointConfig,
                          operation: Callable[[ProviderAdapter, CallStats], AsyncIterator[T]],
                          outcome: Outcome | None = None) -> tuple[T, StallWatchdog[T], Outcome]:
        """Start a stream and wait for its first item, falling back while nothing has been produced.
        Returns the first item, the iterator for the rest (stall-guarded; its end is the breaker's verdict,
        so a stream cut midway counts as a failure of its model), and the outcome."""
        outcome = outcome or Outcome()

        async def attempt(link: Link, run: _Run, trial: bool) -> tuple[T, StallWatchdog[T]]:
            remaining = None if run.deadline is None else max(run.deadline - self.clock(), 0.0)
            stream = StallWatchdog(operation(link.adapter, outcome.stats).__aiter__(), run.policy.idle_timeout,
                                   link.target.provider, link.target.credentials,
                                   total_timeout=run.policy.total_timeout, remaining=remaining)
            try:
                first = await stream.__anext__()
            except StopAsyncIteration:
                await stream.aclose()
                raise ProviderError(502, f"Provider '{link.target.provider}' sent an empty stream.",
                                    retryable=True) from None
            except BaseException:
                await stream.aclose()
                raise
            stream.arm(lambda error: self._settle(link, run.policy, error),
                       lambda: self.breakers.released(link.target.id) if trial else None)
            return first, stream

        first, rest = await self._route(endpoint, attempt, outcome)
        return first, rest, outcome

    async def _route(self, endpoint: EndpointConfig, attempt: Callable[[Link, _Run, bool], Awaitable[T]],
                     outcome: Outcome) -> T:
        policy = Policy.of(endpoint)
        deadline = self.clock() + policy.total_timeout if policy.total_timeout is not None else None
        run = _Run(policy, deadline, outcome)
        # The deadline is checked before asking for the next candidate: asking claims its breaker trial.
        for link, trial in self.candidates(endpoint, policy):
            done, value = await self._try_model(link, trial, attempt, run)
            if done:
                outcome.link = link
                return value
            if not run.last.retryable or self._expired(run):
                break
        if run.last is None:
            raise unusable_error(endpoint)
        raise final_error(run.last, outcome.attempts)

    async def _try_model(self, link: Link, trial: bool, attempt: Callable[[Link, _Run, bool], Awaitable[T]],
                         run: _Run) -> tuple[bool, T | None]:
        """One model, with its same-model retries. Returns (True, value) on success, (False, None) when it is
        time to move on; `run.last` then holds the reason."""
        name = link.target.name
        for retry in range(run.policy.retries + 1):
            attempts = run.outcome.attempts
            try:
                with tracing.attempt_span(link.target, len(attempts) + 1, attempts[-1] if attempts else None):
                    value = await self._cut_at_deadline(attempt(link, run, trial), run, link)
            except ProviderError as exc:
                exc.redact(link.target.credentials)
                self._settle(link, run.policy, exc)
                attempts.append(Attempt(name, exc.message, exc.status, link.target.provider))
                run.outcome.link = link
                run.last = exc
                delay = self._retry_delay(exc, retry, link, run)
                if delay is None:
                    return False, None
                await self.sleep(delay)
                trial = False
                continue
            except BaseException:
                if trial:
                    self.breakers.released(link.target.id)
                raise
            attempts.append(Attempt(name, provider=link.target.provider))
            return True, value
        return False, None

    async def _cut_at_deadline(self, work: Awaitable[T], run: _Run, link: Link) -> T:
        """Run one attempt within the endpoint's deadline and the model's own total timeout. Only the
        endpoint's deadline ends the request; a model's own timeout is a retryable failure like any other."""
        remaining = None if run.deadline is None else max(run.deadline - self.clock(), 0.0)
        own = attempt_timeout(link)
        own_first = own is not None and (remaining is None or own < remaining)
        scope = asyncio.timeout(own if own_first else remaining)
        try:
            async with scope:
                return await work
        except TimeoutError:
            if not scope.expired():
                raise
            name = link.target.name
            if own_first:
                raise ProviderError(504, f"Model '{name}' did not answer within its total timeout ({own:g} s).",
                                    retryable=True, error_type="timeout") from None
            run.timed_out = True
            raise ProviderError(504, f"The endpoint's total timeout ({run.policy.total_timeout:g} s) ran out "
                                f"while waiting for model '{name}'.", retryable=True, error_type="timeout") from None

    def _retry_delay(self, exc: ProviderError, retry: int, link: Link, run: _Run) -> float | None:
        """Seconds to wait before retrying the same model, or None to move on."""
        if (retry >= run.policy.retries or not retries_same_model(exc) or self._expired(run)
                or self.breakers.is_open(link.target.id)):
            return None
        delay = self.backoff.delay(retry, exc.retry_after, self.rand)
        if delay is None or (run.deadline is not None and self.clock() + delay >= run.deadline):
            return None
        return delay

    def _expired(self, run: _Run) -> bool:
        return run.timed_out or (run.deadline is not None and self.clock() >= run.deadline)

    def _settle(self, link: Link, policy: Policy, error: ProviderError | None) -> None:
        """The breaker's verdict on one attempt: only retryable failures count against a model; a client
        error proves the provider is up and answering."""
        if error is not None and error.retryable:
            self.breakers.failed(link.target.id, policy.threshold)
        else:
            self.breakers.succeeded(link.target.id)


def first_usable(endpoint: EndpointConfig) -> Link:
    """The endpoint's first model that can be called (primaries first), for routes that reach one provider
    without routing (the raw proxy, realtime sessions); raises `unusable_error` when there is none."""
    for link in endpoint.primaries + endpoint.fallbacks:
        if link.adapter.problem is None:
            return link
    raise unusable_error(endpoint)


def unusable_error(endpoint: EndpointConfig) -> UpstreamError:
    """No model could even be tried: the gateway's configuration is wrong (or the endpoint has no model).
    Refused at once, naming what to fix; retrying cannot help."""
    broken = [link for link in endpoint.primaries + endpoint.fallbacks if link.adapter.problem is not None]
    if not broken:
        return final_error(None, [])
    reasons = "; ".join(f"model '{link.target.name}' cannot be used: {link.adapter.problem}" for link in broken)
    return UpstreamError(f"Endpoint '{endpoint.name}' cannot be served until the gateway's configuration is "
                         f"fixed: {reasons}.", status=503, error_type="configuration_error",
                         code="gateway_misconfigured")


def final_error(last: ProviderError | None, attempts: list[Attempt]) -> UpstreamError:
    """The error the client sees: the last failure (the most meaningful one, since only retryable failures
    lead to another attempt), listing every attempt when there was more than one."""
    if last is None:
        return UpstreamError("The endpoint has no primary model configured.", status=503, error_type="no_model")
    message = last.message
    if len(attempts) > 1:
        tried = "; ".join(f"{a.model}: {a.error}" for a in attempts)
        message = f"All {len(attempts)} attempts failed. Last error: {last.message} (attempts: {tried})"
    headers = {"retry-after": str(math.ceil(last.retry_after))} if last.retry_after else {}
    return UpstreamError(message, status=last.status, error_type=last.error_type, headers=headers)


router = Router()
