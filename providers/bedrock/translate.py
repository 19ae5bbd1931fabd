"""Pure translation between the unified OpenAI chat shapes and Bedrock's Converse API: request bodies,
responses, and ConverseStream events. No I/O and no Django, so every rule is testable from recorded JSON.

Nothing the client asked for that changes the answer is dropped silently: images, `tool_choice` and
`response_format` are all expressed in Converse terms, and what Converse cannot express is a 400 naming
the field.
"""
from __future__ import annotations

import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson

from providers.anthropic.translate import JSON_OBJECT_INSTRUCTION
from providers.base import ProviderError

FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
}
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/jpg": "jpeg", "image/gif": "gif",
                 "image/webp": "webp"}


class TranslationError(ProviderError):
    """The request cannot be expressed for Bedrock: the client must change it, so never retried."""

    def __init__(self, message: str) -> None:
        super().__init__(400, message, retryable=False, error_type="invalid_request_error")


# -- request -------------------------------------------------------------------------------------

def converse_request(request: dict) -> dict:
    """The Converse / ConverseStream body for an OpenAI chat request (the model goes in the URL).

    System and developer messages become the top-level `system`; consecutive turns of one role are merged,
    since Converse requires user and assistant turns to alternate (tool results travel in a user turn).
    A part's `cache_control` becomes a Converse cache point after it. `temperature` is halved: OpenAI's
    0..2 onto Bedrock's 0..1, as for Anthropic, so a model answers alike through either provider.

    Dropped because Converse has no equivalent: `top_k`, `frequency_penalty`, `presence_penalty`,
    `logit_bias`, `logprobs`, `seed`, `user`, `metadata`, `parallel_tool_calls`, `stream_options` and any
    other field not handled here.
    """
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list.")
    if request.get("n") not in (None, 1):
        raise TranslationError("n: Bedrock returns a single choice per request; n must be 1.")
    system, turns = _conversation(messages)
    body: dict[str, Any] = {"messages": turns}
    config = _inference_config(request)
    if config:
        body["inferenceConfig"] = config
    tool_config = _tool_config(request.get("tools"), request.get("tool_choice"), _uses_tools(turns))
    if tool_config:
        body["toolConfig"] = tool_config
    fmt = request.get("response_format")
    if fmt:
        output_config = _output_config(fmt, system)
        if output_config:
            body["outputConfig"] = output_config
    if system:
        body["system"] = system
    return body


def _inference_config(request: dict) -> dict:
    config: dict[str, Any] = {}
    for field in ("max_completion_tokens", "max_tokens"):
        value = request.get(field)
        if value is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TranslationError(f"{field} must be a positive integer.")
            config["maxTokens"] = value
            break
    temperature = request.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
            raise TranslationError("temperature must be a number between 0 and 2.")
        config["temperature"] = temperature / 2
    if request.get("top_p") is not None:
        config["topP"] = request["top_p"]
    stop = request.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else list(stop)
    return config


def _conversation(messages: list) -> tuple[list[dict], list[dict]]:
    system: list[dict] = []
    turns: list[dict] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise TranslationError(f"{where} must be an object.")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_text_blocks(message.get("content"), where))
        elif role == "user":
            _append(turns, "user", _user_blocks(message.get("content"), where))
        elif role == "assistant":
            _append(turns, "assistant", _assistant_blocks(message, where))
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, where)])
        else:
            raise TranslationError(f"{where}.role '{role}' is not supported for Bedrock models.")
    return system, turns


def _append(turns: list[dict], role: str, blocks: list[dict]) -> None:
    if not blocks:
        return
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"].extend(blocks)
    else:
        turns.append({"role": role, "content": blocks})


def _text_blocks(content: object, where: str, kinds: tuple[str, ...] = ("text",)) -> list[dict]:
    """Content that may only hold text. Converse rejects blank text blocks, so those are left out."""
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of text parts.")
    blocks: list[dict] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in kinds:
            raise TranslationError(f"{where}.content[{j}] must be a text part.")
        _text_part(part, part.get(kind), blocks)
    return blocks


def _text_part(part: dict, text: object, blocks: list[dict]) -> None:
    if isinstance(text, str) and text:
        blocks.append({"text": text})
    if part.get("cache_control") and blocks:
        blocks.append({"cachePoint": {"type": "default"}})


def _user_blocks(content: object, where: str) -> list[dict]:
    if not isinstance(content, list):
        return _text_blocks(content, where)
    blocks: list[dict] = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            _text_part(part, part.get("text"), blocks)
        elif kind == "image_url":
            blocks.append(_image_block(part.get("image_url"), f"{where}.content[{j}]"))
            if part.get("cache_control"):
                blocks.append({"cachePoint": {"type": "default"}})
        else:
            raise TranslationError(f"{where}.content[{j}]: content part type '{kind}' is not supported for "
                                   "Bedrock models (text and image_url are).")
    return blocks


def _image_block(image: object, where: str) -> dict:
    """Converse takes image bytes (base64 in JSON) or an S3 object; the gateway never fetches a URL for
    the client, so plain http(s) image URLs are refused rather than dropped."""
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str):
        raise TranslationError(f"{where}.image_url.url must be a string.")
    if url.startswith("data:"):
        header, comma, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if not comma or encoding != "base64":
            raise TranslationError(f"{where}.image_url: data URLs must be base64 (data:<media type>;base64,<data>).")
        return {"image": {"format": _image_format(media_type.lower(), where), "source": {"bytes": data}}}
    if url.startswith("s3://"):
        extension = urlsplit(url).path.rpartition(".")[2].lower()
        return {"image": {"format": _image_format(f"image/{extension}", where), "source": {"s3Location": {"uri": url}}}}
    raise TranslationError(f"{where}.image_url: Bedrock takes images as base64 data URLs or s3:// URIs; "
                           "the gateway does not download image URLs.")


def _image_format(media_type: str, where: str) -> str:
    try:
        return IMAGE_FORMATS[media_type]
    except KeyError:
        raise TranslationError(f"{where}: image type '{media_type}' is not supported by Bedrock "
                               "(png, jpeg, gif and webp are).") from None


def _assistant_blocks(message: dict, where: str) -> list[dict]:
    blocks = _text_blocks(message.get("content"), where, kinds=("text", "refusal"))
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise TranslationError(f"{where}.tool_calls must be a list.")
    return blocks + [_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls)]


def _tool_use(call: object, where: str) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name") or not call.get("id"):
        raise TranslationError(f"{where} needs an id and a function.name.")
    raw = function.get("arguments") or ""
    try:  # no arguments at all means a call without parameters
        arguments = orjson.loads(raw) if not isinstance(raw, str) or raw.strip() else {}
    except orjson.JSONDecodeError:
        arguments = None
    if not isinstance(arguments, dict):
        raise TranslationError(f"{where}: function.arguments must be a JSON object encoded as a string.")
    return {"toolUse": {"toolUseId": call["id"], "name": function["name"], "input": arguments}}


def _tool_result(message: dict, where: str) -> dict:
    call_id = message.get("tool_call_id")
    if not call_id:
        raise TranslationError(f"{where}: tool messages need a tool_call_id.")
    content = [block for block in _text_blocks(message.get("content"), where) if "text" in block]
    return {"toolResult": {"toolUseId": call_id, "content": content}}


def _uses_tools(turns: list[dict]) -> bool:
    return any("toolUse" in block or "toolResult" in block for turn in turns for block in turn["content"])


def _tool_config(tools: object, choice: object, history_uses_tools: bool) -> dict | None:
    if not tools:
        if choice == "required" or isinstance(choice, dict):
            raise TranslationError("tool_choice requires a tool, but the request offers no tools.")
        return None
    if not isinstance(tools, list):
        raise TranslationError("tools must be a list.")
    if choice == "none":
        # Converse has no "none" choice. Leaving the tools out expresses it, unless earlier turns hold
        # tool calls: Bedrock then requires the tool definitions, and would let the model call them.
        if history_uses_tools:
            raise TranslationError("tool_choice 'none' cannot be expressed for Bedrock models once the "
                                   "conversation contains tool calls; use 'auto' or remove the tools.")
        return None
    config: dict[str, Any] = {"tools": [_tool_spec(tool, i) for i, tool in enumerate(tools)]}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict) and choice.get("type") == "function" and (choice.get("function") or {}).get("name"):
        config["toolChoice"] = {"tool": {"name": choice["function"]["name"]}}
    elif choice is not None:
        raise TranslationError("tool_choice must be 'none', 'auto', 'required' or "
                               "{'type': 'function', 'function': {'name': ...}}.")
    return config


def _tool_spec(tool: object, index: int) -> dict:
    function = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(tool, dict) or tool.get("type", "function") != "function" or not isinstance(function, dict):
        raise TranslationError(f"tools[{index}]: only function tools are supported for Bedrock models.")
    if not function.get("name"):
        raise TranslationError(f"tools[{index}].function.name is required.")
    spec: dict[str, Any] = {"name": function["name"], "inputSchema": {
        "json": function.get("parameters") or {"type": "object", "properties": {}}}}
    if function.get("description"):
        spec["description"] = function["description"]
    if function.get("strict"):
        spec["strict"] = True
    return {"toolSpec": spec}


def _output_config(fmt: object, system: list[dict]) -> dict | None:
    """json_schema maps onto Converse structured outputs (`outputConfig.textFormat`, the schema sent as a
    JSON string); a model without structured outputs makes Bedrock answer 400, which is passed on rather
    than hidden. json_object has no Converse form, so the model is instructed instead."""
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "text":
        return None
    if kind == "json_object":
        system.append({"text": JSON_OBJECT_INSTRUCTION})
        return None
    if kind != "json_schema":
        raise TranslationError("response_format.type must be 'text', 'json_object' or 'json_schema'.")
    spec = fmt.get("json_schema") or {}
    if not isinstance(spec, dict) or not isinstance(spec.get("schema"), dict):
        raise TranslationError("response_format.json_schema.schema must be a JSON Schema object.")
    definition = {"schema": orjson.dumps(spec["schema"]).decode()}
    for key in ("name", "description"):
        if spec.get(key):
            definition[key] = str(spec[key])
    return {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": definition}}}


# -- response ------------------------------------------------------------------------------------

def completion_id() -> str:
    """Converse answers carry no id; OpenAI clients expect one per completion."""
    return f"chatcmpl-bedrock-{uuid.uuid4().hex}"


def chat_completion(response: dict, model: str, *, created: int | None = None) -> dict:
    """An OpenAI `chat.completion` for a Converse answer. Reasoning and citation blocks have no OpenAI
    field and are left out."""
    message = (response.get("output") or {}).get("message") or {}
    texts, calls = [], []
    for block in message.get("content") or []:
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            calls.append({"id": use.get("toolUseId"), "type": "function", "function": {
                "name": use.get("name"), "arguments": orjson.dumps(use.get("input") or {}).decode()}})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        reply["tool_calls"] = calls
    return {"id": completion_id(), "object": "chat.completion",
            "created": int(time.time()) if created is None else created, "model": model,
            "choices": [{"index": 0, "message": reply, "finish_reason": finish_reason(response.get("stopReason")),
                         "logprobs": None}],
            "usage": chat_usage(response.get("usage") or {})}


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "", "stop")


def chat_usage(usage: dict) -> dict:
    """Bedrock counts cache reads and writes apart from `inputTokens`; OpenAI's prompt_tokens includes them."""
    cache_read = usage.get("cacheReadInputTokens") or 0
    prompt = (usage.get("inputTokens") or 0) + cache_read + (usage.get("cacheWriteInputTokens") or 0)
    completion = usage.get("outputTokens") or 0
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cache_read}}


# -- stream --------------------------------------------------------------------------------------

class StreamTranslator:
    """Turns ConverseStream events, one by one, into OpenAI `chat.completion.chunk` dicts.

    Tool calls are numbered in the order their blocks start (Converse numbers all content blocks).
    `finished` says whether `messageStop` arrived: a stream without it was cut and must be reported.
    Usage comes in the `metadata` event after `messageStop`; `usage_chunk` reports it at the end.
    """

    def __init__(self, model: str, *, created: int | None = None) -> None:
        self.id = completion_id()
        self.model = model
        self.created = int(time.time()) if created is None else created
        self.finished = False
        self._usage: dict = {}
        self._tool_index: dict[int, int] = {}

    def feed(self, event: str, data: dict) -> list[dict]:
        """Chunks for one event (often none)."""
        match event:
            case "messageStart":
                return [self._chunk({"role": "assistant", "content": ""})]
            case "contentBlockStart":
                use = (data.get("start") or {}).get("toolUse")
                if isinstance(use, dict):
                    position = self._tool_index[data.get("contentBlockIndex", -1)] = len(self._tool_index)
                    return [self._chunk({"tool_calls": [{"index": position, "id": use.get("toolUseId"),
                                                         "type": "function",
                                                         "function": {"name": use.get("name"), "arguments": ""}}]})]
            case "contentBlockDelta":
                return self._delta(data.get("contentBlockIndex", -1), data.get("delta") or {})
            case "messageStop":
                self.finished = True
                return [self._chunk({}, finish_reason(data.get("stopReason")))]
            case "metadata":
                self._usage = data.get("usage") or {}
        return []  # contentBlockStop, and event types Bedrock may add later

    def _delta(self, index: int, delta: dict) -> list[dict]:
        if isinstance(delta.get("text"), str) and delta["text"]:
            return [self._chunk({"content": delta["text"]})]
        fragment = (delta.get("toolUse") or {}).get("input")
        if fragment and index in self._tool_index:
            return [self._chunk({"tool_calls": [{"index": self._tool_index[index],
                                                 "function": {"arguments": fragment}}]})]
        return []

    def usage_chunk(self) -> dict:
        """The closing usage chunk OpenAI sends when `stream_options.include_usage` is on."""
        return {**self._envelope(), "choices": [], "usage": chat_usage(self._usage)}

    def _envelope(self) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model}

    def _chunk(self, delta: dict, finish: str | None = None) -> dict:
        return {**self._envelope(), "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
