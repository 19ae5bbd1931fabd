"""Request log retention: delete entries older than GATEWAY_REQUEST_LOG_RETENTION_DAYS, hourly, by primary
key in small batches (as gateway/usage/retention.py does for usage records)."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from django.conf import settings

from gateway.db import db_task
from gateway.models import RequestLog
from gateway.usage.retention import delete_created_before

logger = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600


def prune_request_logs(*, days: int, now: datetime | None = None, batch_size: int = 1000,
                       max_batches: int = 10_000) -> int:
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    return delete_created_before(RequestLog, cutoff, batch_size=batch_size, max_batches=max_batches)


async def run_pruner(interval: float = PRUNE_INTERVAL_SECONDS) -> None:
    while True:
        try:
            days = settings.GATEWAY_REQUEST_LOG_RETENTION_DAYS
            deleted = await db_task(prune_request_logs)(days=days)
            if deleted:
                logger.info("retention: deleted %d request logs older than %d days", deleted, days)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - try again at the next tick
            logger.exception("pruning old request logs failed")
        await asyncio.sleep(interval)
