"""Local allowances in front of a shared budget backend (database or Redis), so that most budgeted requests
are admitted in memory without a round trip, while the shared limit still holds across processes.

A process reserves an *allowance* from the shared window with the backend's own atomic reserve: room for
about CHUNK_REQUESTS requests like the current one, but never more than 1/CHUNK_SHARE of the limit (and
exactly the one request when that is less). Requests are then admitted from the allowance locally; their
actual costs accumulate in it. An allowance is closed (through the backend's settle: its consumption becomes
spend, its hold is released) once it is used up, or idle for IDLE_SECONDS, and at shutdown.

Every other process sees an open allowance as held in full, so a request whose actual cost stays within its
estimate is already counted everywhere when it settles. A cost above the estimate (an answer longer than
its cap allowed for) is not covered by the hold: the overrun is added to the shared spend at settlement,
which the request waits for before its response ends (gateway/budgets/policies.py), so overspend is bounded
by the estimation error of the requests in flight, never by the sweeper's timer.

What this costs in exactness: near the limit, another process may still hold unused allowance, so a
request can be refused up to 1/CHUNK_SHARE of the limit per other process early, never late. A process
killed with SIGKILL loses its open allowances' consumption from the shared count (the usage records still
have it), and their holds expire after GATEWAY_BUDGET_RESERVATION_TTL_SECONDS.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from gateway.background import running
from gateway.budgets.windows import Claim, Refusal

logger = logging.getLogger(__name__)

CHUNK_REQUESTS = 32
CHUNK_SHARE = 100
IDLE_SECONDS = 0.5
SWEEP_SECONDS = 0.25


@dataclass
class Allowance:
    claim: Claim
    lease: str
    size: int
    held: int = 0        # estimates of admitted requests not settled yet
    consumed: int = 0    # actual cost of settled requests
    in_flight: int = 0
    last_used: float = field(default_factory=time.monotonic)
    closing: bool = False

    @property
    def free(self) -> int:
        return self.size - self.held - self.consumed


class AllowanceBackend:
    """Wraps a shared backend (anything with reserve / settle / current) with per-process allowances."""

    def __init__(self, inner, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.name = f"{inner.name}+allowance"
        self.clock = clock
        self.open: dict[str, list[Allowance]] = {}
        self.drawn: dict[str, list[Allowance]] = {}
        self.known_spent: dict[str, int] = {}
        self._prefix = uuid.uuid4().hex[:12]
        self._granting: dict[str, asyncio.Future] = {}
        self._sweeper: asyncio.Task | None = None

    # -- admitting -------------------------------------------------------------------------------------
    def _usable(self, claim: Claim, nanos: int) -> Allowance | None:
        # A window this process already knows to be spent admits nothing more from what it holds: otherwise
        # requests that cost nothing (proxied listings, unpriced models) would keep an allowance open forever.
        if self._view(claim) + nanos > claim.limit:
            return None
        for allowance in reversed(self.open.get(claim.key, ())):
            if not allowance.closing and allowance.free >= nanos:
                return allowance
        return None

    @staticmethod
    def _draw(allowance: Allowance, nanos: int, now: float) -> Allowance:
        allowance.held += nanos
        allowance.in_flight += 1
        allowance.last_used = now
        return allowance

    async def _grant(self, claim: Claim, nanos: int, now: datetime) -> Allowance | Refusal:
        """A new allowance for `claim` with `nanos` already drawn from it, or the backend's refusal."""
        lease = f"{self._prefix}-{uuid.uuid4().hex[:16]}"
        size = max(nanos, min(nanos * CHUNK_REQUESTS, claim.limit // CHUNK_SHARE))
        refusal = await self.inner.reserve([claim], size, lease, now)
        if refusal is not None and size > nanos:
            size = nanos
            refusal = await self.inner.reserve([claim], size, lease, now)
        if refusal is not None:
            return refusal
        allowance = self._draw(Allowance(claim, lease, size), nanos, self.clock())
        self.open.setdefault(claim.key, []).append(allowance)
        self._start_sweeper()
        return allowance

    async def _draw_or_grant(self, claim: Claim, nanos: int, now: datetime) -> Allowance | Refusal:
        """While one request waits for a new allowance of a window, the others needing one wait for it
        too, instead of all going to the shared store at once."""
        pending = self._granting.get(claim.key)
        if pending is not None:
            await asyncio.shield(pending)
            allowance = self._usable(claim, nanos)
            if allowance is not None:
                return self._draw(allowance, nanos, self.clock())
        future = asyncio.get_running_loop().create_future()
        self._granting[claim.key] = future
        try:
            return await self._grant(claim, nanos, now)
        finally:
            if self._granting.get(claim.key) is future:
                del self._granting[claim.key]
            future.set_result(None)

    async def reserve(self, claims: Sequence[Claim], nanos: int, lease: str, now: datetime) -> Refusal | None:
        """Draw from open allowances without awaiting (atomic in this process); grant new ones only for
        the claims whose allowances are short. On a refusal or an error, what was drawn goes back."""
        drawn, missing, moment = [], [], self.clock()
        for claim in (c for c in claims if c.limit is not None):
            allowance = self._usable(claim, nanos)
            if allowance is None:
                missing.append(claim)
            else:
                drawn.append(self._draw(allowance, nanos, moment))
        try:
            for claim in missing:
                granted = await self._draw_or_grant(claim, nanos, now)
                if isinstance(granted, Refusal):
                    self._give_back(drawn, nanos)
                    return granted
                drawn.append(granted)
        except BaseException:
            # Not admitted (store unreachable, client gone): an allowance left in flight would never close.
            self._give_back(drawn, nanos)
            raise
        self.drawn[lease] = drawn
        return None

    @staticmethod
    def _give_back(drawn: list[Allowance], nanos: int) -> None:
        for allowance in drawn:
            allowance.held -= nanos
            allowance.in_flight -= 1

    # -- settling --------------------------------------------------------------------------------------
    async def settle(self, claims: Sequence[Claim], lease: str, held: int, nanos: int) -> list[int]:
        """Record the actual cost in the allowances the request drew from, up to what it held there; a cost
        above the hold (an answer longer than estimated) goes to the shared counter at once, so the next
        admission in any process sees it. `alert` windows, which hold nothing, go straight to the backend.
        Returns each window's spend as this process knows it."""
        moment = self.clock()
        drawn = self.drawn.pop(lease, ())
        for allowance in drawn:
            allowance.held -= held
            allowance.consumed += min(nanos, held)
            allowance.in_flight -= 1
            allowance.last_used = moment
        totals: dict[str, int] = {}
        over = [a.claim for a in drawn]
        if over and nanos > held:
            totals.update(zip((c.key for c in over), await self.inner.settle(over, f"{lease}+", 0, nanos - held)))
            self.known_spent.update(totals)
        direct = [claim for claim in claims if claim.limit is None]
        if direct:
            totals.update(zip((c.key for c in direct), await self.inner.settle(direct, lease, 0, nanos)))
        return [self._view(c) if c.limit is not None else totals[c.key] for c in claims]

    def _view(self, claim: Claim) -> int:
        return self.known_spent.get(claim.key, 0) + sum(a.consumed for a in self.open.get(claim.key, ()))

    async def _close(self, allowance: Allowance) -> None:
        allowance.closing = True
        try:
            [total] = await self.inner.settle([allowance.claim], allowance.lease, allowance.size, allowance.consumed)
        except Exception:  # noqa: BLE001 - kept open; the next sweep tries again
            logger.exception("closing a budget allowance of '%s' failed", allowance.claim.policy.name)
            allowance.closing = False
            return
        self.known_spent[allowance.claim.key] = total
        siblings = self.open.get(allowance.claim.key, [])
        if allowance in siblings:
            siblings.remove(allowance)
        if not siblings:
            self.open.pop(allowance.claim.key, None)

    def _closable(self, now: float) -> list[Allowance]:
        return [a for allowances in self.open.values() for a in allowances
                if not a.closing and a.in_flight == 0
                and (now - a.last_used >= IDLE_SECONDS or a.free < a.size // CHUNK_REQUESTS or a.free <= 0)]

    def _start_sweeper(self) -> None:
        self._sweeper = running(self._sweeper, self._sweep)

    async def _sweep(self) -> None:
        """Close used-up and idle allowances until none is open."""
        while self.open:
            await asyncio.sleep(SWEEP_SECONDS)
            for allowance in self._closable(self.clock()):
                await self._close(allowance)

    async def drain(self) -> None:
        """Close every allowance whose requests have all settled (graceful shutdown)."""
        for allowance in [a for allowances in self.open.values() for a in allowances if a.in_flight == 0]:
            if not allowance.closing:
                await self._close(allowance)
        if self._sweeper is not None:
            self._sweeper.cancel()

    def current(self, claim: Claim) -> tuple[int, int] | None:
        return self.inner.current(claim)
