"""Fake Mistral chat API (`/v1/chat/completions`), strict as the real one.

Mistral validates requests against its schema and answers 422 `extra_forbidden` to any field it does not
declare, at the top level and inside messages (../shared/reference/turn2-facts.md). The fields here are those
of the official SDK, mistralai 3.7.0: `mistralai/client/models/chatcompletionrequest.py` (the request),
`systemmessage.py`, `usermessage.py`, `assistantmessage.py`, `toolmessage.py` (messages), `toolcall.py` and
`functioncall.py` (an assistant's tool calls).

Answers are FakeOpenAI's, in Mistral's shape: usage on the last stream chunk whether asked or not, and a
request with a `reasoning_effort` other than `none` answered as a reasoning model does, its content a list of
chunks (`assistantmessage.py` / `deltamessage.py`: `Union[str, List[ContentChunk]]`): a `thinking` chunk
(`thinkchunk.py`) then `text` chunks (`textchunk.py`).
"""
from __future__ import annotations

import time

from tests.fakes.base import Reply, sse
from tests.fakes.openai import FakeOpenAI

REQUEST_FIELDS = frozenset({
    "model", "messages", "temperature", "top_p", "max_tokens", "stream", "stop", "random_seed", "metadata",
    "response_format", "tools", "tool_choice", "presence_penalty", "frequency_penalty", "min_tokens",
    "repetition_penalty", "top_k", "logprobs", "top_logprobs", "prompt_logprobs", "top_prompt_logprobs", "n",
    "prediction", "parallel_tool_calls", "reasoning_effort", "prompt_mode", "guardrails", "prompt_cache_key",
    "service_tier", "safe_prompt",
})
MESSAGE_FIELDS = {"system": {"role", "content"}, "user": {"role", "content"},
                  "assistant": {"role", "content", "tool_calls", "prefix"},
                  "tool": {"role", "content", "tool_call_id", "name"}}
TOOL_CALL_FIELDS = {"function", "id", "type", "index"}
FUNCTION_FIELDS = {"name", "arguments"}
THOUGHT = "The user wants an echo."


def extra_fields(body: dict) -> list[tuple[list, object]]:
    """(location, value) of every field Mistral's schema does not declare, in its `loc` form."""
    found = [(["body", name], value) for name, value in body.items() if name not in REQUEST_FIELDS]
    for i, message in enumerate(body.get("messages") or []):
        allowed = MESSAGE_FIELDS.get(message.get("role"), set())
        where = ["body", "messages", i]
        found += [([*where, name], value) for name, value in message.items() if name not in allowed]
        for j, call in enumerate(message.get("tool_calls") or []):
            found += [([*where, "tool_calls", j, name], value) for name, value in call.items()
                      if name not in TOOL_CALL_FIELDS]
            found += [([*where, "tool_calls", j, "function", name], value)
                      for name, value in (call.get("function") or {}).items() if name not in FUNCTION_FIELDS]
    return found


class FakeMistral(FakeOpenAI):
    def chat(self, body: dict) -> Reply:
        extra = extra_fields(body)
        if extra:
            return Reply(status=422, body={"object": "error", "message": {"detail": [
                {"type": "extra_forbidden", "loc": loc, "msg": "Extra inputs are not permitted", "input": value}
                for loc, value in extra]}, "type": "invalid_request_error", "param": None, "code": None})
        message, finish = self._message(body)
        reasoning = body.get("reasoning_effort") not in (None, "none")
        model = body.get("model", "unknown")
        base = {"id": "cmpl-fake", "created": int(time.time()), "model": model}
        if not body.get("stream"):
            if reasoning and message.get("content"):
                message["content"] = [self._thinking(), {"type": "text", "text": message["content"]}]
            return Reply(body={**base, "object": "chat.completion", "usage": self._usage(), "choices": [
                {"index": 0, "message": {**message, "tool_calls": message.get("tool_calls")},
                 "finish_reason": finish}]})
        deltas = []
        if message.get("tool_calls"):
            deltas.append({"role": "assistant", "content": "", "tool_calls": message["tool_calls"]})
        else:
            deltas.append({"role": "assistant", "content": [self._thinking()] if reasoning else ""})
            for i, word in enumerate(message["content"].split(" ")):
                text = word if i == 0 else " " + word
                deltas.append({"content": [{"type": "text", "text": text}] if reasoning else text})
        chunk = {**base, "object": "chat.completion.chunk"}
        chunks = [sse({**chunk, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}) for delta in deltas]
        chunks.append(sse({**chunk, "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": finish}],
                           "usage": self._usage()}))
        chunks.append(b"data: [DONE]\n\n")
        return Reply(chunks=chunks, content_type="text/event-stream")

    @staticmethod
    def _thinking() -> dict:
        return {"type": "thinking", "thinking": [{"type": "text", "text": THOUGHT}]}
