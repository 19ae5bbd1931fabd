"""The bounded queue between a realtime session's reader and writer tasks, counted in bytes as well as
frames: 64 frames of up to 16 MiB each would let one session that stops reading hold 2 GiB."""
from __future__ import annotations

import asyncio

QUEUE_FRAMES = 64
QUEUE_BYTES = 4 * 1024 * 1024


def size_of(item) -> int:
    return len(item) if isinstance(item, (str, bytes)) else 0


class FrameQueue(asyncio.Queue):
    """Full at `frames` frames or `max_bytes` bytes, whichever comes first, so a reader waits (backpressure)
    instead of buffering. A frame larger than the whole budget still passes alone, when the queue is empty."""

    def __init__(self, frames: int = QUEUE_FRAMES, max_bytes: int = QUEUE_BYTES) -> None:
        super().__init__(frames)
        self.max_bytes = max_bytes
        self.bytes = 0

    def full(self) -> bool:
        return super().full() or (self.bytes > 0 and self.bytes >= self.max_bytes)

    def _put(self, item) -> None:
        self.bytes += size_of(item)
        super()._put(item)

    def _get(self):
        item = super()._get()
        self.bytes -= size_of(item)
        return item
