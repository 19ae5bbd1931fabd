"""Process start and stop for the ASGI server (Django itself has no lifespan): load the configuration
before taking traffic, run the config watcher and the usage writer, and drain both on shutdown."""
from __future__ import annotations

import asyncio
import logging

from gateway import usage
from gateway.snapshot import store
from providers.http import close_clients

logger = logging.getLogger(__name__)

_tasks: list[asyncio.Task] = []


async def startup() -> None:
    await store.refresh()
    _tasks.append(asyncio.create_task(store.watch(), name="config-watcher"))
    _tasks.append(asyncio.create_task(usage.writer.run(), name="usage-writer"))


async def shutdown() -> None:
    for task in _tasks:
        task.cancel()
    await asyncio.gather(*_tasks, return_exceptions=True)
    _tasks.clear()
    written = await usage.writer.flush()
    if usage.writer.pending():
        logger.error("shutdown: %d usage records could not be written", usage.writer.pending())
    logger.info("shutdown: flushed %d usage records", written)
    await close_clients()


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
