"""Where budget windows are counted. Every backend admits a reservation atomically and keeps the same
contract (tests/budgets/test_backends.py):

- `RedisBackend` (gateway/budgets/redis.py; default when REDIS_URL is set): one Lua script checks and holds
  every window of a request at once; shared by every process and replica.
- `DatabaseBackend` (gateway/budgets/database.py; default otherwise): conditional UPDATEs in one transaction;
  shared by every process using the database.
- `MemoryBackend` (gateway/budgets/memory.py): counters in this process only. Exact and cheapest, but
  correct only when a single server process serves the budgeted traffic.

All amounts are integer nano-USD. A window a backend has never seen starts from the cost of the usage
records already in it, so spend survives restarts. Holds expire after GATEWAY_BUDGET_RESERVATION_TTL_SECONDS,
so a process that dies mid-request does not keep budget reserved.
"""
from __future__ import annotations

from django.conf import settings

from gateway.budgets.allowance import AllowanceBackend
from gateway.budgets.database import DatabaseBackend
from gateway.budgets.memory import MemoryBackend
from gateway.budgets.redis import RedisBackend


def backend_from_settings():
    """GATEWAY_BUDGET_BACKEND, or Redis when REDIS_URL is set, else the database; shared backends get
    local allowances in front (gateway/budgets/allowance.py)."""
    choice = settings.GATEWAY_BUDGET_BACKEND or ("redis" if settings.REDIS_URL else "database")
    if choice == "memory":
        return MemoryBackend()
    if choice == "redis":
        return AllowanceBackend(RedisBackend(settings.REDIS_URL))
    return AllowanceBackend(DatabaseBackend())
