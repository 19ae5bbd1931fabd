"""The unified API's chat answers (OpenAI's `chat.completion`, its stream chunks and usage) as translators
build them from a provider's answer. Pure: no I/O, no Django."""
from __future__ import annotations

import time
from typing import Any

import orjson


def tool_call(call_id: Any, name: Any, arguments: dict | None) -> dict:
    """An OpenAI tool call; the arguments travel as a JSON object encoded as a string."""
    return {"id": call_id, "type": "function",
            "function": {"name": name, "arguments": orjson.dumps(arguments or {}).decode()}}


def assistant_message(text: str, calls: list[dict]) -> dict:
    """The answer's message: no text is `content: null`, and `tool_calls` is present only when there are some."""
    message: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        message["tool_calls"] = calls
    return message


def single_choice(completion_id: str, created: int | None, model: str, message: dict, finish_reason: str,
                  usage: dict) -> dict:
    """A `chat.completion` with one choice; `created` defaults to now."""
    return {"id": completion_id, "object": "chat.completion",
            "created": int(time.time()) if created is None else created, "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish_reason, "logprobs": None}],
            "usage": usage}


def readable_chunk(chunk: object) -> dict:
    """A unified stream chunk with every part of an unexpected type left out (`choices` that are not a
    list of objects, a `delta` that is not an object, text that is not a string...), for the translators
    that turn chunks into another API's events: a provider's ill-shaped chunk then yields fewer events rather
    than failing the stream, as the unified route relays such a chunk and counts nothing from it."""
    if not isinstance(chunk, dict):
        return {}
    out: dict[str, Any] = {key: chunk[key] for key in ("id", "model") if isinstance(chunk.get(key), str)}
    if isinstance(chunk.get("usage"), dict):
        out["usage"] = chunk["usage"]
    choices = chunk.get("choices")
    out["choices"] = [_readable_choice(c) for c in choices if isinstance(c, dict)] if isinstance(choices, list) else []
    return out


def _readable_choice(choice: dict) -> dict:
    delta = choice.get("delta") if isinstance(choice.get("delta"), dict) else {}
    calls = delta.get("tool_calls") if isinstance(delta.get("tool_calls"), list) else []
    readable: dict[str, Any] = {
        "index": _index(choice.get("index")),
        "delta": {"content": delta["content"]} if isinstance(delta.get("content"), str) else {},
        "finish_reason": choice["finish_reason"] if isinstance(choice.get("finish_reason"), str) else None,
    }
    if calls:
        readable["delta"]["tool_calls"] = [_readable_call(call) for call in calls if isinstance(call, dict)]
    return readable


def _readable_call(call: dict) -> dict:
    function = call.get("function") if isinstance(call.get("function"), dict) else {}
    out: dict[str, Any] = {"index": _index(call.get("index")),
                           "function": {key: function[key] for key in ("name", "arguments")
                                        if isinstance(function.get(key), str)}}
    if isinstance(call.get("id"), str):
        out["id"] = call["id"]
    return out


def _index(value: object) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


class SingleChoiceChunks:
    """OpenAI `chat.completion.chunk` dicts for one stream with a single choice, for a stream translator to
    build on.

    Tool calls are numbered in the order their blocks start: providers number all content blocks (text and
    reasoning included), OpenAI only tool calls.
    """

    def __init__(self, completion_id: str, model: str, created: int | None = None) -> None:
        self.id = completion_id
        self.model = model
        self.created = int(time.time()) if created is None else created
        self._tool_index: dict[Any, int] = {}
        self._with_arguments: set[Any] = set()

    def _envelope(self) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {**self._envelope(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    def _usage_chunk(self, usage: dict) -> dict:
        """The closing usage chunk OpenAI sends when `stream_options.include_usage` is on."""
        return {**self._envelope(), "choices": [], "usage": usage}

    def _tool_call_start(self, block: Any, call_id: Any, name: Any) -> dict:
        position = self._tool_index[block] = len(self._tool_index)
        return self._chunk({"tool_calls": [{"index": position, "id": call_id, "type": "function",
                                            "function": {"name": name, "arguments": ""}}]})

    def _tool_call_arguments(self, block: Any, fragment: str) -> list[dict]:
        """A piece of the arguments of the call that content block `block` started; none for a block that
        started no call."""
        if block not in self._tool_index:
            return []
        self._with_arguments.add(block)
        return [self._chunk({"tool_calls": [{"index": self._tool_index[block], "function": {"arguments": fragment}}]})]

    def _tool_call_end(self, block: Any) -> list[dict]:
        """When content block `block` ends: a call that streamed no argument fragment (a function without
        parameters) gets `{}`, since OpenAI clients decode the joined arguments as JSON and "" is not."""
        if block not in self._tool_index or block in self._with_arguments:
            return []
        self._with_arguments.add(block)
        return [self._chunk({"tool_calls": [{"index": self._tool_index[block], "function": {"arguments": "{}"}}]})]
