"""After-stage guardrails over a native Server-Sent-Events stream, for routes that relay a provider's
stream (passthrough): `SSEGuard` takes the events the relay parsed (providers/wire.py), runs them through a
`StreamFilter` and writes them back, chunk by chunk.

Events that are not JSON (comments, keep-alives) pass through untouched. The OpenAI `data: [DONE]`
terminator, like each format's terminal event, is released only by `finish`, after the whole-text
verdicts; when a guardrail blocks, the relay sends the API's error event instead and ends the stream.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import orjson

from guardrails.text import canonical
from providers.wire import Api, SSEEvent, SSEFrames

if TYPE_CHECKING:
    from guardrails.streams import StreamFilter

# Formats whose events carry an `event:` line equal to their `type`.
NAMED_EVENTS = frozenset({Api.ANTHROPIC_MESSAGES, Api.OPENAI_RESPONSES})


class SSEGuard:
    """`feed` the events of each upstream chunk and send what it returns; at the end send `await finish()`.
    Both raise GatewayError (GuardrailBlocked, ServiceUnavailable) when the stream must end with its error
    event."""

    def __init__(self, stream_filter: "StreamFilter", fmt: str, frames=None) -> None:
        self.filter = stream_filter
        self.fmt = canonical(fmt)
        self.frames = frames or SSEFrames()  # how events go out: SSE, or Gemini's JSON array
        self.saw_done = False

    def encode(self, event: dict) -> bytes:
        name = event.get("type") if self.fmt in NAMED_EVENTS else None
        return self.frames.event(name if isinstance(name, str) else None, orjson.dumps(event))

    def feed(self, events: list[SSEEvent]) -> bytes:
        return b"".join(self._filtered(event) for event in events)

    async def finish(self) -> bytes:
        out = b"".join(self.encode(event) for event in await self.filter.finish())
        return out + (self.frames.event(None, b"[DONE]") if self.saw_done else b"")

    def _filtered(self, raw: SSEEvent) -> bytes:
        if raw.data == "[DONE]":
            self.saw_done = True
            return b""
        if raw.data is None:
            return self.frames.relay([raw])
        try:
            event = orjson.loads(raw.data)
        except orjson.JSONDecodeError:
            return self.frames.relay([raw])
        if not isinstance(event, dict):
            return self.frames.relay([raw])
        return b"".join(self.encode(out) for out in self.filter.feed(event))
