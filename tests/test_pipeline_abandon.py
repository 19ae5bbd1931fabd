"""A streamed response the client leaves is still accounted for, even when its first step never ran."""
from __future__ import annotations

from gateway import pipeline
from gateway.usage import records as usage
from gateway.context import RequestContext
from gateway.config.snapshot import ClientKey, EndpointConfig


def _context() -> RequestContext:
    endpoint = EndpointConfig(id=1, name="chat", routing_strategy="", primaries=(), fallbacks=())
    return RequestContext("unified/chat", endpoint, ClientKey(1, "team", None), streaming=True)


async def test_a_stream_left_before_its_first_step_is_recorded_as_client_closed(monkeypatch):
    recorded: list[usage.UsageEvent] = []
    monkeypatch.setattr(usage.writer, "submit", recorded.append)
    ctx = _context()

    async def never_started():
        yield b"data: never sent\n\n"

    await pipeline.abandon(ctx, never_started())
    assert [(e.endpoint_name, e.status_code, e.error_type) for e in recorded] == [("chat", 499, "client_closed")]


async def test_a_finished_stream_is_not_recorded_twice(monkeypatch):
    recorded: list[usage.UsageEvent] = []
    monkeypatch.setattr(usage.writer, "submit", recorded.append)
    ctx = _context()

    async def complete():
        try:
            yield b"data: [DONE]\n\n"
        finally:
            pipeline.finish(ctx)

    stream = complete()
    assert [chunk async for chunk in stream] == [b"data: [DONE]\n\n"]
    await pipeline.abandon(ctx, stream)
    assert [e.status_code for e in recorded] == [200]
