"""When to try the same model again, and how long to wait first."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from providers.base import ProviderError


def retries_same_model(exc: ProviderError) -> bool:
    """Rate limits and server-side failures (connection errors and timeouts are mapped to 502/504) can pass
    on their own; a 408 or a client error will not, so those go straight to the next model or the client."""
    return exc.retryable and (exc.status == 429 or exc.status >= 500)


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: the n-th retry (0-based) waits uniformly in
    [0, min(cap, base * 2**n)), which spreads a burst of failing clients instead of synchronising them.

    An upstream `Retry-After` replaces the computed wait, since the provider knows best; one longer than
    `retry_after_cap` means no retry at all (the error, with its Retry-After, goes back to the client)
    rather than holding the request that long."""

    base: float = 0.25
    cap: float = 4.0
    retry_after_cap: float = 10.0

    def delay(self, retry: int, retry_after: float | None, rand: Callable[[], float]) -> float | None:
        """Seconds to wait before retry number `retry`, or None when the wait would be too long."""
        if retry_after is not None:
            return max(retry_after, 0.0) if retry_after <= self.retry_after_cap else None
        return rand() * min(self.cap, self.base * 2 ** retry)
