"""The one way the gateway opens an asyncio Redis client (budgets and rate limits share its rules).

redis-py's default asyncio pool raises "Too many connections" past 100 commands in flight, so a crowd of
requests would count as an unreachable store (a 503 from a budget, an unchecked request from a rate limit
that fails open). A blocking pool makes the crowd wait its turn for one of MAX_CONNECTIONS connections,
up to the caller's own timeout.
"""
from __future__ import annotations

MAX_CONNECTIONS = 50


def async_client(url: str, timeout: float | None = None):
    import redis.asyncio

    pool = redis.asyncio.BlockingConnectionPool.from_url(
        url, max_connections=MAX_CONNECTIONS, timeout=timeout, socket_timeout=timeout,
        socket_connect_timeout=timeout)
    return redis.asyncio.Redis(connection_pool=pool)
