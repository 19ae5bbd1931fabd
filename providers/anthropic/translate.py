"""Pure translation between the unified OpenAI chat shapes and Anthropic's Messages API: request bodies,
responses, and the SSE event stream. No I/O and no Django, so every rule is testable from recorded JSON."""
from __future__ import annotations

from typing import Any

from providers import chat_request, completions
from providers.anthropic.thinking import (DEFAULT_MAX_TOKENS, ThinkingBlocks, carry_thinking, returned_thinking,
                                          thinking)
from providers.base import ProviderError, TranslationError
from providers.chat_request import JSON_OBJECT_INSTRUCTION
from providers.wire import anthropic_usage, merge_usage

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


# -- request -------------------------------------------------------------------------------------

def chat_request_to_anthropic(request: dict, model_name: str) -> dict:
    """The Messages body for an OpenAI chat request (without `stream`; the adapter adds it).

    System and developer messages, wherever they appear, become the top-level `system`; consecutive
    turns of the same role are merged because Anthropic requires user and assistant turns to alternate;
    messages left with no content at all are skipped.

    The parameters of providers/capabilities.py were mapped, refused or dropped by Anthropic's table before
    this is called: what reaches here is expressed (`reasoning_effort` as `thinking`, `user` as
    `metadata.user_id`, `service_tier` already in Anthropic's values) or cannot change the answer.
    """
    system, turns = chat_request.conversation(request, "Anthropic", system=_text_blocks, user=_user_content,
                                         assistant=_assistant_content, tool=_tool_result, append=_append)
    max_tokens = chat_request.max_tokens(request)
    body: dict[str, Any] = {"model": model_name, "max_tokens": DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
                            "messages": turns}
    _sampling(request, body)
    if request.get("reasoning_effort") is not None:
        body["thinking"], body["max_tokens"] = thinking(request, max_tokens)
    tools = request.get("tools")
    if tools:
        body["tools"] = _tools(tools)
    choice = _tool_choice(request.get("tool_choice"), request.get("parallel_tool_calls"), bool(tools))
    if choice:
        body["tool_choice"] = choice
    if request.get("response_format"):
        _response_format(request["response_format"], body, system)
    if system:
        body["system"] = _system(system)
    user = request.get("user") or request.get("safety_identifier")
    if user:
        body["metadata"] = {"user_id": str(user)}
    if request.get("service_tier"):
        body["service_tier"] = request["service_tier"]
    return body


def _sampling(request: dict, body: dict) -> None:
    temperature = chat_request.unit_temperature(request)
    if temperature is not None:
        body["temperature"] = temperature
    for key in ("top_p", "top_k"):
        if request.get(key) is not None:
            body[key] = request[key]
    stop = chat_request.stop_sequences(request)
    if stop is not None:
        body["stop_sequences"] = stop


def _append(turns: list[dict], role: str, content: str | list[dict]) -> None:
    if not content:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"] = _as_blocks(turns[-1]["content"]) + _as_blocks(content)
    else:
        turns.append({"role": role, "content": content})


def _as_blocks(content: str | list[dict]) -> list[dict]:
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def _text_block(part: dict) -> dict | None:
    """Anthropic rejects empty text blocks, so those become None; `cache_control` is kept so clients can
    mark prompt-caching breakpoints."""
    text = part.get("text") or ""
    if not text:
        return None
    block = {"type": "text", "text": text}
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _text_blocks(content: object, where: str) -> list[dict]:
    """Content that may only hold text: system, developer and tool messages."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of text parts.")
    blocks = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") != "text":
            raise TranslationError(f"{where}.content[{j}] must be a text part.")
        block = _text_block(part)
        if block:
            blocks.append(block)
    return blocks


def _user_content(content: object, where: str) -> str | list[dict]:
    if content is None or isinstance(content, str):
        return content or ""
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of content parts.")
    blocks = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            block = _text_block(part)
        elif kind == "image_url":
            block = _image_block(part, f"{where}.content[{j}]")
        else:
            raise TranslationError(f"{where}.content[{j}]: content part type '{kind}' is not supported for "
                                   "Anthropic models (text and image_url are).")
        if block:
            blocks.append(block)
    return blocks


def _image_block(part: dict, where: str) -> dict:
    url = chat_request.image_url(part.get("image_url"), where)
    if url.startswith("data:"):
        # Parameters between the media type and `base64` (such as `name=`) are allowed.
        split = chat_request.split_data_url(url)
        if split is None or not split[0][0] or split[0][-1] != "base64":
            raise TranslationError(f"{where}.image_url: data URLs must be base64 (data:<media type>;base64,<data>).")
        source = {"type": "base64", "media_type": split[0][0], "data": split[1]}
    elif url.startswith(("https://", "http://")):
        source = {"type": "url", "url": url}
    else:
        raise TranslationError(f"{where}.image_url.url must be an http(s) URL or a base64 data URL.")
    block: dict[str, Any] = {"type": "image", "source": source}
    if part.get("cache_control"):
        block["cache_control"] = part["cache_control"]
    return block


def _assistant_content(message: dict, where: str) -> str | list[dict]:
    said = message.get("content")
    calls = message.get("tool_calls") or []
    if isinstance(said, str) and not calls:
        return said
    if isinstance(said, list):
        # A refusal part is what the assistant said; Anthropic has no refusal block, so it is kept as text.
        said = [{**p, "type": "text", "text": p.get("refusal")} if isinstance(p, dict) and p.get("type") == "refusal"
                else p for p in said]
    blocks = _text_blocks(said, where)
    # Thinking comes first in Claude's turn, before the text and tool calls it led to.
    return (returned_thinking(calls) + blocks
            + [_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls)])


def _tool_use(call: dict, where: str) -> dict:
    function = call.get("function") or {}
    name, call_id = function.get("name"), call.get("id")
    if not name or not call_id:
        raise TranslationError(f"{where} needs an id and a function.name.")
    arguments = chat_request.tool_arguments(function)
    if arguments is None:
        raise TranslationError(f"{where} (tool call '{call_id}', function '{name}'): function.arguments must be "
                               "a JSON object encoded as a string.")
    return {"type": "tool_use", "id": call_id, "name": name, "input": arguments}


def _tool_result(message: dict, where: str) -> dict:
    call_id = message.get("tool_call_id")
    if not call_id:
        raise TranslationError(f"{where}: tool messages need a tool_call_id.")
    said = message.get("content")
    block: dict[str, Any] = {"type": "tool_result", "tool_use_id": call_id}
    result = said if isinstance(said, str) else _text_blocks(said, where)
    if result:
        block["content"] = result
    return block


def _tools(tools: list) -> list[dict]:
    result = []
    for i, tool in enumerate(tools):
        function = chat_request.function_tool(tool, i, "Anthropic")
        entry = {"name": function["name"], "input_schema": chat_request.tool_parameters(function)}
        if function.get("description"):
            entry["description"] = function["description"]
        if function.get("strict"):
            entry["strict"] = True
        result.append(entry)
    return result


def _tool_choice(choice: object, parallel: object, has_tools: bool) -> dict | None:
    if not has_tools:
        chat_request.refuse_forced_tool_without_tools(choice)
        return None
    forced = chat_request.forced_function(choice)
    if choice is None:
        result = None
    elif choice in ("none", "auto"):
        result = {"type": choice}
    elif choice == "required":
        result = {"type": "any"}
    elif forced:
        result = {"type": "tool", "name": forced}
    else:
        raise TranslationError(chat_request.TOOL_CHOICE_FORMS)
    if parallel is False and (result is None or result["type"] != "none"):
        result = {**(result or {"type": "auto"}), "disable_parallel_tool_use": True}
    return result


def _response_format(fmt: object, body: dict, system: list[dict]) -> None:
    kind = chat_request.response_format_type(fmt)
    if kind == "json_object":
        system.append({"type": "text", "text": JSON_OBJECT_INSTRUCTION})
    elif kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema")
        if not isinstance(schema, dict):
            raise TranslationError("response_format.json_schema.schema must be a JSON Schema object.")
        body["output_config"] = {"format": {"type": "json_schema", "schema": _closed_schema(schema, "$")}}


def _closed_schema(schema: object, path: str) -> object:
    """Anthropic structured outputs need every object closed (`additionalProperties: false`). Objects that
    list their properties are closed here; free-form objects cannot be expressed, and sending them anyway
    would quietly return unconstrained text, so they are refused with the offending path."""
    if not isinstance(schema, dict):
        return schema
    out = dict(schema)
    for key in ("properties", "$defs", "definitions"):
        if isinstance(schema.get(key), dict):
            out[key] = {name: _closed_schema(sub, f"{path}.{key}.{name}") for name, sub in schema[key].items()}
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        if isinstance(schema.get(key), list):
            out[key] = [_closed_schema(sub, f"{path}.{key}[{i}]") for i, sub in enumerate(schema[key])]
    if "items" in schema:
        out["items"] = _closed_schema(schema["items"], f"{path}.items")
    kind = schema.get("type")
    if kind == "object" or (isinstance(kind, list) and "object" in kind):
        extra = schema.get("additionalProperties")
        if "additionalProperties" not in schema and "properties" in schema:
            out["additionalProperties"] = False
        elif extra is not False:
            raise TranslationError(
                f"response_format.json_schema: the object at {path} allows arbitrary keys; Anthropic structured "
                "outputs need every object to list its properties (additionalProperties: false).")
    return out


def _system(blocks: list[dict]) -> str | list[dict]:
    """A plain string unless a block carries `cache_control`, which only the block form can express."""
    if any("cache_control" in block for block in blocks):
        return blocks
    return "\n".join(block["text"] for block in blocks)


# -- response ------------------------------------------------------------------------------------

def anthropic_response_to_chat(body: dict, model_name: str, *, created: int | None = None) -> dict:
    """An OpenAI `chat.completion` for a Messages response. Thinking (from `reasoning_effort`) and server-tool
    blocks have no OpenAI chat field and stay out of the text; thinking tokens are counted in the usage, and
    thinking blocks travel on the first tool call for the next turn (providers/anthropic/thinking.py)."""
    texts, calls, thoughts = [], [], []
    for block in body.get("content") or []:
        if block.get("type") == "text":
            texts.append(block.get("text") or "")
        elif block.get("type") in ("thinking", "redacted_thinking"):
            thoughts.append(block)
        elif block.get("type") == "tool_use":
            call = completions.tool_call(block.get("id"), block.get("name"), block.get("input"))
            calls.append(carry_thinking(call, thoughts) if not calls else call)
    return completions.single_choice(body.get("id") or "msg_unknown", created, body.get("model") or model_name,
                                     completions.assistant_message("".join(texts), calls),
                                     finish_reason(body.get("stop_reason")), chat_usage(body.get("usage") or {}))


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "", "stop")


def chat_usage(usage: dict) -> dict:
    """OpenAI usage from Anthropic's, counted by the one Anthropic usage reader (providers/wire.py)."""
    return anthropic_usage(usage).as_openai()


# -- stream --------------------------------------------------------------------------------------

class StreamTranslator(completions.SingleChoiceChunks):
    """Turns one Messages SSE stream, event by event, into OpenAI `chat.completion.chunk` dicts.

    `finished` tells the caller whether `message_stop` arrived: a stream that ends without it was cut and
    must be reported, not passed off as complete.
    """

    def __init__(self, model_name: str, *, created: int | None = None) -> None:
        super().__init__("msg_unknown", model_name, created)
        self.usage: dict[str, int] = {}
        self.finished = False
        self._finish_sent = False
        self._thinking = ThinkingBlocks()

    def feed(self, event: str, data: dict) -> list[dict]:
        """Chunks for one event (often none). An `error` event raises a retryable ProviderError. A field of
        the wrong type reads as absent: the event yields what can be read from it."""
        index = data.get("index") if isinstance(data.get("index"), int) else None
        match event:
            case "message_start":
                message = _object(data.get("message"))
                self.id = _text(message.get("id")) or self.id
                self.model = _text(message.get("model")) or self.model
                self._add_usage(message.get("usage"))
                return [self._chunk({"role": "assistant", "content": ""})]
            case "content_block_start":
                return self._block_start(index, _object(data.get("content_block")))
            case "content_block_delta":
                return self._block_delta(index, _object(data.get("delta")))
            case "content_block_stop":
                return self._tool_call_end(index)
            case "message_delta":
                self._add_usage(data.get("usage"))
                return self._finish(_text(_object(data.get("delta")).get("stop_reason")))
            case "message_stop":
                self.finished = True
                return [*self._finish("end_turn"), self._usage_chunk(chat_usage(self.usage))]
            case "error":
                error = _object(data.get("error"))
                raise ProviderError(502, f"Provider 'anthropic' stream error: {error.get('type', 'error')}: "
                                         f"{error.get('message', 'no message')}", retryable=True)
        return []  # ping, and event types Anthropic may add later

    def _block_start(self, index: int | None, block: dict) -> list[dict]:
        self._thinking.start(index, block)
        if block.get("type") == "tool_use" and index is not None:
            chunk = self._tool_call_start(index, block.get("id"), block.get("name"))
            carry_thinking(chunk["choices"][0]["delta"]["tool_calls"][0], self._thinking.take())
            return [chunk]
        if block.get("type") == "text" and _text(block.get("text")):
            return [self._chunk({"content": block["text"]})]
        return []

    def _block_delta(self, index: int | None, delta: dict) -> list[dict]:
        self._thinking.delta(index, delta)
        if delta.get("type") == "text_delta" and _text(delta.get("text")):
            return [self._chunk({"content": delta["text"]})]
        if delta.get("type") == "input_json_delta" and _text(delta.get("partial_json")):
            return self._tool_call_arguments(index, delta["partial_json"])
        return []

    def _finish(self, stop_reason: str | None) -> list[dict]:
        """Exactly one finish_reason chunk per stream, though Anthropic may send several message_delta
        events and only one of them carries the stop reason."""
        if not stop_reason or self._finish_sent:
            return []
        self._finish_sent = True
        return [self._chunk({}, finish_reason(stop_reason))]

    def _add_usage(self, usage: dict | None) -> None:
        merge_usage(self.usage, usage)


def _object(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None
