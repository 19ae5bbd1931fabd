"""What a request log keeps of one request: built in pipeline.finish() from references (no copying or
encoding on the request path), encoded and capped when the writer flushes; and the assembly of a streamed
answer into the final message its client ended up with."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import orjson


@dataclass
class Entry:
    created_at: datetime
    request_id: str
    endpoint_name: str
    model_name: str
    api_key_name: str
    route: str
    streaming: bool
    status_code: int
    error_type: str
    latency_ms: float
    request: object
    response: object
    attempts: list = field(default_factory=list)
    guardrails: list = field(default_factory=list)


def encode(value: object, limit: int) -> tuple[str, bool]:
    """JSON text of `value` (text as is), cut to `limit` bytes; and whether it was cut."""
    if value is None:
        return "", False
    raw = value.encode() if isinstance(value, str) else orjson.dumps(value, default=str)
    if len(raw) <= limit:
        return raw.decode(), False
    return raw[:limit].decode(errors="ignore"), True


class ChatAssembler:
    """Rebuilds an OpenAI chat completion from the stream chunks the client received."""

    def __init__(self) -> None:
        self.choices: dict[int, dict] = {}
        self.model = ""
        self.usage = None

    def feed(self, chunk: dict) -> None:
        self.model = chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            state = self.choices.setdefault(index, {"role": "assistant", "content": [], "tool_calls": {},
                                                    "finish_reason": None})
            delta = choice.get("delta") or {}
            if delta.get("content"):
                state["content"].append(delta["content"])
            for call in delta.get("tool_calls") or ():
                slot = state["tool_calls"].setdefault(call.get("index", 0), {"id": None, "name": "", "arguments": []})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["name"] += function.get("name") or ""
                slot["arguments"].append(function.get("arguments") or "")
            if choice.get("finish_reason"):
                state["finish_reason"] = choice["finish_reason"]

    def result(self) -> dict:
        choices = []
        for index, state in sorted(self.choices.items()):
            message: dict = {"role": state["role"], "content": "".join(state["content"])}
            if state["tool_calls"]:
                message["tool_calls"] = [
                    {"id": slot["id"], "type": "function",
                     "function": {"name": slot["name"], "arguments": "".join(slot["arguments"])}}
                    for _, slot in sorted(state["tool_calls"].items())]
            choices.append({"index": index, "message": message, "finish_reason": state["finish_reason"]})
        answer = {"object": "chat.completion", "model": self.model, "choices": choices}
        if self.usage:
            answer["usage"] = self.usage
        return answer


class RawCapture:
    """The bytes a native (passthrough) stream relayed, in the vendor's own event format, up to `limit`."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[bytes] = []
        self.size = 0

    def feed(self, data: bytes) -> None:
        if self.size <= self.limit:
            self.parts.append(data)
            self.size += len(data)

    def result(self) -> str:
        return b"".join(self.parts).decode(errors="replace")
