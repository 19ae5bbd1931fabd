"""The Redis budget backend: each window is a hash (spent, reserved) with a sorted set of holds by expiry
and a hash of hold amounts beside it. Reserving and settling are Lua scripts, so every window of a request
is checked and changed in one atomic step, whichever process or replica runs it.

Keys share the `{gateway-budget}` hash tag, so one script's keys live in one Redis Cluster slot. A window
key missing (first sight, or Redis lost its data) makes the script answer "seed me": the window is then
created from the usage records' cost with HSETNX, so concurrent seeders cannot overwrite each other.
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta


from gateway.budgets.windows import Claim, Refusal, lease_ttl, recorded_spend
from gateway.db import db_task
from gateway.redisclients import async_client

PREFIX = "{gateway-budget}:"
# Windows are kept a week past their end, so the dashboard can still show them.
KEEP_AFTER_END = timedelta(days=7)

RESERVE = """
local amount = tonumber(ARGV[1])
local now, expires, lease = ARGV[2], ARGV[3], ARGV[4]
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {-1, i} end
end
for i = 1, #KEYS do
  local holds, amounts = KEYS[i] .. ':holds', KEYS[i] .. ':amounts'
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', now)
  for _, id in ipairs(expired) do
    redis.call('HINCRBY', KEYS[i], 'reserved', -tonumber(redis.call('HGET', amounts, id) or '0'))
    redis.call('HDEL', amounts, id)
  end
  if #expired > 0 then redis.call('ZREMRANGEBYSCORE', holds, '-inf', now) end
  local spent = tonumber(redis.call('HGET', KEYS[i], 'spent') or '0')
  local reserved = tonumber(redis.call('HGET', KEYS[i], 'reserved') or '0')
  if spent + reserved + amount > tonumber(ARGV[4 + i]) then return {0, i, spent, reserved} end
end
for i = 1, #KEYS do
  local holds, amounts = KEYS[i] .. ':holds', KEYS[i] .. ':amounts'
  redis.call('HINCRBY', KEYS[i], 'reserved', amount)
  redis.call('ZADD', holds, expires, lease)
  redis.call('HSET', amounts, lease, amount)
  local keep = redis.call('PTTL', KEYS[i])
  if keep > 0 then
    redis.call('PEXPIRE', holds, keep)
    redis.call('PEXPIRE', amounts, keep)
  end
end
return {1}
"""

SETTLE = """
local lease, actual = ARGV[1], ARGV[2]
for i = 1, #KEYS do
  if redis.call('EXISTS', KEYS[i]) == 0 then return {-1, i} end
end
local spent = {}
for i = 1, #KEYS do
  local amounts = KEYS[i] .. ':amounts'
  local held = redis.call('HGET', amounts, lease)
  if held then
    redis.call('HINCRBY', KEYS[i], 'reserved', -tonumber(held))
    redis.call('HDEL', amounts, lease)
    redis.call('ZREM', KEYS[i] .. ':holds', lease)
  end
  spent[i] = redis.call('HINCRBY', KEYS[i], 'spent', actual)
end
return spent
"""


def window_key(claim: Claim) -> str:
    return PREFIX + claim.key


class RedisBackend:
    name = "redis"

    def __init__(self, url: str, seed=None) -> None:
        import redis

        self.url = url
        self.client = async_client(url)
        self.sync_client = redis.Redis.from_url(url)
        self._reserve = self.client.register_script(RESERVE)
        self._settle = self.client.register_script(SETTLE)
        self._seed = seed or db_task(recorded_spend)

    async def _create(self, claim: Claim) -> None:
        spent = await self._seed(claim)
        key = window_key(claim)
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.hsetnx(key, "spent", spent)
            pipe.hsetnx(key, "reserved", 0)
            pipe.pexpireat(key, int((claim.window.end + KEEP_AFTER_END).timestamp() * 1000))
            await pipe.execute()

    async def _run(self, script, claims: Sequence[Claim], args: list) -> list:
        """Run a script, creating windows it reports missing (at most one per claim, then once more)."""
        keys = [window_key(claim) for claim in claims]
        for _ in range(len(claims) + 1):
            result = await script(keys=keys, args=args)
            if result and result[0] == -1 and len(result) == 2:
                await self._create(claims[int(result[1]) - 1])
                continue
            return result
        raise RuntimeError("budget windows vanished while being created")

    async def reserve(self, claims: Sequence[Claim], nanos: int, lease: str, now: datetime) -> Refusal | None:
        checked = [claim for claim in claims if claim.limit is not None]
        now_ms = int(now.timestamp() * 1000)
        expires_ms = int((now + lease_ttl()).timestamp() * 1000)
        result = await self._run(self._reserve, checked,
                                 [nanos, now_ms, expires_ms, lease, *(claim.limit for claim in checked)])
        if int(result[0]) == 1:
            return None
        return Refusal(checked[int(result[1]) - 1], int(result[2]), int(result[3]))

    async def settle(self, claims: Sequence[Claim], lease: str, held: int, nanos: int) -> list[int]:
        result = await self._run(self._settle, claims, [lease, nanos])
        return [int(value) for value in result]

    def current(self, claim: Claim) -> tuple[int, int] | None:
        spent, reserved = self.sync_client.hmget(window_key(claim), "spent", "reserved")
        return None if spent is None else (int(spent), int(reserved or 0))

    async def close(self) -> None:
        await self.client.aclose()
        self.sync_client.close()
