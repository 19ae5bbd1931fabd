"""Choosing which model serves a request, and moving on to the next one when it fails.

Attempt order: one primary (the first, or a weighted pick with `traffic_split`), then the endpoint's
fallbacks in order, at most `fallback_max_attempts` of them. Only retryable failures (connection errors,
timeouts, 408, 429, 5xx) move on; a client error is returned at once. Streams can move on only until their
first item has been produced.
"""
from __future__ import annotations

import random
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from gateway.errors import UpstreamError
from gateway.snapshot import EndpointConfig, Link
from providers.base import CallStats, ProviderAdapter, ProviderError

T = TypeVar("T")


@dataclass
class Attempt:
    model: str
    error: str = ""
    status: int | None = None


@dataclass
class Outcome(Generic[T]):
    """What routing did: the value, the link that produced it, every attempt, the time spent upstream."""

    value: T | None = None
    link: Link | None = None
    attempts: list[Attempt] = field(default_factory=list)
    stats: CallStats = field(default_factory=CallStats)


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
    def __init__(self, rand: Callable[[], float] = random.random) -> None:
        self.rand = rand

    def plan(self, endpoint: EndpointConfig) -> list[Link]:
        if not endpoint.primaries:
            return []
        first = pick_weighted(endpoint.primaries, self.rand) if endpoint.traffic_split else endpoint.primaries[0]
        fallbacks = list(endpoint.fallbacks)
        if endpoint.fallback_max_attempts is not None:
            fallbacks = fallbacks[: endpoint.fallback_max_attempts]
        return [first, *fallbacks]

    async def call(self, endpoint: EndpointConfig,
                   operation: Callable[[ProviderAdapter, CallStats], Awaitable[T]],
                   outcome: Outcome[T] | None = None) -> Outcome[T]:
        outcome = outcome or Outcome()
        last: ProviderError | None = None
        for link in self.plan(endpoint):
            try:
                outcome.value = await operation(link.adapter, outcome.stats)
                outcome.link = link
                outcome.attempts.append(Attempt(link.target.name))
                return outcome
            except ProviderError as exc:
                outcome.attempts.append(Attempt(link.target.name, exc.message, exc.status))
                outcome.link = link
                last = exc
                if not exc.retryable:
                    break
        raise final_error(last, outcome.attempts)

    async def open_stream(self, endpoint: EndpointConfig,
                          operation: Callable[[ProviderAdapter, CallStats], AsyncIterator[T]],
                          outcome: Outcome | None = None) -> tuple[T, AsyncIterator[T], Outcome]:
        """Start a stream and wait for its first item, falling back while nothing has been produced.
        Returns the first item, the iterator for the rest, and the outcome."""
        outcome = outcome or Outcome()
        last: ProviderError | None = None
        for link in self.plan(endpoint):
            iterator = operation(link.adapter, outcome.stats).__aiter__()
            try:
                first = await iterator.__anext__()
            except StopAsyncIteration:
                last = ProviderError(502, f"Provider '{link.target.provider}' sent an empty stream.", retryable=True)
            except ProviderError as exc:
                last = exc
            else:
                outcome.link = link
                outcome.attempts.append(Attempt(link.target.name))
                return first, iterator, outcome
            outcome.attempts.append(Attempt(link.target.name, last.message, last.status))
            outcome.link = link
            if not last.retryable:
                break
        raise final_error(last, outcome.attempts)


def final_error(last: ProviderError | None, attempts: list[Attempt]) -> UpstreamError:
    if last is None:
        return UpstreamError("The endpoint has no primary model configured.", status=503, error_type="no_model")
    message = last.message
    if len(attempts) > 1:
        tried = "; ".join(f"{a.model}: {a.error}" for a in attempts)
        message = f"All {len(attempts)} attempts failed. Last error: {last.message} (attempts: {tried})"
    headers = {"retry-after": str(int(last.retry_after))} if last.retry_after else {}
    return UpstreamError(message, status=last.status, error_type=last.error_type, headers=headers)


router = Router()
