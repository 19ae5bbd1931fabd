"""Gauges that describe state rather than requests (open circuits, the usage queue), sampled once a second
off the request path so recording costs the requests nothing."""
from __future__ import annotations

import asyncio

from gateway.config.snapshot import store
from gateway.observability import metrics
from gateway.routing.router import router
from gateway.usage import records as usage

INTERVAL_SECONDS = 1.0


def sample() -> None:
    metrics.usage_queue_depth.set(usage.writer.pending())
    snapshot = store.current
    if snapshot is None:
        return
    seen = set()
    for endpoint in snapshot.endpoints.values():
        for link in endpoint.primaries + endpoint.fallbacks:
            target = link.target
            if target.id not in seen:
                seen.add(target.id)
                metrics.child(metrics.circuit_open, target.name).set(1 if router.breakers.is_open(target.id) else 0)


async def run(interval: float = INTERVAL_SECONDS) -> None:
    while True:
        sample()
        await asyncio.sleep(interval)
