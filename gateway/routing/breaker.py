"""Per-process memory of which model definitions are failing: one circuit breaker per model definition id.

A circuit opens after `threshold` consecutive retryable failures, stays open for `cooldown` seconds (the
router skips the model), then lets exactly one trial request through (half-open): its success closes the
circuit, its failure opens it for another cool-down. Thresholds and cool-downs come from the endpoint that
is routing, the failure history from the model, so a model shared by several endpoints is judged on all its
traffic. Each server process keeps its own breakers: no shared state, no I/O on the request path.
"""
from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass
class _Health:
    failures: int = 0                 # consecutive retryable failures
    last_failure: float = 0.0
    opened_at: float | None = None    # None while the circuit is closed
    trial: bool = False               # the one half-open trial request is in flight


class CircuitBreakers:
    """`clock` is injectable (monotonic seconds) so tests move time without sleeping.

    Healthy models have no entry at all, so the memory is bounded by the models that failed recently."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._health: dict[int, _Health] = {}

    def available(self, model_id: int, cooldown: float) -> bool:
        """Closed, or open past its cool-down with no trial in flight."""
        health = self._health.get(model_id)
        if health is None or health.opened_at is None:
            return True
        return not health.trial and self.clock() - health.opened_at >= cooldown

    def claim(self, model_id: int, cooldown: float) -> bool | None:
        """Ask to send a request now. None: skip the model. True: this request is the half-open trial
        (report its end with `succeeded`, `failed` or `released`). False: the circuit is closed."""
        if not self.available(model_id, cooldown):
            return None
        health = self._health.get(model_id)
        if health is None or health.opened_at is None:
            return False
        health.trial = True
        return True

    def is_open(self, model_id: int) -> bool:
        health = self._health.get(model_id)
        return health is not None and health.opened_at is not None

    def succeeded(self, model_id: int) -> None:
        self._health.pop(model_id, None)

    def failed(self, model_id: int, threshold: int) -> None:
        """A retryable failure. An open circuit (a failed trial, or a late failure) restarts its cool-down.
        `threshold <= 0` never opens the circuit."""
        health = self._health.setdefault(model_id, _Health())
        now = self.clock()
        health.failures += 1
        health.last_failure = now
        health.trial = False
        if health.opened_at is not None or (threshold > 0 and health.failures >= threshold):
            health.opened_at = now

    def released(self, model_id: int) -> None:
        """The trial ended without a verdict (the client went away): the next request may try again."""
        health = self._health.get(model_id)
        if health is not None:
            health.trial = False

    def least_recently_failed(self, model_ids: Iterable[int]) -> int:
        """The model whose last failure is oldest: the one most likely to have recovered."""
        return min(model_ids, key=lambda model_id: self._health[model_id].last_failure
                   if model_id in self._health else float("-inf"))
