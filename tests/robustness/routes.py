"""The gateway's client routes as the robustness suite calls them: how to ask each one (plainly or as a
stream), and how to read its answer, so every failure can be checked in each route's own format."""
from __future__ import annotations

from dataclasses import dataclass

import orjson

from providers.wire import SSEParser

HELLO = [{"role": "user", "content": "hello there"}]


@dataclass(frozen=True)
class Route:
    name: str
    vendor: str          # which provider serves it
    family: str          # the error envelope: openai, anthropic, google
    streams: bool = True
    framing: str = "sse"  # how its stream is framed: sse, or Gemini's JSON array
    speaks: str = ""     # the API called, when the name is not one: a native API served by translation

    @property
    def api(self) -> str:
        return self.speaks or self.name

    def path(self, endpoint: str, stream: bool) -> str:
        if self.api.startswith("gemini"):
            method = "streamGenerateContent" if stream else "generateContent"
            return f"/gateway/gemini/v1beta/models/{endpoint}:{method}" + ("?alt=sse" if self.framing == "sse" and stream else "")
        return {
            "unified-chat": "/gateway/mlflow/v1/chat/completions", "unified-embeddings": "/gateway/mlflow/v1/embeddings",
            "openai-chat": "/gateway/openai/v1/chat/completions", "openai-responses": "/gateway/openai/v1/responses",
            "openai-embeddings": "/gateway/openai/v1/embeddings", "anthropic-messages": "/gateway/anthropic/v1/messages",
        }[self.api]

    def body(self, endpoint: str, stream: bool) -> dict:
        if self.api.startswith("gemini"):
            return {"contents": [{"role": "user", "parts": [{"text": "hello there"}]}]}
        if self.api.endswith("embeddings"):
            return {"model": endpoint, "input": "hello there"}
        if self.api == "openai-responses":
            return {"model": endpoint, "input": "hello there", "stream": stream}
        body = {"model": endpoint, "messages": HELLO, "stream": stream}
        return {**body, "max_tokens": 64} if self.api == "anthropic-messages" else body


ROUTES = [
    Route("unified-chat", "openai", "openai"),
    Route("unified-embeddings", "openai", "openai", streams=False),
    Route("openai-chat", "openai", "openai"),
    Route("openai-responses", "openai", "openai"),
    Route("openai-embeddings", "openai", "openai", streams=False),
    Route("anthropic-messages", "anthropic", "anthropic"),
    Route("gemini-sse", "gemini", "google"),
    Route("gemini-array", "gemini", "google", framing="json-array"),
    # Native APIs on endpoints whose provider does not speak them (gateway/translated.py); groq is chat-only.
    Route("anthropic-on-openai", "openai", "anthropic", speaks="anthropic-messages"),
    Route("gemini-on-anthropic", "anthropic", "google", speaks="gemini-sse"),
    Route("gemini-array-on-openai", "openai", "google", framing="json-array", speaks="gemini-array"),
    Route("responses-on-groq", "groq", "openai", speaks="openai-responses"),
]


def assert_error_envelope(body: bytes, family: str) -> str:
    """The error body of `family` (OpenAI, Anthropic or Google); returns its message."""
    data = orjson.loads(body)
    if family == "anthropic":
        assert data["type"] == "error" and isinstance(data["error"]["type"], str), data
        return data["error"]["message"]
    error = data["error"]
    if family == "google":
        assert isinstance(error["code"], int) and isinstance(error["status"], str), data
    else:
        assert isinstance(error["type"], str) and "param" in error and "code" in error, data
    return error["message"]


def stream_items(route: Route, body: bytes) -> list[tuple[str, object]]:
    """The stream's items as (event name, parsed data); every item must be well-formed for its SDK."""
    if route.framing == "json-array":
        return [("", item) for item in orjson.loads(body)]
    parser = SSEParser()
    events = parser.feed(body)
    assert not parser.close(), f"the stream ends inside an event: {body[-200:]!r}"
    return [(event.event, event.data if event.data == "[DONE]" else orjson.loads(event.data))
            for event in events if event.data is not None]


def ended_with_error(route: Route, items: list[tuple[str, object]]) -> str:
    """The stream ends with its API's own error event (no terminator before it); returns the message."""
    assert items, "an empty stream is not an error report"
    name, last = items[-1]
    assert ("", "[DONE]") not in items
    if route.family == "anthropic" or route.api == "openai-responses":
        assert name == "error" and last["type"] == "error", items[-1]
        return last["error"]["message"] if route.family == "anthropic" else last["message"]
    assert isinstance(last, dict) and "error" in last, items[-1]
    return last["error"]["message"]


def ended_complete(route: Route, items: list[tuple[str, object]]) -> None:
    """The stream carries its API's terminator and no error event."""
    kinds = [data.get("type") if isinstance(data, dict) else data for _, data in items]
    assert not any(isinstance(d, dict) and "error" in d for _, d in items), items
    if route.api in ("unified-chat", "openai-chat"):
        assert kinds[-1] == "[DONE]"
    elif route.api == "openai-responses":
        assert "response.completed" in kinds
    elif route.family == "anthropic":
        assert kinds[-1] == "message_stop"
    else:
        assert items[-1][1]["candidates"][0].get("finishReason") == "STOP"
