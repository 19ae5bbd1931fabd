"""Usage records: built at the end of each request, queued in memory, written in batches off the request
path, and drained on shutdown so a graceful stop loses none."""
from __future__ import annotations

import asyncio
import logging
from collections import deque
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from asgiref.sync import sync_to_async

from gateway.models import UsageRecord
from providers.base import Prices

logger = logging.getLogger(__name__)

MILLION = Decimal(1_000_000)


@dataclass
class TokenUsage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    @classmethod
    def from_openai(cls, usage: dict | None) -> "TokenUsage":
        """OpenAI chat/embeddings usage, which every unified response carries."""
        if not isinstance(usage, dict):
            return cls()
        details = usage.get("prompt_tokens_details") or {}
        return cls(int(usage.get("prompt_tokens") or 0), int(usage.get("completion_tokens") or 0),
                   int((details.get("cached_tokens") if isinstance(details, dict) else 0) or 0))


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


class UsageWriter:
    """Batches usage events to the database. `submit` is O(1) and never blocks the request."""

    def __init__(self, batch_size: int = 500, interval: float = 0.5, max_retries: int = 5) -> None:
        self.queue: deque[UsageEvent] = deque()
        self.batch_size = batch_size
        self.interval = interval
        self.max_retries = max_retries
        self._wakeup: asyncio.Event | None = None

    def submit(self, event: UsageEvent) -> None:
        self.queue.append(event)
        if self._wakeup is not None and len(self.queue) >= self.batch_size:
            self._wakeup.set()

    def _write(self, batch: list[UsageEvent]) -> None:
        UsageRecord.objects.bulk_create([UsageRecord(**asdict(e)) for e in batch])

    async def flush(self) -> int:
        """Write everything queued now; a failing batch goes back to the front of the queue."""
        written = 0
        while self.queue:
            batch = [self.queue.popleft() for _ in range(min(self.batch_size, len(self.queue)))]
            for attempt in range(self.max_retries):
                try:
                    await sync_to_async(self._write, thread_sensitive=False)(batch)
                    written += len(batch)
                    break
                except Exception:  # noqa: BLE001 - the database may be briefly unavailable; retry, then keep
                    logger.exception("writing %d usage records failed (attempt %d)", len(batch), attempt + 1)
                    await asyncio.sleep(min(0.2 * 2**attempt, 2))
            else:
                self.queue.extendleft(reversed(batch))
                return written
        return written

    async def run(self) -> None:
        self._wakeup = asyncio.Event()
        try:
            while True:
                try:
                    await asyncio.wait_for(self._wakeup.wait(), self.interval)
                except asyncio.TimeoutError:
                    pass
                self._wakeup.clear()
                await self.flush()
        finally:
            self._wakeup = None

    def pending(self) -> int:
        return len(self.queue)


writer = UsageWriter()


def now() -> datetime:
    return datetime.now(timezone.utc)
