"""Request log retention: delete entries older than GATEWAY_REQUEST_LOG_RETENTION_DAYS, hourly, by primary
key in small batches (as gateway/usage/retention.py does for usage records)."""
from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta, timezone

from django.conf import settings

from gateway.db import db_task
from gateway.models import RequestLog

logger = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600


def prune_request_logs(*, days: int, now: datetime | None = None, batch_size: int = 1000,
                       max_batches: int = 10_000) -> int:
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    deleted = 0
    for _ in range(max_batches):
        ids = list(RequestLog.objects.filter(created_at__lt=cutoff).order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        deleted += RequestLog.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            break
    return deleted


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
