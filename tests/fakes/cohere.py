"""Fake Cohere v2 API: `/v2/chat` (JSON, or SSE events with `event:` lines and a JSON `data` carrying the
same `type`) and `/v2/embed`, in the shapes the official SDK declares (cohere 7.3.1: `v2/types/
v2chat_response.py`, `v2/types/v2chat_stream_response.py`, `types/usage.py`, `types/embed_by_type_response.py`)
and Cohere's API reference ("Chat", "Chat with Streaming", "Embed" v2). Errors come as `{"message": ...}`.

Answers `echo: <last user text>`; with tools offered and the last message from the user, calls the first
tool with `tool_arguments` (a Cohere `TOOL_CALL` answer, with its `tool_plan`).
"""
from __future__ import annotations

import orjson

from tests.fakes.base import FakeUpstream, Recorded, Reply, last_user_text, sse
from tests.fakes.openai import fake_embedding

USAGE = {"billed_units": {"input_tokens": 9, "output_tokens": 4}, "tokens": {"input_tokens": 205, "output_tokens": 4}}


class FakeCohere(FakeUpstream):
    tool_arguments = '{"city": "Paris"}'
    broken_event: str | None = None  # streams: this data line after the first event, when set
    api_key = "co-upstream-0123456789"

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
        return Reply(status=404, body={"message": f"no route {request.path}"})

    def _chat(self, body: dict) -> Reply:
        messages = body.get("messages")
        if not body.get("model") or not isinstance(messages, list) or not messages:
            return Reply(status=400, body={"message": "invalid request: model and messages are required"})
        unknown = set(body) - {"model", "messages", "tools", "stream", "max_tokens", "temperature", "p", "k", "seed",
                               "stop_sequences", "frequency_penalty", "presence_penalty", "response_format",
                               "tool_choice", "strict_tools", "documents", "safety_mode", "logprobs", "thinking"}
        if unknown:
            return Reply(status=400, body={"message": f"invalid request: unknown field {sorted(unknown)[0]}"})
        call = None
        if body.get("tools") and body.get("tool_choice") != "NONE" and messages[-1].get("role") == "user":
            call = {"id": "get_weather_c0c8fnjxds0e", "type": "function",
                    "function": {"name": body["tools"][0]["function"]["name"], "arguments": self.tool_arguments}}
        text = f"echo: {last_user_text(messages)}"
        if not body.get("stream"):
            message: dict = {"role": "assistant"}
            if call:
                message.update(tool_plan="I will call the tool.", tool_calls=[call])
            else:
                message["content"] = [{"type": "text", "text": text}]
            return Reply(body={"id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4", "message": message,
                               "finish_reason": "TOOL_CALL" if call else "COMPLETE", "usage": USAGE})
        events = [("message-start", {"id": "29f14a5a-11de-4cae-9800-25e4747408ea", "delta": {
            "message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [], "citations": []}}})]
        if call:
            events.append(("tool-plan-delta", {"delta": {"message": {"tool_plan": "I will call the tool."}}}))
            arguments = call["function"]["arguments"]
            events.append(("tool-call-start", {"index": 0, "delta": {"message": {"tool_calls": {
                "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}}}}))
            for piece in (arguments[:len(arguments) // 2], arguments[len(arguments) // 2:]):
                if piece:
                    events.append(("tool-call-delta", {"index": 0, "delta": {"message": {"tool_calls": {
                        "function": {"arguments": piece}}}}}))
            events.append(("tool-call-end", {"index": 0}))
        else:
            events.append(("content-start", {"index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}))
            for i, word in enumerate(text.split(" ")):
                events.append(("content-delta", {"index": 0, "delta": {"message": {"content": {
                    "text": word if i == 0 else f" {word}"}}}}))
            events.append(("content-end", {"index": 0}))
        events.append(("message-end", {"delta": {"finish_reason": "TOOL_CALL" if call else "COMPLETE", "usage": USAGE}}))
        chunks = [sse(orjson.dumps({"type": kind, **data}).decode(), event=kind) for kind, data in events]
        if self.broken_event is not None:
            chunks.insert(1, sse(self.broken_event, event="content-delta"))
        return Reply(chunks=chunks, content_type="text/event-stream")

    def _embed(self, body: dict) -> Reply:
        texts = body.get("texts")
        if not isinstance(texts, list) or not texts or body.get("input_type") is None:
            return Reply(status=400, body={"message": "invalid request: texts and input_type are required"})
        dimensions = body.get("output_dimension") or 8
        return Reply(body={"id": "da6e531f-54c6-4a73-bf92-f60566d8d753", "texts": texts,
                           "embeddings": {"float": [fake_embedding(text, dimensions) for text in texts]},
                           "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": 2 * len(texts)}},
                           "response_type": "embeddings_by_type"})
