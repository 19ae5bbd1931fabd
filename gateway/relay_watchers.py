"""What the gateway reads from each native API's stream while relaying it byte for byte: the usage (through
the vendor's one usage reader in providers/wire.py), whether the terminator arrived, and how much text was
sent (to estimate usage the provider never reported).

The relay parses each chunk once and hands the events to its watcher; watchers never hold a stream back.
"""
from __future__ import annotations

import orjson

from gateway.usage.records import delta_chars
from providers.wire import (Api, SSEEvent, TokenUsage, anthropic_usage, gemini_usage, merge_usage, openai_usage,
                            responses_usage)


def _json(data: str) -> dict | None:
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


class StreamWatcher:
    """Base: subclasses interpret one API's events. `complete` turns true at the terminator; `errored`
    when the upstream itself sent an error event (which is relayed as is). `text_chars` counts the
    generated text seen, to estimate usage when a stream ends before the provider reports it."""

    def __init__(self) -> None:
        self.tokens = TokenUsage()
        self.text_chars = 0
        self.complete = False
        self.errored = False

    def observe(self, events: list[SSEEvent]) -> int:
        """Read `events`; returns how many of them were readable. An event whose data is not a JSON object
        is where the stream broke: the relay sends the events before it, then the API's error event. An
        object of an unexpected shape is relayed as it came, only not counted."""
        for index, event in enumerate(events):
            if event.data is None:
                continue
            try:
                readable = self.on_event(event.event, event.data)
            except (AttributeError, TypeError, ValueError):
                readable = True
            if not readable:
                return index
        return len(events)

    def on_event(self, event: str, data: str) -> bool:
        """Interpret one event's data; False when it is not a JSON object."""
        raise NotImplementedError


class OpenAIChatWatcher(StreamWatcher):
    def on_event(self, event: str, data: str) -> bool:
        if data == "[DONE]":
            self.complete = True
            return True
        payload = _json(data)
        if payload is None:
            return False
        if "error" in payload and "choices" not in payload:
            self.errored = True
        self.text_chars += delta_chars(payload)
        if payload.get("usage"):
            self.tokens = openai_usage(payload["usage"])
        return True


class OpenAIResponsesWatcher(StreamWatcher):
    TERMINAL = {"response.completed", "response.incomplete"}

    def on_event(self, event: str, data: str) -> bool:
        payload = _json(data)
        if payload is None:
            return False
        kind = payload.get("type") or event
        if kind in ("response.output_text.delta", "response.function_call_arguments.delta"):
            self.text_chars += len(payload.get("delta") or "")
        if kind in self.TERMINAL:
            self.complete = True
        elif kind in ("error", "response.failed"):
            self.errored = True
        response = payload.get("response")
        if isinstance(response, dict) and response.get("usage"):
            self.tokens = responses_usage(response["usage"])
        return True


class AnthropicWatcher(StreamWatcher):
    def __init__(self) -> None:
        super().__init__()
        self.usage: dict = {}

    def on_event(self, event: str, data: str) -> bool:
        payload = _json(data)
        if payload is None:
            return False
        kind = payload.get("type") or event
        if kind == "message_start":
            self.tokens = anthropic_usage(merge_usage(self.usage, (payload.get("message") or {}).get("usage")))
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            self.text_chars += len(delta.get("text") or delta.get("partial_json") or delta.get("thinking") or "")
        elif kind == "message_delta":
            self.tokens = anthropic_usage(merge_usage(self.usage, payload.get("usage")))
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.errored = True
        return True


class GeminiWatcher(StreamWatcher):
    def on_event(self, event: str, data: str) -> bool:
        payload = _json(data)
        if payload is None:
            return False
        if "error" in payload:
            self.errored = True
        if payload.get("usageMetadata"):
            self.tokens = gemini_usage(payload["usageMetadata"])
        for candidate in payload.get("candidates") or ():
            parts = ((candidate.get("content") or {}).get("parts") or ()) if isinstance(candidate, dict) else ()
            self.text_chars += sum(len(p.get("text") or "") for p in parts if isinstance(p, dict))
        if any(c.get("finishReason") for c in payload.get("candidates") or [] if isinstance(c, dict)):
            self.complete = True
        if (payload.get("promptFeedback") or {}).get("blockReason"):
            self.complete = True
        return True


WATCHERS: dict[Api, type[StreamWatcher]] = {
    Api.OPENAI_CHAT: OpenAIChatWatcher,
    Api.OPENAI_RESPONSES: OpenAIResponsesWatcher,
    Api.ANTHROPIC_MESSAGES: AnthropicWatcher,
    Api.GEMINI_STREAM: GeminiWatcher,
}
