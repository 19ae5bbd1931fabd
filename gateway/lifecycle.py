"""Process start and stop for the ASGI server (Django itself has no lifespan): load the configuration
before taking traffic, run the config watcher, the usage writer, the retention pruner and the metrics
sampler, start trace export when configured, and on shutdown settle budget reservations still in flight,
write every queued usage record and export the spans still queued."""
from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os

from django.conf import settings

from gateway.budgets import policies as budgets
from gateway.ratelimits.limiter import limiter
from gateway.observability import metrics, sampler, tracing
from gateway.requestlogs import retention as requestlog_retention
from gateway.requestlogs.writer import writer as requestlog_writer
from gateway.usage import retention
from gateway.usage import records as usage
from gateway.config.snapshot import store
from gateway.realtime import shutdown as realtime_shutdown
from providers.http import close_clients

logger = logging.getLogger(__name__)

_tasks: list[asyncio.Task] = []
_writer_task: asyncio.Task | None = None


def several_workers() -> bool:
    """Whether this process is one of several workers of one server: WEB_CONCURRENCY (read by uvicorn and
    gunicorn) above 1, or a worker that uvicorn's --workers supervisor spawned."""
    try:
        if int(os.environ.get("WEB_CONCURRENCY", "1")) > 1:
            return True
    except ValueError:
        pass
    return multiprocessing.parent_process() is not None


def warn_if_counting_per_process() -> None:
    if several_workers() and not settings.REDIS_URL:
        memory_budgets = " and budgets" if settings.GATEWAY_BUDGET_BACKEND == "memory" else ""
        logger.warning("several server workers and no REDIS_URL: rate limits%s are counted in memory, per "
                       "process, so each worker allows the full limit; set REDIS_URL to share them", memory_budgets)


async def startup() -> None:
    global _writer_task
    warn_if_counting_per_process()
    tracing.configure()
    await store.refresh()
    realtime_shutdown.install()
    _tasks.append(asyncio.create_task(store.watch(), name="config-watcher"))
    _tasks.append(asyncio.create_task(sampler.run(), name="metrics-sampler"))
    _writer_task = asyncio.create_task(usage.writer.run(), name="usage-writer")
    if settings.GATEWAY_USAGE_RETENTION_DAYS > 0:
        _tasks.append(asyncio.create_task(retention.run_pruner(), name="usage-retention"))
    if settings.GATEWAY_REQUEST_LOG_RETENTION_DAYS > 0:
        _tasks.append(asyncio.create_task(requestlog_retention.run_pruner(), name="request-log-retention"))
    _tasks.append(asyncio.create_task(requestlog_writer.run(), name="request-log-writer"))


async def shutdown() -> None:
    global _writer_task
    for task in _tasks:
        task.cancel()
    await asyncio.gather(*_tasks, return_exceptions=True)
    _tasks.clear()
    await budgets.manager.drain()
    await limiter.drain()
    if _writer_task is not None:
        await usage.writer.stop(_writer_task)
        _writer_task = None
    written = await usage.writer.flush()
    if usage.writer.pending():
        logger.error("shutdown: %d usage records could not be written", usage.writer.pending())
    logger.info("shutdown: flushed %d usage records", written)
    await requestlog_writer.flush()
    await close_clients()
    await asyncio.to_thread(tracing.shutdown)
    metrics.process_exited()


async def lifespan(receive, send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            try:
                await startup()
            except Exception as exc:  # noqa: BLE001 - report to the server, which exits with the reason
                logger.exception("startup failed")
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await shutdown()
            await send({"type": "lifespan.shutdown.complete"})
            return
