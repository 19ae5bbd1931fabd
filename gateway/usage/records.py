"""Usage records: built at the end of each request, queued in memory, written in batches off the request
path, and drained on shutdown so a graceful stop loses none."""
from __future__ import annotations

import asyncio
import dataclasses
import functools
import logging
import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from django.db import DataError, IntegrityError, connection, transaction
from django.db.models import Field

from gateway.models import ApiKey, UsageRecord
from gateway.db import db_task
from providers.base import Prices
from providers.wire import TokenUsage

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)


def cost_of(usage: TokenUsage, prices: Prices) -> Decimal | None:
    """USD, or None when a needed price is unknown. Cached input tokens are billed at the cached price
    where there is one, else at the input price."""
    if prices.input is None or prices.output is None:
        return None
    cached_price = prices.cached_input if prices.cached_input is not None else prices.input
    uncached = max(usage.input_tokens - usage.cached_tokens, 0)
    total = uncached * prices.input + usage.cached_tokens * cached_price + usage.output_tokens * prices.output
    return total / MILLION


@dataclass
class UsageEvent:
    created_at: datetime
    endpoint_name: str
    route: str
    request_id: str = ""
    model_name: str = ""
    provider: str = ""
    api_key_name: str = ""
    streaming: bool = False
    status_code: int = 200
    error_type: str = ""
    attempts: int = 1
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost_usd: Decimal | None = None
    latency_ms: float = 0.0
    ttfb_ms: float | None = None
    overhead_ms: float = 0.0
    guardrails: list = field(default_factory=list)
    usage_estimated: bool = False
    user_name: str = ""


def stream_usage(tokens: TokenUsage, relayed_chars: int, input_estimate: Callable[[], int], *,
                 complete: bool) -> tuple[TokenUsage, bool]:
    """A started stream's usage, and whether it had to be estimated. The provider bills a stream the
    client abandoned (or that broke) for what it produced, but may never have sent its usage; then input
    comes from the request and output from the text relayed, at about four characters per token, taking
    whichever is higher where the provider did report something."""
    if complete and tokens != TokenUsage():
        return tokens, False
    input_tokens = tokens.input_tokens or input_estimate()
    output_tokens = max(tokens.output_tokens, math.ceil(relayed_chars / 4))
    estimated = (input_tokens, output_tokens) != (tokens.input_tokens, tokens.output_tokens)
    return TokenUsage(input_tokens, output_tokens, tokens.cached_tokens), estimated


def delta_chars(chunk: dict) -> int:
    """Characters of text and tool-call arguments in one OpenAI stream chunk."""
    total = 0
    choices = chunk.get("choices")
    for choice in choices if isinstance(choices, list) else ():
        delta = choice.get("delta") if isinstance(choice, dict) else None
        if not isinstance(delta, dict):
            continue
        content = delta.get("content")
        total += len(content) if isinstance(content, str) else 0
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            function = call.get("function") if isinstance(call, dict) else None
            arguments = function.get("arguments") if isinstance(function, dict) else None
            total += len(arguments) if isinstance(arguments, str) else 0
    return total


@functools.cache
def _insert_plan(vendor: str) -> tuple[str, list[Field]]:
    """The INSERT statement for UsageRecord rows and the fields in its column order, built once."""
    fields = [UsageRecord._meta.get_field(f.name) for f in dataclasses.fields(UsageEvent)]
    quote = connection.ops.quote_name
    columns = ", ".join(quote(f.column) for f in fields)
    placeholders = ", ".join(["%s"] * len(fields))
    return f"INSERT INTO {quote(UsageRecord._meta.db_table)} ({columns}) VALUES ({placeholders})", fields


class UsageWriter:
    """Batches usage events to the database, and the clients' keys' last-use times with them. `submit`
    and `touch` are O(1) and never block the request. If the database stays down, the queue is capped at
    `max_queue` events (the oldest are dropped, and logged) so memory stays bounded."""

    def __init__(self, batch_size: int = 500, interval: float = 0.5, max_retries: int = 5,
                 max_queue: int = 200_000, retry_delay: float = 0.2) -> None:
        self.queue: deque[UsageEvent] = deque()
        self.batch_size = batch_size
        self.interval = interval
        self.max_retries = max_retries
        self.max_queue = max_queue
        self.retry_delay = retry_delay
        self.dropped = 0
        self.key_uses: dict[int, datetime] = {}
        self._wakeup: asyncio.Event | None = None
        self._stopping = False

    def submit(self, event: UsageEvent) -> None:
        self.queue.append(event)
        if len(self.queue) > self.max_queue:
            self.queue.popleft()
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                logger.error("usage queue full (%d): %d records dropped so far", self.max_queue, self.dropped)
        if self._wakeup is not None and len(self.queue) >= self.batch_size:
            self._wakeup.set()

    def touch(self, key_id: int, at: datetime) -> None:
        """Remember that a key was used; written with the next flush as a queryset update (no signals,
        so no configuration-version bump)."""
        self.key_uses[key_id] = at

    def _write(self, batch: list[UsageEvent]) -> None:
        """One prepared INSERT run for the whole batch. The writer shares the GIL with the event loop, and
        building model instances for bulk_create cost the benchmark a tenth of the gateway's CPU."""
        sql, fields = _insert_plan(connection.vendor)
        rows = [tuple(f.get_db_prep_save(getattr(event, f.attname), connection) for f in fields) for event in batch]
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.executemany(sql, rows)

    def _write_each(self, batch: list[UsageEvent]) -> tuple[int, list[UsageEvent]]:
        """Write a batch the database refused as invalid record by record, dropping (and logging) the
        records it can never take, so one bad record does not hold back every record queued after it.
        Returns how many were written and, if the database fails otherwise midway, the records left."""
        written = 0
        for index, event in enumerate(batch):
            try:
                self._write([event])
                written += 1
            except (DataError, IntegrityError):
                logger.exception("usage record of request %s was refused by the database and dropped: %r",
                                 event.request_id, event)
            except Exception:  # noqa: BLE001 - the database went away: keep the rest for the next flush
                logger.exception("writing usage records one by one failed")
                return written, batch[index:]
        return written, []

    def _write_key_uses(self, uses: dict[int, datetime]) -> None:
        for key_id, at in uses.items():
            ApiKey.objects.filter(pk=key_id).update(last_used_at=at)

    async def flush_key_uses(self) -> None:
        uses, self.key_uses = self.key_uses, {}
        if not uses:
            return
        try:
            await db_task(self._write_key_uses)(uses)
        except Exception:  # noqa: BLE001 - a last-use time is informational; keep the newest for next time
            logger.exception("updating last-use times of %d keys failed", len(uses))
            for key_id, at in uses.items():
                self.key_uses[key_id] = max(at, self.key_uses.get(key_id, at))

    async def flush(self) -> int:
        """Write everything queued now; a failing batch goes back to the front of the queue."""
        await self.flush_key_uses()
        written = 0
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
            for attempt in range(self.max_retries):
                try:
                    await db_task(self._write)(batch)
                    written += len(batch)
                    break
                except (DataError, IntegrityError):  # no retry makes such a batch valid: write what is valid
                    done, batch = await db_task(self._write_each)(batch)
                    written += done
                    if not batch:
                        break
                except Exception:  # noqa: BLE001 - the database may be briefly unavailable; retry, then keep
                    logger.exception("writing %d usage records failed (attempt %d)", len(batch), attempt + 1)
                    await asyncio.sleep(min(self.retry_delay * 2**attempt, 2))
            else:
                self.queue.extendleft(reversed(batch))
                return written
        return written

    async def run(self) -> None:
        """Flush every `interval` (sooner when a batch is full) until `stop`. Stopping is cooperative:
        cancelling a flush midway could lose the batch being written."""
        self._wakeup = asyncio.Event()
        self._stopping = False
        try:
            while not self._stopping:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self.interval)
                except asyncio.TimeoutError:
                    pass
                self._wakeup.clear()
                await self.flush()
        finally:
            self._wakeup = None

    async def stop(self, task: asyncio.Task, timeout: float = 30.0) -> None:
        """End `run` after its current flush; the caller then flushes what is left."""
        self._stopping = True
        if self._wakeup is not None:
            self._wakeup.set()
        done, _ = await asyncio.wait([task], timeout=timeout)
        if not done:
            task.cancel()

    def pending(self) -> int:
        return len(self.queue)


writer = UsageWriter()


def now() -> datetime:
    return datetime.now(timezone.utc)
