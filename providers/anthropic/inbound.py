"""Pure translation for Anthropic clients served by any chat provider: a Messages request into the unified
(OpenAI chat) request, and the unified answer or stream chunks back into a Messages response or Anthropic's
stream events. The opposite direction of translate.py, sharing its stop-reason table. No I/O, no Django."""
from __future__ import annotations

import time
from typing import Any

import orjson

from providers.anthropic.translate import FINISH_REASONS
from providers.base import TranslationError
from providers.blocks import BlockWalk, Delta, Opened, Start, Step
from providers.wire import openai_usage

# The first Anthropic stop reason for each OpenAI finish reason in translate.py's table (end_turn for
# stop, max_tokens for length): the inverse of the one mapping, never a second copy.
STOP_REASONS = {finish: stop for stop, finish in reversed(FINISH_REASONS.items())}

# Request fields that ask for something only Anthropic's own service holds; refused rather than dropped.
_REFUSED = {"mcp_servers": "MCP servers", "container": "code-execution containers"}


# -- request -------------------------------------------------------------------------------------

def messages_to_chat(body: dict) -> dict:
    """The unified chat request (without `model`) for a Messages request.

    `system` becomes a system message (its blocks' text joined, as translate.py joins them); `tool_result`
    blocks become tool messages placed before the rest of their user turn, as OpenAI orders them; `thinking`
    and `redacted_thinking` blocks of earlier turns are left out (other models cannot read them), and so is
    the request's `thinking` switch, since the model that answers has its own reasoning or none; so is
    `cache_control` (see `_text_part`). Temperature goes from Anthropic's 0..1 scale to OpenAI's 0..2
    (translate.py halves it the other way).
    """
    for name, what in _REFUSED.items():
        if body.get(name):
            raise TranslationError(f"{name}: {what} are served only by Anthropic models.")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages: must be a non-empty array.")
    max_tokens = body.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise TranslationError("max_tokens: must be a positive integer.")
    chat: list[dict] = []
    system = _system(body.get("system"))
    if system:
        chat.append({"role": "system", "content": system})
    for i, message in enumerate(messages):
        chat.extend(_message(message, f"messages.{i}"))
    request: dict[str, Any] = {"messages": chat, "max_tokens": max_tokens}
    temperature = body.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 1:
            raise TranslationError("temperature: must be a number between 0 and 1.")
        request["temperature"] = temperature * 2
    for name in ("top_p", "top_k"):
        if body.get(name) is not None:
            request[name] = body[name]
    if body.get("stop_sequences"):
        request["stop"] = list(body["stop_sequences"])
    if body.get("tools"):
        request["tools"] = [_tool(tool, f"tools.{i}") for i, tool in enumerate(body["tools"])]
    _tool_choice(body.get("tool_choice"), request)
    _output_format(body, request)
    user = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
    if user:
        request["user"] = str(user)
    if body.get("stream") is True:
        request["stream"] = True
    return request


def _output_format(body: dict, request: dict) -> None:
    """Structured outputs (`output_config.format`, or the older `output_format`) as OpenAI's json_schema."""
    config = body.get("output_config") if isinstance(body.get("output_config"), dict) else {}
    fmt = config.get("format") or body.get("output_format")
    if not fmt:
        return
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema" or not isinstance(fmt.get("schema"), dict):
        raise TranslationError("output_config.format: must be {'type': 'json_schema', 'schema': {...}}.")
    request["response_format"] = {"type": "json_schema",
                                  "json_schema": {"name": "output", "schema": fmt["schema"], "strict": True}}


def _system(system: object) -> str | None:
    if system is None or isinstance(system, str):
        return system or None
    if not isinstance(system, list):
        raise TranslationError("system: must be a string or an array of text blocks.")
    texts = []
    for i, block in enumerate(system):
        if not isinstance(block, dict) or block.get("type") != "text":
            raise TranslationError(f"system.{i}: only text blocks are supported.")
        texts.append(block.get("text") or "")
    return "\n".join(texts) or None


def _text_part(block: dict) -> dict:
    """A text part without Anthropic's `cache_control`: it cannot change the answer, and strict
    OpenAI-compatible providers refuse fields they do not know."""
    return {"type": "text", "text": block.get("text") or ""}


def _message(message: object, where: str) -> list[dict]:
    if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
        raise TranslationError(f"{where}.role: must be 'user' or 'assistant'.")
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": message["role"], "content": content}]
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content: must be a string or an array of content blocks.")
    if message["role"] == "assistant":
        return [_assistant(content, where)]
    results, parts = [], []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "tool_result":
            results.append(_tool_result(block, f"{where}.content.{j}"))
        elif kind == "text":
            parts.append(_text_part(block))
        elif kind == "image":
            parts.append(_image(block, f"{where}.content.{j}"))
        else:
            raise TranslationError(f"{where}.content.{j}: content block type '{kind}' is not supported for this "
                                   "model (text, image, tool_use and tool_result are).")
    return results + ([{"role": "user", "content": parts}] if parts else [])


def _image(block: dict, where: str) -> dict:
    source = block.get("source") if isinstance(block.get("source"), dict) else {}
    if source.get("type") == "base64" and source.get("media_type") and source.get("data"):
        url = f"data:{source['media_type']};base64,{source['data']}"
    elif source.get("type") == "url" and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise TranslationError(f"{where}.source: images must be base64 data or a URL.")
    return {"type": "image_url", "image_url": {"url": url}}


def _assistant(content: list, where: str) -> dict:
    texts, calls = [], []
    for j, block in enumerate(content):
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text":
            texts.append(block.get("text") or "")
        elif kind == "tool_use":
            if not block.get("id") or not block.get("name"):
                raise TranslationError(f"{where}.content.{j}: tool_use blocks need an id and a name.")
            calls.append({"id": block["id"], "type": "function", "function": {
                "name": block["name"], "arguments": orjson.dumps(block.get("input") or {}).decode()}})
        elif kind not in ("thinking", "redacted_thinking"):
            raise TranslationError(f"{where}.content.{j}: content block type '{kind}' is not supported in "
                                   "assistant turns for this model.")
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_result(block: dict, where: str) -> dict:
    if not block.get("tool_use_id"):
        raise TranslationError(f"{where}.tool_use_id: required.")
    content = block.get("content")
    if isinstance(content, list):
        for k, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise TranslationError(f"{where}.content.{k}: tool results may hold only text for this model.")
        content = [_text_part(part) for part in content]
    elif not isinstance(content, str):
        content = ""
    if block.get("is_error"):
        # OpenAI's tool messages have no error flag: the model reads that the call failed.
        text = content if isinstance(content, str) else "\n".join(part["text"] for part in content)
        content = f"Error: {text}" if text else "Error"
    return {"role": "tool", "tool_call_id": block["tool_use_id"], "content": content}


def _tool(tool: object, where: str) -> dict:
    if not isinstance(tool, dict) or tool.get("type") not in (None, "custom") or not tool.get("name"):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise TranslationError(f"{where}: only client tools with a name and an input_schema are supported for this "
                               f"model (server tool '{kind}' runs only on Anthropic models).")
    function = {"name": tool["name"], "parameters": tool.get("input_schema") or {"type": "object", "properties": {}}}
    if tool.get("description"):
        function["description"] = tool["description"]
    return {"type": "function", "function": function}


def _tool_choice(choice: object, request: dict) -> None:
    if choice is None:
        return
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "none"):
        request["tool_choice"] = kind
    elif kind == "any":
        request["tool_choice"] = "required"
    elif kind == "tool" and choice.get("name"):
        request["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise TranslationError("tool_choice: must be {'type': 'auto' | 'any' | 'none'} or {'type': 'tool', "
                               "'name': ...}.")
    if choice.get("disable_parallel_tool_use") and kind != "none":
        request["parallel_tool_calls"] = False


# -- answer --------------------------------------------------------------------------------------

def message_id(completion_id: object) -> str:
    text = str(completion_id or "")
    return text if text.startswith("msg_") else f"msg_{text or int(time.time() * 1000)}"


def anthropic_usage_block(usage: dict | None) -> dict:
    """Anthropic's `usage` for OpenAI's: its `input_tokens` leave out the cache reads, which it reports
    apart, so the one Anthropic reader counts the same tokens the OpenAI reader did."""
    tokens = openai_usage(usage)
    return {"input_tokens": tokens.input_tokens - tokens.cached_tokens, "output_tokens": tokens.output_tokens,
            "cache_read_input_tokens": tokens.cached_tokens, "cache_creation_input_tokens": 0}


def _arguments(raw: object) -> dict:
    """A tool call's arguments as the object Anthropic's `input` is; none at all mean no parameters."""
    try:
        value = orjson.loads(raw) if isinstance(raw, str) and raw.strip() else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def chat_to_message(answer: dict) -> dict:
    """A Messages response for a unified `chat.completion` (its first choice)."""
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict] = []
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or ():
        function = call.get("function") or {}
        content.append({"type": "tool_use", "id": call.get("id"), "name": function.get("name"),
                        "input": _arguments(function.get("arguments"))})
    return {"id": message_id(answer.get("id")), "type": "message", "role": "assistant",
            "model": answer.get("model") or "", "content": content,
            "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None, "usage": anthropic_usage_block(answer.get("usage"))}


class MessageEvents:
    """Anthropic's stream events, as (event name, data) pairs, for a unified chunk stream: message_start,
    then per content block content_block_start / content_block_delta (text_delta, input_json_delta) /
    content_block_stop, then message_delta (stop_reason, usage) and message_stop from `end()`.

    The blocks are providers.blocks' walk: each text run and each tool call is one block, closed when the
    next one starts; a late piece of a closed tool call is still sent, with its block's index."""

    def __init__(self) -> None:
        self.walk = BlockWalk()

    def feed(self, chunk: dict) -> list[tuple[str, dict]]:
        return [self._event(step) for step in self.walk.feed(chunk)]

    def end(self) -> list[tuple[str, dict]]:
        out = [self._event(step) for step in self.walk.end()]
        stop_reason = STOP_REASONS.get(self.walk.finish_reason or "", "end_turn")
        out.append(("message_delta", {"type": "message_delta",
                                      "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                                      "usage": anthropic_usage_block(self.walk.usage)}))
        out.append(("message_stop", {"type": "message_stop"}))
        return out

    @staticmethod
    def _event(step: Step) -> tuple[str, dict]:
        if isinstance(step, Start):
            message = {"id": message_id(step.id), "type": "message", "role": "assistant", "model": step.model or "",
                       "content": [], "stop_reason": None, "stop_sequence": None,
                       "usage": {"input_tokens": 0, "output_tokens": 0}}
            return "message_start", {"type": "message_start", "message": message}
        index = step.block.number
        if isinstance(step, Opened):
            block = step.block
            content = ({"type": "text", "text": ""} if block.kind == "text" else
                       {"type": "tool_use", "id": block.call_id or f"toolu_{block.call_index}", "name": block.name,
                        "input": {}})
            return "content_block_start", {"type": "content_block_start", "index": index, "content_block": content}
        if isinstance(step, Delta):
            delta = ({"type": "text_delta", "text": step.text} if step.block.kind == "text" else
                     {"type": "input_json_delta", "partial_json": step.text})
            return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        return "content_block_stop", {"type": "content_block_stop", "index": index}
