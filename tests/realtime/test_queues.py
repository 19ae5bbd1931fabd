"""The realtime session's queues hold at most their frame count or their byte budget: a client that stops
reading makes the reader wait instead of the gateway buffering large frames."""
from __future__ import annotations

import asyncio

import pytest

from gateway.realtime.queues import FrameQueue


async def test_the_byte_budget_makes_the_next_put_wait():
    queue = FrameQueue(frames=64, max_bytes=1000)
    for _ in range(2):
        queue.put_nowait(b"x" * 500)
    waiting = asyncio.ensure_future(queue.put("y" * 10))
    await asyncio.sleep(0.01)
    assert not waiting.done() and queue.qsize() == 2
    assert queue.get_nowait() == b"x" * 500  # room again: the waiting frame goes in
    await asyncio.wait_for(waiting, 1)
    assert queue.qsize() == 2 and queue.bytes == 510


async def test_a_frame_larger_than_the_budget_passes_alone():
    queue = FrameQueue(frames=64, max_bytes=100)
    queue.put_nowait(b"z" * 1000)
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait(b"a")
    assert queue.get_nowait() == b"z" * 1000 and queue.bytes == 0


async def test_the_frame_count_still_bounds_small_frames():
    queue = FrameQueue(frames=3, max_bytes=10**6)
    for _ in range(3):
        queue.put_nowait("e")
    with pytest.raises(asyncio.QueueFull):
        queue.put_nowait("e")
