"""Request logs written in batches off the request path, like usage records: `submit` is O(1), a flush
every half second encodes, caps and inserts what is queued; the queue is bounded (the oldest entries are
dropped, and counted) and drained on shutdown."""
from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections import deque

from django.conf import settings

from gateway.db import db_task
from gateway.models import RequestLog
from gateway.requestlogs.capture import Entry, encode

logger = logging.getLogger(__name__)


def row_of(entry: Entry, limit: int) -> RequestLog:
    request, cut_request = encode(entry.request, limit)
    response, cut_response = encode(entry.response, limit)
    return RequestLog(
        created_at=entry.created_at, request_id=entry.request_id, endpoint_name=entry.endpoint_name,
        model_name=entry.model_name, api_key_name=entry.api_key_name, route=entry.route, streaming=entry.streaming,
        status_code=entry.status_code, error_type=entry.error_type, latency_ms=entry.latency_ms,
        request_body=request, response_body=response, truncated=cut_request or cut_response,
        attempts=entry.attempts, guardrails=entry.guardrails)


class RequestLogWriter:
    def __init__(self, batch_size: int = 200, interval: float = 0.5, max_queue: int = 10_000) -> None:
        self.queue: deque[Entry] = deque()
        self.batch_size = batch_size
        self.interval = interval
        self.max_queue = max_queue
        self.dropped = 0

    def submit(self, entry: Entry) -> None:
        self.queue.append(entry)
        if len(self.queue) > self.max_queue:
            self.queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.error("request log queue full (%d): %d entries dropped so far", self.max_queue, self.dropped)

    def _write(self, batch: list[Entry]) -> None:
        limit = settings.GATEWAY_REQUEST_LOG_MAX_BYTES
        RequestLog.objects.bulk_create([row_of(entry, limit) for entry in batch])

    async def flush(self) -> int:
        written = 0
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
            try:
                await db_task(self._write)(batch)
            except Exception:  # noqa: BLE001 - keep them for the next flush
                logger.exception("writing %d request logs failed", len(batch))
                self.queue.extendleft(reversed(batch))
                return written
            written += len(batch)
        return written

    async def run(self) -> None:
        """Flush every `interval` until cancelled (a batch being written when cancelled still completes in
        its worker thread); the shutdown flushes what is left."""
        while True:
            await asyncio.sleep(self.interval)
            await self.flush()


writer = RequestLogWriter()


def record(ctx, event) -> None:
    """Queue the request log of a finished request (`ctx`: gateway.pipeline.RequestContext) with its usage
    event. Holds references only: encoding and capping happen in the writer."""
    capture = ctx.capture
    response = capture.result() if capture is not None else ctx.answer
    writer.submit(Entry(
        created_at=event.created_at, request_id=ctx.request_id, endpoint_name=ctx.endpoint.name,
        model_name=event.model_name, api_key_name=ctx.key.name, route=ctx.route, streaming=ctx.streaming,
        status_code=ctx.status, error_type=ctx.error_type, latency_ms=event.latency_ms, request=ctx.body,
        response=response, guardrails=ctx.guardrail_results,
        attempts=[dataclasses.asdict(attempt) for attempt in ctx.outcome.attempts]))
