"""Rate-limit counters in Redis, shared by every process and replica: one Lua script admits a request
against all of its limits in one atomic round trip, on Redis's own clock (so replicas' clocks need not agree).

Keys share the `{gateway-ratelimit}` hash tag, so one script's keys live in one Redis Cluster slot. A GCRA
limit is a string (the theoretical arrival time in ms) that expires once the limit is back to full; a
concurrency limit is a sorted set of request leases scored by when they expire, so a process that dies
mid-request frees its places after GATEWAY_BUDGET_RESERVATION_TTL_SECONDS.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.conf import settings

from gateway.ratelimits.types import Check, Denied, Granted

PREFIX = "{gateway-ratelimit}:"
# Generous for one round trip on a LAN; past it the configured failure mode decides.
TIMEOUT_SECONDS = 0.5

ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local lease, hold = ARGV[1], tonumber(ARGV[2])
local out, tats = {1}, {}
for i = 1, #KEYS do
  local kind, limit, cost = ARGV[3 * i], tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  if kind == 'c' then
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    local count = redis.call('ZCARD', KEYS[i])
    if count >= limit then return {0, i, 1000} end
    out[2 * i] = limit - count - 1
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
for i = 1, #KEYS do
  if tats[i] then
    redis.call('SET', KEYS[i], string.format('%.3f', tats[i]), 'PX', math.ceil(tats[i] - now) + 1000)
  else
    redis.call('ZADD', KEYS[i], now + hold, lease)
    redis.call('PEXPIRE', KEYS[i], hold)
  end
end
return out
"""

SETTLE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local lease, delta = ARGV[1], tonumber(ARGV[2])
for i = 1, #KEYS do
  local kind, limit = ARGV[1 + 2 * i], tonumber(ARGV[2 + 2 * i])
  if kind == 'c' then
    redis.call('ZREM', KEYS[i], lease)
  elseif kind == 't' and delta ~= 0 then
    local tat = tonumber(redis.call('GET', KEYS[i]) or '0')
    if tat < now then tat = now end
    local new = tat + delta * 60000 / limit
    if new > now then
      redis.call('SET', KEYS[i], string.format('%.3f', new), 'PX', math.ceil(new - now) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  end
end
return 1
"""

CODES = {"requests": "r", "tokens": "t", "concurrent": "c"}


class RedisStore:
    name = "redis"

    def __init__(self, url: str) -> None:
        import redis.asyncio

        self.client = redis.asyncio.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS,
                                                   socket_connect_timeout=TIMEOUT_SECONDS)
        self._acquire = self.client.register_script(ACQUIRE)
        self._settle = self.client.register_script(SETTLE)

    async def acquire(self, checks: Sequence[Check], lease: str) -> Granted | Denied:
        hold_ms = settings.GATEWAY_BUDGET_RESERVATION_TTL_SECONDS * 1000
        args: list = [lease, hold_ms]
        for check in checks:
            args += [CODES[check.kind], check.limit, check.cost]
        result = await self._acquire(keys=[PREFIX + check.key for check in checks], args=args)
        if int(result[0]) == 0:
            return Denied(int(result[1]) - 1, float(result[2]))
        values = [int(value) for value in result[1:]]
        return Granted(tuple(values[0::2]), tuple(float(v) for v in values[1::2]))

    async def settle(self, checks: Sequence[Check], lease: str, token_delta: int) -> None:
        args: list = [lease, token_delta]
        for check in checks:
            args += [CODES[check.kind], check.limit]
        await self._settle(keys=[PREFIX + check.key for check in checks], args=args)

    async def ping(self) -> None:
        await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
