"""Rate-limit counters in Redis, shared by every process and replica: one Lua script admits a request
against all of its limits in one atomic round trip, on Redis's own clock (so replicas' clocks need not agree),
carrying the settlements of earlier requests along.

Keys share the `{gateway-ratelimit}` hash tag, so one script's keys live in one Redis Cluster slot. A GCRA
limit is a string (the theoretical arrival time in ms) that expires once the limit is back to full; a
concurrency limit is a sorted set of request leases scored by when they expire, so a process that dies
mid-request frees its places after GATEWAY_BUDGET_RESERVATION_TTL_SECONDS.
"""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

from django.conf import settings

from gateway.ratelimits.types import Check, Denied, Granted
from gateway.redisclients import async_client

PREFIX = "{gateway-ratelimit}:"
# Far more than a round trip on a LAN takes, even on a saturated host; past it the configured failure mode
# decides (and, for a second, decides for every request without waiting: gateway/ratelimits/limiter.py).
TIMEOUT_SECONDS = 2.0
FLUSH_SECONDS = 0.05

# KEYS: the limits asked for (ARGV[2] of them), then the keys of queued settlements. ARGV: hold ms, the count,
# then (kind, limit, cost, lease) per limit, then (kind, limit, member, delta) per settlement. A concurrency
# limit asked for `cost` places holds the lease itself when cost is 1, else the members lease#1..lease#cost
# (a process's allowance: gateway/ratelimits/allowance.py). Settlements apply first, whatever the outcome.
# A settlement is sent again when its round trip failed, though Redis may have run it: removing a place is
# idempotent, and moving a GCRA limit is made so by its unique `member` id, remembered for 10 minutes in a
# key next to the limit's (same hash slot).
ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local hold, count = tonumber(ARGV[1]), tonumber(ARGV[2])
for j = count + 1, #KEYS do
  local at = 3 + 4 * count + 4 * (j - count - 1)
  local kind, limit, member, delta = ARGV[at], tonumber(ARGV[at + 1]), ARGV[at + 2], tonumber(ARGV[at + 3])
  if kind == 'c' then
    redis.call('ZREM', KEYS[j], member)
  elseif delta ~= 0 and redis.call('SET', KEYS[j] .. '|' .. member, '1', 'NX', 'PX', 600000) then
    local tat = tonumber(redis.call('GET', KEYS[j]) or '0')
    if tat < now then tat = now end
    local new = tat + delta * 60000 / limit
    if new > now then
      redis.call('SET', KEYS[j], string.format('%.3f', new), 'PX', math.ceil(new - now) + 1000)
    else
      redis.call('DEL', KEYS[j])
    end
  end
end
local out, tats = {1}, {}
for i = 1, count do
  local at = 4 * i - 1
  local kind, limit, cost = ARGV[at], tonumber(ARGV[at + 1]), tonumber(ARGV[at + 2])
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local n = redis.call('ZCARD', KEYS[i])
    if n + cost > limit then return {0, i, 1000} end
    out[2 * i] = limit - n - cost
    out[2 * i + 1] = 0
  else
    local interval = 60000 / limit
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    local new = tat + math.min(cost, limit) * interval
    if new - now > 60000 then return {0, i, math.ceil(new - now - 60000)} end
    tats[i] = new
    out[2 * i] = math.floor((60000 - (new - now)) / interval)
    out[2 * i + 1] = math.ceil(new - now)
  end
end
for i = 1, count do
  if tats[i] then
    redis.call('SET', KEYS[i], string.format('%.3f', tats[i]), 'PX', math.ceil(tats[i] - now) + 1000)
  else
    local at = 4 * i - 1
    local cost, lease = tonumber(ARGV[at + 2]), ARGV[at + 3]
    if cost == 1 then
      redis.call('ZADD', KEYS[i], now + hold, lease)
    else
      for m = 1, cost do redis.call('ZADD', KEYS[i], now + hold, lease .. '#' .. m) end
    end
    redis.call('PEXPIRE', KEYS[i], hold)
  end
end
return out
"""

CODES = {"requests": "r", "tokens": "t", "concurrent": "c"}


def member(lease: str, place: int, places: int) -> str:
    """The concurrency-set member of place `place` (1-based) of a lease holding `places` places."""
    return lease if places == 1 else f"{lease}#{place}"


class RedisStore:
    """Settlements (concurrency releases, token corrections) wait in a queue and travel with the next
    request's admission, in the same script: one round trip per request. When no request comes, the queue
    is sent on its own after FLUSH_SECONDS, so other processes see a release within that time."""

    name = "redis"

    def __init__(self, url: str) -> None:
        self.client = async_client(url, TIMEOUT_SECONDS)
        self._script = self.client.register_script(ACQUIRE)
        self._queue: list[tuple[Check, str, int]] = []
        self._flusher: asyncio.TimerHandle | None = None
        self._flushing: set[asyncio.Task] = set()
        self._id = f"s{uuid.uuid4().hex[:12]}-"
        self._sent = 0
        self.failures = 0

    def _settlements(self) -> tuple[list[str], list, list[tuple[Check, str, int]]]:
        queued, self._queue = self._queue, []
        keys, args = [], []
        for check, held, delta in queued:
            keys.append(PREFIX + check.key)
            args += [CODES[check.kind], check.limit, held, delta]
        return keys, args, queued

    async def _run(self, asks: Sequence[tuple[Check, str]]):
        settle_keys, settle_args, queued = self._settlements()
        args: list = [settings.GATEWAY_BUDGET_RESERVATION_TTL_SECONDS * 1000, len(asks)]
        for check, lease in asks:
            args += [CODES[check.kind], check.limit, check.cost, lease]
        try:
            return await self._script(keys=[PREFIX + check.key for check, _ in asks] + settle_keys,
                                      args=args + settle_args)
        except BaseException:
            self._queue[:0] = queued  # sent again with the next round trip (releases are idempotent)
            raise

    async def acquire(self, checks: Sequence[Check], lease: str) -> Granted | Denied:
        return await self.acquire_each([(check, lease) for check in checks])

    async def acquire_each(self, asks: Sequence[tuple[Check, str]]) -> Granted | Denied:
        """Admit against every (check, lease) pair at once, all or none: a concurrency check asking for
        `cost` places holds them under its own lease (see `member`)."""
        result = await self._run(asks)
        if int(result[0]) == 0:
            return Denied(int(result[1]) - 1, float(result[2]))
        values = [int(value) for value in result[1:]]
        return Granted(tuple(values[0::2]), tuple(float(v) for v in values[1::2]))

    def settle(self, checks: Sequence[Check], lease: str, used_tokens: int) -> None:
        """Free the request's concurrency places and charge each tokens limit what was used beyond what it
        held (or give back what it held beyond what was used)."""
        for check in checks:
            if check.kind == "concurrent":
                self.release(check, lease, 0)
            elif check.kind == "tokens" and used_tokens != check.cost:
                self.release(check, lease, used_tokens - check.cost)

    def release(self, check: Check, held: str, delta: int) -> None:
        """Queue one settlement for the next round trip: a concurrency place (`held` is its member) freed, or a
        GCRA limit moved by `delta` units (positive: charged, negative: given back) exactly once."""
        if check.kind != "concurrent":
            self._sent += 1
            held = f"{self._id}{self._sent}"
        self._queue.append((check, held, delta))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self._flush_soon)

    def _flush_soon(self) -> None:
        self._flusher = None
        if self._queue:
            task = asyncio.get_running_loop().create_task(self.flush())
            self._flushing.add(task)
            task.add_done_callback(self._flushing.discard)

    async def flush(self) -> None:
        """Send queued settlements now (also at shutdown); on failure they stay queued for the next try."""
        if not self._queue:
            return
        try:
            await self._run(())
        except Exception:  # noqa: BLE001 - retried with the next request or timer; holds expire on their own
            self.failures += 1
            if self._flusher is None:
                self._flusher = asyncio.get_running_loop().call_later(1.0, self._flush_soon)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.flush()
        await self.client.aclose()
