"""Usage retention: delete usage records (and budget windows) older than GATEWAY_USAGE_RETENTION_DAYS.

Deletion goes by primary key in small batches, so neither the process's memory nor the time a database
lock is held grows with the table. Every server process runs the pruner hourly; running it twice at once
is harmless (the second finds less to delete). `manage.py prune_usage` does the same on demand.
"""
from __future__ import annotations

import asyncio
import logging
import time
from datetime import datetime, timedelta, timezone

from django.conf import settings
from django.db import models

from gateway.models import BudgetWindow, UsageRecord
from gateway.db import db_task

logger = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600


def prune_usage(*, days: int, now: datetime | None = None, batch_size: int = 2000, max_batches: int = 10_000,
                pause: float = 0.0) -> int:
    """Delete records created more than `days` ago; returns how many. `pause` lets other writers in
    between batches."""
    cutoff = (now or datetime.now(timezone.utc)) - timedelta(days=days)
    deleted = delete_created_before(UsageRecord, cutoff, batch_size=batch_size, max_batches=max_batches, pause=pause)
    BudgetWindow.objects.filter(window_end__lt=cutoff).delete()
    return deleted


def delete_created_before(model: type[models.Model], cutoff: datetime, *, batch_size: int, max_batches: int,
                          pause: float = 0.0) -> int:
    """Delete `model` rows whose `created_at` is before `cutoff`, by primary key in batches; returns how many."""
    deleted = 0
    for _ in range(max_batches):
        ids = list(model.objects.filter(created_at__lt=cutoff).order_by().values_list("pk", flat=True)[:batch_size])
        if not ids:
            break
        deleted += model.objects.filter(pk__in=ids).delete()[0]
        if len(ids) < batch_size:
            break
        if pause:
            time.sleep(pause)
    return deleted


async def run_pruner(interval: float = PRUNE_INTERVAL_SECONDS) -> None:
    """Prune now and then every `interval` seconds, until cancelled."""
    while True:
        try:
            deleted = await db_task(prune_usage)(
                days=settings.GATEWAY_USAGE_RETENTION_DAYS, pause=0.05)
            if deleted:
                logger.info("retention: deleted %d usage records older than %d days", deleted,
                            settings.GATEWAY_USAGE_RETENTION_DAYS)
        except asyncio.CancelledError:
            raise
        except Exception:  # noqa: BLE001 - try again at the next tick
            logger.exception("pruning old usage records failed")
        await asyncio.sleep(interval)
