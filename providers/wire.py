"""The vendors' wire-format vocabulary, owned here once for every route: the API names, the one incremental
Server-Sent-Events parser, and one usage reader per vendor format.

The unified translators (providers/<name>/translate.py), the native relay (gateway/passthrough.py) and the
guardrails all read streams and usage through this module, so the unified and the native route can never
disagree about where an event ends or what a call cost.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import NamedTuple


class Api(StrEnum):
    """A vendor API a request speaks. Values are what usage records, guardrail formats and adapters'
    `passthrough_apis` use (a StrEnum, so a member equals its string)."""

    OPENAI_CHAT = "openai-chat"
    OPENAI_EMBEDDINGS = "openai-embeddings"
    OPENAI_RESPONSES = "openai-responses"
    ANTHROPIC_MESSAGES = "anthropic-messages"
    ANTHROPIC_COUNT_TOKENS = "anthropic-count-tokens"
    GEMINI_GENERATE = "gemini-generate"
    GEMINI_STREAM = "gemini-stream"
    OPENAI_REALTIME = "openai-realtime"  # realtime WebSocket events (gateway/realtime/)
    PROXY = "proxy"                      # the raw proxy route: bodies the gateway does not model


# --- Server-Sent Events ---------------------------------------------------------------------------------


class SSEEvent(NamedTuple):
    event: str          # the `event:` field, "" when the event had none
    data: str | None    # the `data:` lines joined with "\n"; None for a block without data (comments only)
    raw: bytes          # the block's lines as received (line endings normalised to "\n") plus a blank line


class SSEParser:
    """Incremental parser: `feed` raw bytes as they arrive (events, lines and even a CR LF pair may be split
    across reads), get the complete events out; `close` returns what was pending at the end of the stream.

    Lines end with CR LF, LF or CR. `data:` lines of one event are joined with "\\n"; one space after the
    colon is dropped. Comment lines (":...") and fields other than `event` and `data` are kept only in `raw`.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._lines: list[bytes] = []
        self._event = ""
        self._data: list[str] = []
        self._after_cr = False  # the last read ended with CR: a LF opening the next read belongs to it

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._after_cr and chunk.startswith(b"\n"):
            chunk = chunk[1:]
        self._after_cr = chunk.endswith(b"\r")
        buffer = self._buffer + chunk
        if b"\r" in buffer:
            buffer = buffer.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *lines, self._buffer = buffer.split(b"\n")
        events = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """Events still pending when the stream ended without a final blank line."""
        events = []
        if self._buffer:
            self._line(self._buffer)
            self._buffer = b""
        if self._lines:
            events.append(self._dispatch())
        return events

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            return self._dispatch() if self._lines else None
        self._lines.append(line)
        if line.startswith(b"data:"):
            self._data.append(line[5:].removeprefix(b" ").decode("utf-8", "replace"))
        elif line.startswith(b"event:"):
            self._event = line[6:].strip().decode("utf-8", "replace")
        return None

    def _dispatch(self) -> SSEEvent:
        event = SSEEvent(self._event, "\n".join(self._data) if self._data else None,
                         b"\n".join(self._lines) + b"\n\n")
        self._lines, self._event, self._data = [], "", []
        return event


def sse_event(name: str | None, data: bytes) -> bytes:
    """One Server-Sent Event: an `event:` line when named, the data line, the blank line."""
    return (f"event: {name}\n".encode() if name else b"") + b"data: " + data + b"\n\n"


class SSEFrames:
    """Events out as Server-Sent Events, whole events only (as the parser completed them, line endings
    normalised): an event cut by the end of the stream is never half-sent, so an error event that follows
    starts on a fresh line and every SDK can read it."""

    def relay(self, events: list[SSEEvent]) -> bytes:
        return b"".join(event.raw for event in events)

    def event(self, name: str | None, data: bytes) -> bytes:
        return sse_event(name, data)

    def end(self) -> bytes:
        return b""


class JSONArrayFrames:
    """Events out as the JSON array Gemini streams to clients that did not ask for SSE: one element per
    event's data, sent as it arrives; `end` closes the array."""

    def __init__(self) -> None:
        self.opened = False

    def _element(self, data: bytes) -> bytes:
        out = (b",\r\n" if self.opened else b"[") + data
        self.opened = True
        return out

    def relay(self, events: list[SSEEvent]) -> bytes:
        return b"".join(self._element(event.data.encode()) for event in events if event.data is not None)

    def event(self, name: str | None, data: bytes) -> bytes:
        return self._element(data)

    def end(self) -> bytes:
        return b"]" if self.opened else b"[]"


# --- Errors ---------------------------------------------------------------------------------------------

RETRY_INFO = "type.googleapis.com/google.rpc.RetryInfo"


def google_retry_delay(body: object) -> float | None:
    """Seconds a Google error body (Gemini, Vertex AI) asks the caller to wait: the `retryDelay` of its
    `google.rpc.RetryInfo` detail, a protobuf Duration in JSON ("34s", "0.5s"). Google sends it on 429s
    instead of a `Retry-After` header. None when the body carries none."""
    if isinstance(body, list) and body:
        body = body[0]
    error = body.get("error") if isinstance(body, dict) else None
    details = error.get("details") if isinstance(error, dict) else None
    for detail in details if isinstance(details, list) else ():
        if isinstance(detail, dict) and detail.get("@type") == RETRY_INFO:
            delay = detail.get("retryDelay")
            if isinstance(delay, str) and delay.endswith("s"):
                try:
                    return max(float(delay[:-1]), 0.0)
                except ValueError:
                    return None
    return None


# --- Usage ----------------------------------------------------------------------------------------------


@dataclass
class TokenUsage:
    """What a call cost in tokens: all input (cache reads and writes included), all output (thinking
    included), and the input tokens read from a cache (billed at the cached price)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0

    def as_openai(self, total: int | None = None) -> dict:
        """OpenAI's chat `usage` block: `prompt_tokens` includes every input token, `cached_tokens` the reads."""
        return {"prompt_tokens": self.input_tokens, "completion_tokens": self.output_tokens,
                "total_tokens": self.input_tokens + self.output_tokens if total is None else total,
                "prompt_tokens_details": {"cached_tokens": self.cached_tokens}}


def _int(value: object) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def _cached_in_details(usage: dict | None, input_key: str, output_key: str, details_key: str) -> TokenUsage:
    if not isinstance(usage, dict):
        return TokenUsage()
    details = usage.get(details_key)
    cached = details.get("cached_tokens") if isinstance(details, dict) else 0
    return TokenUsage(_int(usage.get(input_key)), _int(usage.get(output_key)), _int(cached))


def openai_usage(usage: dict | None) -> TokenUsage:
    """OpenAI chat and embeddings `usage` (every unified answer carries this shape too)."""
    return _cached_in_details(usage, "prompt_tokens", "completion_tokens", "prompt_tokens_details")


def responses_usage(usage: dict | None) -> TokenUsage:
    """OpenAI Responses `usage`."""
    return _cached_in_details(usage, "input_tokens", "output_tokens", "input_tokens_details")


def cache_split_usage(input_tokens: object, cache_read: object, cache_write: object, output: object) -> TokenUsage:
    """For vendors that count cache reads and writes apart from the other input tokens (Anthropic, Bedrock's
    Converse): every one of them is input, and the reads are the cached tokens."""
    return TokenUsage(_int(input_tokens) + _int(cache_read) + _int(cache_write), _int(output), _int(cache_read))


def anthropic_usage(usage: dict | None) -> TokenUsage:
    """Anthropic Messages `usage` (for a stream: the merge of its events' usage, see `merge_usage`)."""
    if not isinstance(usage, dict):
        return TokenUsage()
    return cache_split_usage(usage.get("input_tokens"), usage.get("cache_read_input_tokens"),
                             usage.get("cache_creation_input_tokens"), usage.get("output_tokens"))


def merge_usage(total: dict, update: dict | None) -> dict:
    """Anthropic's stream reports usage in `message_start` and cumulatively in `message_delta`: later
    values replace earlier ones, and fields an event leaves out keep their value."""
    for key, value in (update if isinstance(update, dict) else {}).items():
        if isinstance(value, int) and not isinstance(value, bool):
            total[key] = value
    return total


def gemini_usage(meta: dict | None) -> TokenUsage:
    """Gemini `usageMetadata`. Tool-use prompt tokens are input. Thinking tokens are output; a response
    whose prompt + candidates already equal its total counts them inside the candidates, so they are not
    added twice."""
    if not isinstance(meta, dict):
        return TokenUsage()
    prompt = _int(meta.get("promptTokenCount")) + _int(meta.get("toolUsePromptTokenCount"))
    candidates = _int(meta.get("candidatesTokenCount"))
    total = meta.get("totalTokenCount")
    includes_thoughts = total is not None and prompt + candidates == _int(total)
    output = candidates if includes_thoughts else candidates + _int(meta.get("thoughtsTokenCount"))
    return TokenUsage(prompt, output, _int(meta.get("cachedContentTokenCount")))


def cohere_usage(usage: dict | None) -> TokenUsage:
    """Cohere v2 `usage`: `billed_units` (what Cohere charges for, without the tokens it adds itself), else
    `tokens`; `cached_tokens` are input read from its cache."""
    if not isinstance(usage, dict):
        return TokenUsage()
    counts = usage.get("billed_units") if isinstance(usage.get("billed_units"), dict) else usage.get("tokens")
    if not isinstance(counts, dict):
        return TokenUsage()
    return TokenUsage(_int(counts.get("input_tokens")), _int(counts.get("output_tokens")),
                      _int(usage.get("cached_tokens")))


def answer_usage(api: str, body: dict | list | None) -> TokenUsage:
    """Token usage from a native non-streaming answer of `api`."""
    if not isinstance(body, dict):
        return TokenUsage()
    if api in (Api.OPENAI_CHAT, Api.OPENAI_EMBEDDINGS):
        return openai_usage(body.get("usage"))
    if api == Api.OPENAI_RESPONSES:
        return responses_usage(body.get("usage"))
    if api == Api.ANTHROPIC_MESSAGES:
        return anthropic_usage(body.get("usage"))
    if api == Api.GEMINI_GENERATE:
        return gemini_usage(body.get("usageMetadata"))
    return TokenUsage()
