"""The shapes every rate-limit store speaks: what one request asks of each limit covering it, and the answer.

GCRA (the generic cell rate algorithm) keeps one number per limit, the theoretical arrival time (TAT): the
moment the limit would be back to full if nothing else came. A limit of L per minute spaces cells by
PERIOD / L; a request costing c moves the TAT c spacings on, and is admitted while the TAT stays within one
PERIOD of now. So a fresh limit admits a burst of L at once, then refills at L per minute, smoothly: no
window boundary ever lets two bursts through back to back.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

PERIOD_MS = 60_000.0
KINDS = ("requests", "tokens", "concurrent")


@dataclass(frozen=True)
class Check:
    """One limit applied to one request: its counter `key`, `kind` (one of KINDS), `limit` and `cost`
    (1 for requests and concurrency, the estimated tokens for tokens)."""

    key: str
    kind: str
    limit: int
    cost: int
    name: str
    scope: str
    subject: str


@dataclass(frozen=True)
class Granted:
    """Admitted: per check, what is left and the milliseconds until the limit is back to full."""

    remaining: tuple[int, ...]
    reset_ms: tuple[float, ...]


@dataclass(frozen=True)
class Denied:
    index: int
    retry_ms: float


def gcra(tat: float, now: float, limit: int, cost: int) -> tuple[float, int, float] | float:
    """Admit `cost` against a GCRA limit: (new TAT, remaining, ms to full) or, when refused, the ms to wait."""
    interval = PERIOD_MS / limit
    start = max(tat, now)
    new = start + min(cost, limit) * interval
    if new - now > PERIOD_MS:
        return new - now - PERIOD_MS
    return new, math.floor((PERIOD_MS - (new - now)) / interval), new - now
