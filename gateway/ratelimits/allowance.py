"""Per-process allowances in front of the Redis rate-limit store, so that a request under a large limit is
admitted in memory instead of waiting on a Redis round trip, while the limit still holds across processes.

For a limit large enough to share (CHUNK_SHARE: at least two units in each hundredth of it), a process takes
an *allowance* from Redis with the store's own atomic script: up to CHUNK_REQUESTS requests' worth of the
limit (cells of a requests limit, tokens of a tokens limit sized by the current request's estimate, places of
a concurrency limit), never more than a hundredth of it. Requests are then admitted from the allowance with
no `await`. An allowance is retired once used up, idle for IDLE_SECONDS, older than MAX_AGE_SECONDS, or at
shutdown; what it did not use goes back to Redis then (a GCRA limit's arrival time moves back; unused
concurrency places are removed), with the queued settlements of the next round trip. Concurrency places
come back to the allowance as their requests finish. When Redis refuses an allowance (the limit is nearly
spent), the request asks for just itself, as it does under a small limit: near its edge, and for limits
too small to share, every request is counted in Redis exactly, one round trip each.

What this costs in exactness: every other process sees an open allowance as taken, so near the limit a
request can be refused up to a hundredth of the limit per other process early, never late. Tokens used
beyond a request's estimate are charged to Redis when the request settles, as without allowances.
"""
from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

from gateway.background import running
from gateway.ratelimits.redis import RedisStore, member
from gateway.ratelimits.types import Check, Denied, Granted

logger = logging.getLogger(__name__)

CHUNK_REQUESTS = 32
CHUNK_SHARE = 100
IDLE_SECONDS = 0.5
MAX_AGE_SECONDS = 5.0
SWEEP_SECONDS = 0.25
# After Redis refused an allowance of a limit (it is nearly spent), requests under it ask for themselves
# alone for this long: one round trip each instead of a refused allowance first.
TIGHT_SECONDS = 1.0


def allowance_size(check: Check) -> int | None:
    """How much of `check`'s limit one allowance takes, or None when the limit is too small to share."""
    share = check.limit // CHUNK_SHARE
    unit = max(check.cost, 1)
    size = min(unit * CHUNK_REQUESTS, share)
    return size if size >= 2 * unit else None


@dataclass
class Allowance:
    check: Check              # the limit, with `cost` = the units taken from Redis
    lease: str
    remaining: int            # what Redis reported left after granting it
    reset_ms: float
    granted_at: float
    free: int
    places: list[str] = field(default_factory=list)   # concurrency members not in use
    in_flight: int = 0
    last_used: float = 0.0
    retired: bool = False


@dataclass
class Draw:
    """What one request took from one allowance (`held`: units; `place`: its concurrency member)."""

    allowance: Allowance
    held: int
    place: str = ""


class AllowanceStore:
    """Wraps a RedisStore with per-process allowances; speaks the same acquire / settle / flush API."""

    def __init__(self, inner: RedisStore, clock: Callable[[], float] = time.monotonic) -> None:
        self.inner = inner
        self.name = f"{inner.name}+allowance"
        self.clock = clock
        self.open: dict[str, list[Allowance]] = {}
        self.drawn: dict[str, list[Draw]] = {}
        self.direct: dict[str, list[Check]] = {}
        self._prefix = uuid.uuid4().hex[:12]
        self._granting: dict[str, asyncio.Future] = {}
        self._tight: dict[str, float] = {}
        self._sweeper: asyncio.Task | None = None

    @property
    def failures(self) -> int:
        return self.inner.failures

    # -- admitting -------------------------------------------------------------------------------------
    def _usable(self, check: Check) -> Allowance | None:
        for allowance in reversed(self.open.get(check.key, ())):
            # An allowance of a limit since changed (same key, other size) admits nothing more.
            if not allowance.retired and allowance.free >= check.cost and allowance.check.limit == check.limit:
                return allowance
        return None

    def _size(self, check: Check, now: float) -> int | None:
        if self._tight.get(check.key, 0.0) > now:
            return None
        return allowance_size(check)

    def _draw(self, allowance: Allowance, check: Check, now: float) -> Draw:
        """Take `check`'s cost from `allowance`. A requests or tokens allowance used up is retired at once
        (concurrency places come back as requests finish, so that one stays open)."""
        allowance.free -= check.cost
        allowance.in_flight += 1
        allowance.last_used = now
        place = allowance.places.pop() if check.kind == "concurrent" else ""
        draw = Draw(allowance, check.cost, place)
        if allowance.free <= 0 and check.kind != "concurrent":
            self._retire(allowance)
        return draw

    def _answer(self, draw: Draw, now: float) -> tuple[int, float]:
        """Remaining and ms-to-full for a request admitted from an allowance: what Redis reported when it was
        granted, plus what this process still holds of it."""
        allowance = draw.allowance
        elapsed_ms = (now - allowance.granted_at) * 1000
        reset = max(allowance.reset_ms - elapsed_ms, 0.0) if allowance.check.kind != "concurrent" else 0.0
        return allowance.remaining + allowance.free, reset

    async def acquire(self, checks: Sequence[Check], lease: str) -> Granted | Denied:
        now = self.clock()
        draws: dict[int, Draw] = {}
        wanted: dict[int, int | None] = {}
        for index, check in enumerate(checks):
            size = self._size(check, now)
            allowance = self._usable(check) if size is not None else None
            if allowance is not None:
                draws[index] = self._draw(allowance, check, now)
            else:
                wanted[index] = size
        direct: dict[int, tuple[int, float]] = {}
        try:
            if wanted:
                refused = await self._fetch(checks, lease, wanted, draws, direct)
                if refused is not None:
                    self._give_back(draws.values())
                    return refused
        except BaseException:
            # Not admitted (store unreachable, client gone): draws left in flight would never come back.
            self._give_back(draws.values())
            raise
        if draws:
            self.drawn[lease] = list(draws.values())
        if direct:
            self.direct[lease] = [checks[index] for index in direct]
        moment = self.clock()
        answers = [direct[index] if index in direct else self._answer(draws[index], moment)
                   for index in range(len(checks))]
        return Granted(tuple(left for left, _ in answers), tuple(reset for _, reset in answers))

    async def _fetch(self, checks: Sequence[Check], lease: str, wanted: dict[int, int | None],
                     draws: dict[int, Draw], direct: dict[int, tuple[int, float]]) -> Denied | None:
        """One round trip for the checks no open allowance covers: new allowances where the limit is large
        enough, the request alone elsewhere (its remaining and reset go to `direct`). An allowance Redis
        refuses is asked for again as the request alone, and the limit counts as tight for TIGHT_SECONDS."""
        await self._join_pending_grants(checks, wanted, draws)
        if not wanted:
            return None
        mine: dict[str, asyncio.Future] = {}
        granted: set[str] = set()
        loop = asyncio.get_running_loop()
        for index, size in wanted.items():
            key = checks[index].key
            if size is not None and key not in self._granting:
                mine[key] = self._granting[key] = loop.create_future()
        try:
            while True:
                order = list(wanted)
                leases = {i: f"{self._prefix}-{uuid.uuid4().hex[:12]}" if wanted[i] is not None else lease
                          for i in order}
                asks = [(replace(checks[i], cost=wanted[i]) if wanted[i] is not None else checks[i], leases[i])
                        for i in order]
                answer = await self._ask(asks)
                if not isinstance(answer, Denied):
                    break
                refused = order[answer.index]
                if wanted[refused] is None:
                    return Denied(refused, answer.retry_ms)
                wanted[refused] = None
                self._tight[checks[refused].key] = self.clock() + TIGHT_SECONDS
            now = self.clock()
            for position, index in enumerate(order):
                check, size = checks[index], wanted[index]
                if size is None:
                    direct[index] = (answer.remaining[position], answer.reset_ms[position])
                    continue
                allowance = Allowance(replace(check, cost=size), leases[index], answer.remaining[position],
                                      answer.reset_ms[position], now, size)
                if check.kind == "concurrent":
                    allowance.places = [member(leases[index], place, size) for place in range(size, 0, -1)]
                self.open.setdefault(check.key, []).append(allowance)
                granted.add(check.key)
                draws[index] = self._draw(allowance, check, now)
            self._start_sweeper()
            return None
        finally:
            for key, future in mine.items():
                if self._granting.get(key) is future:
                    del self._granting[key]
                future.set_result(key in granted)

    async def _ask(self, asks: list[tuple[Check, str]]) -> Granted | Denied:
        """The round trip, finished even when the request waiting on it is cancelled (its client left):
        what Redis granted then goes straight back instead of being held until it expires."""
        task = asyncio.ensure_future(self.inner.acquire_each(asks))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            task.add_done_callback(lambda done: self._undo(done, asks))
            raise

    def _undo(self, task: asyncio.Future, asks: list[tuple[Check, str]]) -> None:
        if task.cancelled() or task.exception() is not None or not isinstance(task.result(), Granted):
            return
        for check, held in asks:
            self._return(check, check.cost, [member(held, place, check.cost) for place in range(1, check.cost + 1)])

    def _return(self, check: Check, units: int, places: Sequence[str] = ()) -> None:
        """Hand `units` of a limit back to Redis with the next round trip: a concurrency limit's `places`, or
        a GCRA limit's cells."""
        if check.kind == "concurrent":
            for place in places:
                self.inner.release(check, place, 0)
        elif units:
            self.inner.release(check, "", -units)

    async def _join_pending_grants(self, checks: Sequence[Check], wanted: dict[int, int | None],
                                   draws: dict[int, Draw]) -> None:
        """While one request fetches a new allowance for a limit, the others needing one wait for it and draw
        from it, instead of all going to Redis at once (a burst would otherwise take many allowances and use
        one request of each). When that fetch brought no allowance (refused near the limit, or failed), the
        waiters go to Redis for themselves alone, all at once. Returns when no fetch is pending for the limits
        still wanted as allowances, so the caller can claim them before its next `await`."""
        while True:
            pending = {checks[i].key: self._granting[checks[i].key] for i, size in wanted.items()
                       if size is not None and checks[i].key in self._granting}
            if not pending:
                return
            results = await asyncio.gather(*(asyncio.shield(future) for future in pending.values()))
            brought = dict(zip(pending, results))
            now = self.clock()
            for index in [i for i in wanted if checks[i].key in pending]:
                allowance = self._usable(checks[index])
                if allowance is not None:
                    draws[index] = self._draw(allowance, checks[index], now)
                    del wanted[index]
                elif not brought[checks[index].key]:
                    wanted[index] = None

    def _give_back(self, draws) -> None:
        for draw in draws:
            self._put_back(draw, draw.held)

    def _put_back(self, draw: Draw, units: int) -> None:
        """Return `units` of a draw (and its concurrency place) to its allowance, or to Redis once retired."""
        allowance = draw.allowance
        allowance.in_flight -= 1
        allowance.last_used = self.clock()
        if allowance.retired:
            self._return(allowance.check, units, [draw.place] if draw.place else ())
            return
        allowance.free += units
        if draw.place:
            allowance.places.append(draw.place)

    # -- settling --------------------------------------------------------------------------------------
    def settle(self, checks: Sequence[Check], lease: str, used_tokens: int) -> None:
        """Concurrency places go back to their allowance; tokens held beyond what was used too, and tokens
        used beyond what was held are charged to Redis with the next round trip. Checks admitted directly
        settle in Redis."""
        for draw in self.drawn.pop(lease, ()):
            kind = draw.allowance.check.kind
            if kind == "concurrent":
                self._put_back(draw, draw.held)
            elif kind == "tokens" and used_tokens < draw.held:
                self._put_back(draw, draw.held - used_tokens)
            else:
                self._put_back(draw, 0)
                if kind == "tokens" and used_tokens > draw.held:
                    self.inner.release(draw.allowance.check, "", used_tokens - draw.held)
        direct = self.direct.pop(lease, ())
        if direct:
            self.inner.settle(direct, lease, used_tokens)

    # -- retiring --------------------------------------------------------------------------------------
    def _retire(self, allowance: Allowance) -> None:
        """Stop drawing from `allowance` and give back what it holds unused; places in use come back to
        Redis as their requests finish."""
        allowance.retired = True
        self._return(allowance.check, allowance.free, allowance.places)
        allowance.places = []
        allowance.free = 0
        siblings = self.open.get(allowance.check.key, [])
        if allowance in siblings:
            siblings.remove(allowance)
        if not siblings:
            self.open.pop(allowance.check.key, None)

    def _due(self, now: float) -> list[Allowance]:
        return [a for allowances in self.open.values() for a in allowances
                if now - a.granted_at >= MAX_AGE_SECONDS
                or (a.in_flight == 0 and now - a.last_used >= IDLE_SECONDS)]

    def _start_sweeper(self) -> None:
        self._sweeper = running(self._sweeper, self._sweep)

    async def _sweep(self) -> None:
        """Retire idle and old allowances until none is open."""
        while self.open:
            await asyncio.sleep(SWEEP_SECONDS)
            for allowance in self._due(self.clock()):
                self._retire(allowance)

    async def flush(self) -> None:
        """Give back every allowance's unused part and send what is queued (graceful shutdown)."""
        for allowance in [a for allowances in self.open.values() for a in allowances]:
            self._retire(allowance)
        await self.inner.flush()

    async def ping(self) -> None:
        await self.inner.ping()

    async def close(self) -> None:
        await self.flush()
        if self._sweeper is not None:
            self._sweeper.cancel()
        await self.inner.close()
