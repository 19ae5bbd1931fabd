"""After-stage guardrails over a raw Server-Sent-Events byte stream, for routes that relay a provider's
native stream (passthrough): `SSEGuard` parses the events, runs them through a `StreamFilter` and writes
them back, chunk by chunk.

Events that are not JSON (comments, keep-alives) pass through untouched. The OpenAI `data: [DONE]`
terminator, like each format's terminal event, is released only by `finish`, after the whole-text
verdicts; when a guardrail blocks, the relay sends `error(exc)` instead and ends the stream.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

from guardrails.text import ANTHROPIC_MESSAGES, OPENAI_RESPONSES, canonical

if TYPE_CHECKING:
    from gateway.errors import GatewayError
    from guardrails.streams import StreamFilter

DONE = b"data: [DONE]\n\n"
# Formats whose events carry an `event:` line equal to their `type`.
NAMED_EVENTS = frozenset({ANTHROPIC_MESSAGES, OPENAI_RESPONSES})


@dataclass(frozen=True)
class RawEvent:
    raw: bytes              # the event as received, with its blank-line terminator
    data: str | None        # the joined `data:` lines, None when there were none


class SSEParser:
    def __init__(self) -> None:
        self.buffer = b""

    def feed(self, chunk: bytes) -> list[RawEvent]:
        self.buffer = (self.buffer + chunk).replace(b"\r\n", b"\n")
        *blocks, self.buffer = self.buffer.split(b"\n\n")
        return [self._event(block) for block in blocks if block]

    def close(self) -> list[RawEvent]:
        rest, self.buffer = self.buffer.strip(b"\n"), b""
        return [self._event(rest)] if rest else []

    @staticmethod
    def _event(block: bytes) -> RawEvent:
        data = [line[5:].removeprefix(b" ") for line in block.split(b"\n") if line.startswith(b"data:")]
        return RawEvent(block + b"\n\n", b"\n".join(data).decode("utf-8", "replace") if data else None)


class SSEGuard:
    """`feed` each upstream chunk and send what it returns; at the end send `await finish()`. Both raise
    GatewayError (GuardrailBlocked, ServiceUnavailable) when the stream must end with `error(exc)`."""

    def __init__(self, stream_filter: "StreamFilter", fmt: str) -> None:
        self.filter = stream_filter
        self.fmt = canonical(fmt)
        self.parser = SSEParser()
        self.saw_done = False

    def encode(self, event: dict) -> bytes:
        name = event.get("type") if self.fmt in NAMED_EVENTS else None
        prefix = f"event: {name}\n".encode() if isinstance(name, str) else b""
        return prefix + b"data: " + orjson.dumps(event) + b"\n\n"

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._filtered(raw) for raw in self.parser.feed(chunk))

    async def finish(self) -> bytes:
        out = b"".join(self._filtered(raw) for raw in self.parser.close())
        out += b"".join(self.encode(event) for event in await self.filter.finish())
        return out + (DONE if self.saw_done else b"")

    def error(self, exc: "GatewayError") -> bytes:
        return self.encode(self.filter.error_event(exc))

    def _filtered(self, raw: RawEvent) -> bytes:
        if raw.data == "[DONE]":
            self.saw_done = True
            return b""
        if raw.data is None:
            return raw.raw
        try:
            event = orjson.loads(raw.data)
        except orjson.JSONDecodeError:
            return raw.raw
        if not isinstance(event, dict):
            return raw.raw
        return b"".join(self.encode(out) for out in self.filter.feed(event))
