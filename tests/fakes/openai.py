"""Fake OpenAI-compatible upstream: chat (plain, streaming, tool calls), embeddings."""
from __future__ import annotations

import hashlib
import time

from tests.fakes.base import FakeUpstream, Recorded, Reply, last_user_text, sse

PROMPT_TOKENS = 11
COMPLETION_TOKENS = 7
FILE_LINES = 50


def fake_embedding(text: str, dim: int = 8) -> list[float]:
    digest = hashlib.sha256(text.encode()).digest()
    return [round(b / 255, 6) for b in digest[:dim]]


class FakeOpenAI(FakeUpstream):
    """Answers `echo: <last user text>`; with tools offered and the last message from the user, calls the
    first tool with `tool_arguments`."""

    tool_arguments = '{"city": "Paris"}'

    def respond(self, request: Recorded) -> Reply:
        path = request.path
        if path.endswith("/chat/completions"):
            return self.chat(request.json or {})
        if path.endswith("/embeddings"):
            return self.embeddings(request.json or {})
        if path.endswith("/responses"):
            return self.responses(request.json or {})
        if path.endswith("/v1/models"):
            return Reply(body={"object": "list", "data": [{"id": "gpt-4o-mini", "object": "model", "owned_by": "fake"}]},
                         headers={"x-request-id": "upstream-req-1"})
        if path.endswith("/v1/files") and request.method == "POST":
            return self.file_upload(request)
        if path.endswith("/content") and "/v1/files/" in path:
            return Reply(chunks=[f"line {i}\n".encode() for i in range(FILE_LINES)],
                         content_type="application/octet-stream", chunk_delay=0.001)
        return Reply(status=404, body=self.error_body(404, f"no route {path}"))

    @staticmethod
    def file_upload(request: Recorded) -> Reply:
        """What OpenAI answers to a multipart upload; the fake reads the parts' names to prove they arrived."""
        content_type = request.headers.get("content-type", "")
        if not content_type.startswith("multipart/form-data"):
            return Reply(status=400, body={"error": {"message": f"expected multipart, got {content_type!r}"}})
        filename = request.body.split(b'filename="', 1)[1].split(b'"', 1)[0].decode() if b'filename="' in request.body else ""
        purpose = b'name="purpose"' in request.body
        return Reply(body={"id": "file-fake1", "object": "file", "bytes": len(request.body), "filename": filename,
                           "purpose": "batch" if purpose else "", "status": "processed",
                           "created_at": int(time.time())})

    def model_of(self, request: Recorded) -> str:
        if "/deployments/" in request.path:
            return request.path.split("/deployments/")[1].split("/")[0]
        return super().model_of(request)

    def _message(self, body: dict) -> tuple[dict, str]:
        messages = body.get("messages") or []
        if body.get("tools") and body.get("tool_choice") != "none" and messages and messages[-1].get("role") == "user":
            name = body["tools"][0]["function"]["name"]
            call = {"id": "call_1", "type": "function", "function": {"name": name, "arguments": self.tool_arguments}}
            return {"role": "assistant", "content": None, "tool_calls": [call]}, "tool_calls"
        return {"role": "assistant", "content": f"echo: {last_user_text(messages)}"}, "stop"

    def _usage(self) -> dict:
        return {"prompt_tokens": PROMPT_TOKENS, "completion_tokens": COMPLETION_TOKENS,
                "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
                "prompt_tokens_details": {"cached_tokens": 3}}

    def chat(self, body: dict) -> Reply:
        model = body.get("model", "unknown")
        message, finish = self._message(body)
        if not body.get("stream"):
            return Reply(body={
                "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
                "usage": self._usage(),
            })
        base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        chunks = [sse({**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]})]
        if message.get("tool_calls"):
            call = message["tool_calls"][0]
            args = call["function"]["arguments"]
            chunks.append(sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                {"index": 0, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": ""}}]},
                "finish_reason": None}]}))
            for part in (args[: len(args) // 2], args[len(args) // 2:]):
                chunks.append(sse({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
                    {"index": 0, "function": {"arguments": part}}]}, "finish_reason": None}]}))
        else:
            words = message["content"].split(" ")
            for i, word in enumerate(words):
                text = word if i == 0 else " " + word
                chunks.append(sse({**base, "choices": [{"index": 0, "delta": {"content": text}, "finish_reason": None}]}))
        chunks.append(sse({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}))
        if (body.get("stream_options") or {}).get("include_usage"):
            chunks.append(sse({**base, "choices": [], "usage": self._usage()}))
        chunks.append(b"data: [DONE]\n\n")
        return Reply(chunks=chunks, content_type="text/event-stream")

    def embeddings(self, body: dict) -> Reply:
        inputs = body.get("input")
        items = [inputs] if isinstance(inputs, str) else list(inputs or [])
        data = [{"object": "embedding", "index": i, "embedding": fake_embedding(str(item))} for i, item in enumerate(items)]
        return Reply(body={"object": "list", "data": data, "model": body.get("model", "unknown"),
                           "usage": {"prompt_tokens": 5 * len(items), "total_tokens": 5 * len(items)}})

    def responses(self, body: dict) -> Reply:
        """The Responses API: `input` is a string or a list of messages; answers `echo: <last user text>`."""
        given = body.get("input")
        if isinstance(given, str):
            text = given
        else:
            text = last_user_text([m if isinstance(m.get("content"), str) else
                                   {**m, "content": [{"type": "text", "text": p.get("text", "")} for p in m["content"]]}
                                   for m in given or [] if isinstance(m, dict)])
        answer = f"echo: {text}"
        usage = {"input_tokens": PROMPT_TOKENS, "output_tokens": COMPLETION_TOKENS,
                 "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS, "input_tokens_details": {"cached_tokens": 3},
                 "output_tokens_details": {"reasoning_tokens": 0}}
        part = {"type": "output_text", "text": answer, "annotations": []}
        item = {"type": "message", "id": "msg_fake", "status": "completed", "role": "assistant", "content": [part]}
        # `error` and `incomplete_details` are null on success (openai 3.63.0, openai/types/responses/response.py).
        response = {"id": "resp_fake", "object": "response", "created_at": int(time.time()), "status": "completed",
                    "error": None, "incomplete_details": None,
                    "model": body.get("model", "unknown"), "output": [item], "usage": usage,
                    "parallel_tool_calls": True, "tool_choice": "auto", "tools": []}
        if not body.get("stream"):
            return Reply(body=response)
        pending = {**response, "status": "in_progress", "output": [], "usage": None}
        events = [("response.created", {"response": pending}),
                  ("response.output_item.added", {"output_index": 0, "item": {**item, "status": "in_progress", "content": []}}),
                  ("response.content_part.added", {"output_index": 0, "item_id": "msg_fake", "content_index": 0,
                                                   "part": {**part, "text": ""}})]
        for i, word in enumerate(answer.split(" ")):
            events.append(("response.output_text.delta", {"output_index": 0, "item_id": "msg_fake", "content_index": 0,
                                                          "delta": word if i == 0 else " " + word}))
        events += [("response.output_text.done", {"output_index": 0, "item_id": "msg_fake", "content_index": 0, "text": answer}),
                   ("response.content_part.done", {"output_index": 0, "item_id": "msg_fake", "content_index": 0, "part": part}),
                   ("response.output_item.done", {"output_index": 0, "item": item}),
                   ("response.completed", {"response": response})]
        chunks = [sse({"type": kind, "sequence_number": n, **data}, event=kind) for n, (kind, data) in enumerate(events)]
        return Reply(chunks=chunks, content_type="text/event-stream")
