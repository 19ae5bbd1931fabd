"""What the gateway needs to know about each native API's stream while relaying it byte for byte: where the
usage is, what the terminator looks like, and how to write an error event the vendor's SDK understands.

Watchers read a copy of the bytes on the side; they never hold a stream back.
"""
from __future__ import annotations

import orjson

from gateway.usage.records import TokenUsage, delta_chars


class SSEParser:
    """Incremental Server-Sent Events parser: feed raw bytes as they arrive, get complete (event, data)
    pairs out. Lines split across network chunks are kept until they complete."""

    def __init__(self) -> None:
        self._buffer = b""
        self._event = ""
        self._data: list[str] = []

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        self._buffer += chunk
        events = []
        while True:
            newline = self._buffer.find(b"\n")
            if newline < 0:
                return events
            line = self._buffer[:newline].rstrip(b"\r").decode("utf-8", "replace")
            self._buffer = self._buffer[newline + 1:]
            if not line:
                if self._data:
                    events.append((self._event, "\n".join(self._data)))
                self._event, self._data = "", []
            elif line.startswith("data:"):
                self._data.append(line[6:] if line.startswith("data: ") else line[5:])
            elif line.startswith("event:"):
                self._event = line[6:].strip()

    def close(self) -> list[tuple[str, str]]:
        """Events still pending when the stream ended without a final blank line."""
        events = self.feed(b"\n\n") if self._buffer else []
        if self._data:
            events.append((self._event, "\n".join(self._data)))
            self._event, self._data = "", []
        return events


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
        self.parser = SSEParser()
        self.tokens = TokenUsage()
        self.text_chars = 0
        self.complete = False
        self.errored = False

    def feed(self, chunk: bytes) -> list[tuple[str, str]]:
        events = self.parser.feed(chunk)
        for event, data in events:
            self.on_event(event, data)
        return events

    def finish(self) -> None:
        for event, data in self.parser.close():
            self.on_event(event, data)

    def on_event(self, event: str, data: str) -> None:
        raise NotImplementedError

    def error_event(self, status: int, message: str, error_type: str) -> bytes:
        raise NotImplementedError


class OpenAIChatWatcher(StreamWatcher):
    def on_event(self, event: str, data: str) -> None:
        if data == "[DONE]":
            self.complete = True
            return
        payload = _json(data)
        if payload is None:
            return
        if "error" in payload and "choices" not in payload:
            self.errored = True
        self.text_chars += delta_chars(payload)
        if payload.get("usage"):
            self.tokens = TokenUsage.from_openai(payload["usage"])

    def error_event(self, status: int, message: str, error_type: str) -> bytes:
        body = {"error": {"message": message, "type": error_type, "param": None, "code": status}}
        return b"data: " + orjson.dumps(body) + b"\n\n"


def responses_usage(usage: dict | None) -> TokenUsage:
    if not isinstance(usage, dict):
        return TokenUsage()
    details = usage.get("input_tokens_details") or {}
    return TokenUsage(int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0),
                      int(details.get("cached_tokens") or 0))


class OpenAIResponsesWatcher(StreamWatcher):
    TERMINAL = {"response.completed", "response.incomplete"}

    def on_event(self, event: str, data: str) -> None:
        payload = _json(data)
        if payload is None:
            return
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

    def error_event(self, status: int, message: str, error_type: str) -> bytes:
        body = {"type": "error", "code": error_type, "message": message, "param": None}
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


def anthropic_usage(usage: dict | None, previous: TokenUsage | None = None) -> TokenUsage:
    """Anthropic counts cache reads and writes apart from `input_tokens`; all of them are input."""
    previous = previous or TokenUsage()
    if not isinstance(usage, dict):
        return previous
    cache_read = int(usage.get("cache_read_input_tokens") or 0)
    cache_write = int(usage.get("cache_creation_input_tokens") or 0)
    has_input = "input_tokens" in usage and usage.get("input_tokens") is not None
    input_tokens = int(usage["input_tokens"]) + cache_read + cache_write if has_input else previous.input_tokens
    return TokenUsage(input_tokens, int(usage.get("output_tokens") or previous.output_tokens),
                      cache_read if has_input else previous.cached_tokens)


class AnthropicWatcher(StreamWatcher):
    def on_event(self, event: str, data: str) -> None:
        payload = _json(data)
        if payload is None:
            return
        kind = payload.get("type") or event
        if kind == "message_start":
            self.tokens = anthropic_usage((payload.get("message") or {}).get("usage"))
        elif kind == "content_block_delta":
            delta = payload.get("delta") or {}
            self.text_chars += len(delta.get("text") or delta.get("partial_json") or delta.get("thinking") or "")
        elif kind == "message_delta":
            self.tokens = anthropic_usage(payload.get("usage"), self.tokens)
        elif kind == "message_stop":
            self.complete = True
        elif kind == "error":
            self.errored = True

    def error_event(self, status: int, message: str, error_type: str) -> bytes:
        from gateway.envelopes import ANTHROPIC_TYPES

        body = {"type": "error", "error": {"type": ANTHROPIC_TYPES.get(status, "api_error"), "message": message}}
        return b"event: error\ndata: " + orjson.dumps(body) + b"\n\n"


def gemini_usage(meta: dict | None) -> TokenUsage:
    if not isinstance(meta, dict):
        return TokenUsage()
    return TokenUsage(int(meta.get("promptTokenCount") or 0),
                      int(meta.get("candidatesTokenCount") or 0) + int(meta.get("thoughtsTokenCount") or 0),
                      int(meta.get("cachedContentTokenCount") or 0))


class GeminiWatcher(StreamWatcher):
    def on_event(self, event: str, data: str) -> None:
        payload = _json(data)
        if payload is None:
            return
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

    def error_event(self, status: int, message: str, error_type: str) -> bytes:
        from gateway.envelopes import GOOGLE_STATUS

        body = {"error": {"code": status, "message": message, "status": GOOGLE_STATUS.get(status, "INTERNAL")}}
        return b"data: " + orjson.dumps(body) + b"\n\n"


WATCHERS: dict[str, type[StreamWatcher]] = {
    "openai-chat": OpenAIChatWatcher,
    "openai-responses": OpenAIResponsesWatcher,
    "anthropic-messages": AnthropicWatcher,
    "gemini-stream": GeminiWatcher,
}


def usage_of(api: str, body: dict | list | None) -> TokenUsage:
    """Token usage from a native non-streaming answer."""
    if not isinstance(body, dict):
        return TokenUsage()
    if api in ("openai-chat", "openai-embeddings"):
        return TokenUsage.from_openai(body.get("usage"))
    if api == "openai-responses":
        return responses_usage(body.get("usage"))
    if api == "anthropic-messages":
        return anthropic_usage(body.get("usage"))
    if api == "gemini-generate":
        return gemini_usage(body.get("usageMetadata"))
    return TokenUsage()
