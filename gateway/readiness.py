"""Readiness for load balancers (GET /ready): is this replica's configuration fresh, and can it reach the
database and, when configured, Redis? Unlike /health (liveness, no I/O), this checks each dependency, with a
short deadline, and says which one failed, so a replica that should not take traffic answers 503."""
from __future__ import annotations

import asyncio
import time

from django.conf import settings
from django.db import connection

from gateway.config.snapshot import store
from gateway.db import db_task
from gateway.ratelimits.limiter import limiter

CHECK_TIMEOUT_SECONDS = 1.0


def stale_after() -> float:
    """A snapshot not confirmed for this long means the config watcher cannot read the database."""
    return max(10.0, 5 * settings.GATEWAY_CONFIG_POLL_SECONDS)


def _select_one() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")


async def _probe(check) -> str:
    try:
        async with asyncio.timeout(CHECK_TIMEOUT_SECONDS):
            await check()
        return "ok"
    except TimeoutError:
        return "timeout"
    except Exception as exc:  # noqa: BLE001 - reported by kind only: messages may carry connection strings
        return f"error: {type(exc).__name__}"


def redis_needed() -> bool:
    """Without Redis, which requests would this replica refuse? Those under budgets counted in Redis, and
    every rate-limited one when rate limits fail closed."""
    budget_backend = settings.GATEWAY_BUDGET_BACKEND or "redis"
    return budget_backend == "redis" or settings.GATEWAY_RATE_LIMIT_FAILURE == "closed"


async def readiness() -> tuple[bool, dict]:
    snapshot = store.current
    age = None if store.checked_at is None else round(time.monotonic() - store.checked_at, 3)
    database, redis = await asyncio.gather(
        _probe(db_task(_select_one)),
        _probe(limiter.store.ping) if settings.REDIS_URL else asyncio.sleep(0, "not configured"),
    )
    ready = (snapshot is not None and age is not None and age <= stale_after() and database == "ok"
             and (redis in ("ok", "not configured") or not redis_needed()))
    return ready, {
        "status": "ready" if ready else "not ready",
        "config_version": snapshot.version if snapshot else None,
        "snapshot_age_seconds": age,
        "database": database,
        "redis": redis,
        "rate_limit_store_failures": limiter.failures,
    }
