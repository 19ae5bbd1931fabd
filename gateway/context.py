"""What the gateway learns about one request, from arrival to its usage record: the one context object the
views, the pipeline, the native relay and the guardrails all pass around."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal

from gateway.budgets.policies import Reservation
from gateway.config.snapshot import ClientKey, EndpointConfig
from gateway.errors import GatewayError
from gateway.ratelimits.limiter import Admission
from gateway.observability import requestid
from gateway.routing.router import Outcome
from providers.wire import TokenUsage
from providers.base import Prices, ProviderError, clock


@dataclass
class RequestContext:
    """Everything the gateway learns about one request, from arrival to the usage record."""

    route: str
    endpoint: EndpointConfig
    key: ClientKey
    streaming: bool = False
    internal: bool = False
    started: float = field(default_factory=clock)
    request_id: str = field(default_factory=requestid.current_id)
    outcome: Outcome = field(default_factory=Outcome)
    tokens: TokenUsage = field(default_factory=TokenUsage)
    status: int = 200
    error_type: str = ""
    first_byte_at: float | None = None
    finished: bool = False
    guardrail_results: list = field(default_factory=list)
    api: str = ""  # the body's native API, and the body, for cost and usage estimates (gateway/budgets/policies.py)
    body: dict | None = None
    reservation: Reservation | None = None
    rate_limit: Admission | None = None  # the rate limits it was admitted under (gateway/ratelimits/limiter.py)
    relayed_chars: int = 0  # text relayed to a stream's client, to estimate usage the provider never reported
    pricing: Callable[[Prices], Decimal | None] | None = None  # a cost rule other than tokens x prices (realtime audio)
    answer: object = None  # a complete (non-streamed) answer, for its trace and request log
    capture: object = None  # a streamed answer as relayed, when the endpoint logs payloads (gateway/requestlogs/)

    def __post_init__(self) -> None:
        scope = requestid.current.get()
        if scope is not None and scope.ctx is None:  # the client's request, not a guardrail judge's own call
            scope.ctx = self

    def timings(self) -> tuple[float, float]:
        """(duration, overhead) in ms from one reading of the clock: overhead is the duration minus the
        provider wait inside it, so it never exceeds the duration it is part of."""
        now = clock()
        duration = (now - self.started) * 1000
        waited = min(self.outcome.stats.waited(now) * 1000, duration)
        return duration, duration - waited

    def fail(self, exc: BaseException) -> None:
        if isinstance(exc, asyncio.CancelledError):  # the client went away
            self.status, self.error_type = 499, "client_closed"
        elif isinstance(exc, GatewayError):
            self.status, self.error_type = exc.status, exc.error_type
            # Error answers carry the timing and routing headers too; the exception's own (Retry-After) win.
            exc.headers = {**self.response_headers(), **exc.headers}
        elif isinstance(exc, ProviderError):
            self.status, self.error_type = exc.status, exc.error_type
        else:
            self.status, self.error_type = 500, type(exc).__name__

    def response_headers(self) -> dict[str, str]:
        duration, overhead = self.timings()
        headers = {
            "X-Gateway-Duration-Ms": f"{duration:.2f}",
            "X-Gateway-Overhead-Ms": f"{overhead:.2f}",
            "X-Gateway-Attempts": str(len(self.outcome.attempts)),
        }
        if self.outcome.link is not None:
            headers["X-Gateway-Model"] = self.outcome.link.target.name
        if self.rate_limit is not None:
            headers.update(self.rate_limit.headers)
        return headers
