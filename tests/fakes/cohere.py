"""Fake Cohere v2 API on 127.0.0.1 replaying recorded payloads: `/v2/chat` (JSON, or its SSE events, each
with an `event:` line and a JSON `data` carrying the same `type`) and `/v2/embed`. The answers are the
examples of Cohere's own API reference (its OpenAPI spec), the same payloads the conformance table replays:
tests/fixtures/conformance/cohere.json, where each case cites its source. `RECORDED` names them.

A chat offering tools (not `tool_choice: NONE`) whose last message is the user's gets the recorded tool-call
answer (two calls, after Cohere's thinking or tool plan), any other chat the recorded text answer, streamed
when `stream` is set. `drop_arguments` replays the recorded tool-call stream without its `tool-call-delta`
events, as Cohere streams a call that has no arguments; `broken_event` puts an unreadable event after the
first. Requests are checked as Cohere checks them: the bearer key, the required fields, no unknown field;
errors come as `{"message": ...}`, with Cohere's own message where its API reference ("Errors") documents
one.
"""
from __future__ import annotations

import json
from pathlib import Path

from tests.fakes.base import FakeUpstream, Recorded, Reply, sse

_TABLE = Path(__file__).resolve().parents[1] / "fixtures" / "conformance" / "cohere.json"
_CASES = {case["id"]: case for case in json.loads(_TABLE.read_text())["cases"]}
# Recorded answers, by what was asked; the conformance cases they come from cite their sources.
RECORDED = {
    "chat": _CASES["chat-text"]["upstream"]["json"],
    "chat_tool_calls": _CASES["tool-calls-after-thinking"]["upstream"]["json"],
    "chat_stream": _CASES["stream-text"]["upstream"]["sse"],
    "chat_stream_tool_calls": _CASES["stream-tool-calls"]["upstream"]["sse"],
    "embed": _CASES["embed"]["upstream"]["json"],
}
CHAT_FIELDS = {"model", "messages", "tools", "stream", "max_tokens", "temperature", "p", "k", "seed", "stop_sequences",
               "frequency_penalty", "presence_penalty", "response_format", "tool_choice", "strict_tools", "documents",
               "safety_mode", "logprobs", "thinking", "citation_options", "priority"}


def recorded_text(events: list[dict]) -> str:
    """The text a recorded stream carries in its content-delta events."""
    return "".join(event["data"]["delta"]["message"]["content"]["text"] for event in events
                   if event["event"] == "content-delta")


class FakeCohere(FakeUpstream):
    api_key = "co-upstream-0123456789"
    drop_arguments = False
    broken_event: str | None = None  # streams: this data line after the first event, when set

    def error_body(self, status: int, message: str) -> dict:
        return {"message": message}

    def respond(self, request: Recorded) -> Reply:
        if request.headers.get("authorization") != f"Bearer {self.api_key}":
            return Reply(status=401, body={"message": "invalid api token"})
        body = request.json if isinstance(request.json, dict) else {}
        if request.path == "/v2/chat":
            return self._chat(body)
        if request.path == "/v2/embed":
            return self._embed(body)
        return Reply(status=404, body={"message": "404 page not found"})

    def _chat(self, body: dict) -> Reply:
        messages = body.get("messages")
        if not body.get("model"):
            return Reply(status=400, body={"message": "a model parameter is required for this endpoint."})
        if not isinstance(messages, list) or not messages:
            return Reply(status=400, body={"message": "invalid request: messages must not be empty"})
        unknown = set(body) - CHAT_FIELDS
        if unknown:
            return Reply(status=400, body={"message": f"invalid request: unknown field {sorted(unknown)[0]}"})
        calls = bool(body.get("tools")) and body.get("tool_choice") != "NONE" and messages[-1].get("role") == "user"
        if not body.get("stream"):
            return Reply(body=RECORDED["chat_tool_calls" if calls else "chat"])
        events = RECORDED["chat_stream_tool_calls" if calls else "chat_stream"]
        if calls and self.drop_arguments:
            events = [event for event in events if event["event"] != "tool-call-delta"]
        chunks = [sse(event["data"], event["event"]) for event in events]
        if self.broken_event is not None:
            chunks.insert(1, sse(self.broken_event, event="content-delta"))
        return Reply(chunks=chunks, content_type="text/event-stream")

    def _embed(self, body: dict) -> Reply:
        if not isinstance(body.get("texts"), list) or not body["texts"]:
            return Reply(status=400, body={"message": "invalid request: texts must not be empty"})
        if body.get("input_type") is None:
            return Reply(status=400, body={"message": "invalid request: valid input_type must be provided with the "
                                                      "provided model"})
        if not body.get("embedding_types"):
            return Reply(status=400, body={"message": "embedding_types parameter is required"})
        return Reply(body=RECORDED["embed"])
