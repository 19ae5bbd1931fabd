"""The realtime relay's backpressure: with a client that stops reading, the gateway stops reading the
provider once its bounded queue is full, instead of buffering the provider's frames without limit."""
from __future__ import annotations

import asyncio

from gateway.config.snapshot import ClientKey, EndpointConfig, Link
from gateway.realtime.queues import QUEUE_FRAMES
from gateway.realtime.session import RealtimeSession
from providers.base import ModelTarget
from providers.registry import adapter_class


class EndlessUpstream:
    """A provider socket that always has another audio frame ready, counting how many were taken."""

    def __init__(self) -> None:
        self.taken = 0
        self.sent: list = []

    def __aiter__(self):
        return self

    async def __anext__(self) -> str:
        self.taken += 1
        await asyncio.sleep(0)
        return '{"type": "response.audio.delta", "delta": "AAAA"}'

    async def send(self, frame) -> None:
        self.sent.append(frame)

    async def close(self, code: int = 1000) -> None:
        pass


def session_with(upstream, send_client) -> RealtimeSession:
    adapter = adapter_class("fake")(ModelTarget(id=1, name="fake", provider="fake", model_name="fake-echo"))
    link = Link(adapter, 1.0, 0)
    endpoint = EndpointConfig(id=1, name="voice", routing_strategy="", primaries=(link,), fallbacks=())

    async def close_client(code: int) -> None:
        pass

    return RealtimeSession(endpoint, ClientKey(1, "k", None), link, upstream, send_client, close_client)


async def test_a_client_that_stops_reading_stops_the_provider_reads():
    stuck = asyncio.Event()

    async def never_returns(frame) -> None:
        stuck.set()
        await asyncio.Event().wait()

    upstream = EndlessUpstream()
    session = session_with(upstream, never_returns)
    session.start()
    await asyncio.wait_for(stuck.wait(), 5)
    for _ in range(QUEUE_FRAMES * 4):  # let the reader run as far as it can
        await asyncio.sleep(0)
    # The frame being sent, a full queue, and the one the reader holds waiting for room.
    assert upstream.taken <= QUEUE_FRAMES + 2
    for task in session.tasks:
        task.cancel()
    await asyncio.gather(*session.tasks, return_exceptions=True)


async def test_client_frames_wait_for_room_toward_the_provider():
    upstream = EndlessUpstream()
    blocked = asyncio.Event()

    async def slow_send(frame) -> None:
        blocked.set()
        await asyncio.Event().wait()

    upstream.send = slow_send
    session = session_with(upstream, lambda frame: asyncio.sleep(0))
    session.tasks = [asyncio.create_task(session._write_upstream())]
    for _ in range(QUEUE_FRAMES + 1):  # one in the writer's hands, QUEUE_FRAMES queued
        await session.from_client(b"\x00" * 160)
    await asyncio.wait_for(blocked.wait(), 5)
    extra = asyncio.create_task(session.from_client(b"\x00" * 160))
    for _ in range(20):
        await asyncio.sleep(0)
    assert not extra.done()  # the client's socket is not read any further
    extra.cancel()
    session.tasks[0].cancel()
    await asyncio.gather(extra, *session.tasks, return_exceptions=True)
