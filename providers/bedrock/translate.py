"""Pure translation between the unified OpenAI chat shapes and Bedrock's Converse API: request bodies,
responses, and ConverseStream events. No I/O and no Django, so every rule is testable from recorded JSON.

Nothing the client asked for that changes the answer is dropped silently: images, `tool_choice` and
`response_format` are all expressed in Converse terms, and what Converse cannot express is a 400 naming
the field.
"""
from __future__ import annotations

import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson

from providers import chat_request, completions
from providers.anthropic.thinking import ThinkingBlocks, carry_thinking, returned_thinking, thinking
from providers.base import TranslationError
from providers.chat_request import JSON_OBJECT_INSTRUCTION
from providers.wire import cache_split_usage

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


# -- request -------------------------------------------------------------------------------------

def converse_request(request: dict) -> dict:
    """The Converse / ConverseStream body for an OpenAI chat request (the model goes in the URL).

    System and developer messages become the top-level `system`; consecutive turns of one role are merged,
    since Converse requires user and assistant turns to alternate (tool results travel in a user turn).
    A part's `cache_control` becomes a Converse cache point after it. `temperature` is halved: OpenAI's
    0..2 onto Bedrock's 0..1, as for Anthropic, so a model answers alike through either provider.

    The parameters of providers/capabilities.py were mapped, refused or dropped by Bedrock's table before
    this is called. `reasoning_effort` reaches here only for Claude models (`BEDROCK_CLAUDE`): it becomes
    Anthropic's `thinking` in `additionalModelRequestFields`, which Converse hands to the model as is, with
    the same budget and max_tokens rules as on Anthropic's API. Dropped here because Converse has no
    equivalent: `top_k`, and any other field not handled here.
    """
    system, turns = chat_request.conversation(request, "Bedrock", system=_text_blocks, user=_user_blocks,
                                              assistant=_assistant_blocks, tool=_tool_result, append=_append)
    body: dict[str, Any] = {"messages": turns}
    config = _inference_config(request)
    if request.get("reasoning_effort") is not None:
        claude_thinking, config["maxTokens"] = thinking(request, config.get("maxTokens"))
        body["additionalModelRequestFields"] = {"thinking": claude_thinking}
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
    max_tokens = chat_request.max_tokens(request)
    if max_tokens is not None:
        config["maxTokens"] = max_tokens
    temperature = chat_request.unit_temperature(request)
    if temperature is not None:
        config["temperature"] = temperature
    if request.get("top_p") is not None:
        config["topP"] = request["top_p"]
    stop = chat_request.stop_sequences(request)
    if stop is not None:
        config["stopSequences"] = stop
    return config


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
    url = chat_request.image_url(image, where)
    if url.startswith("data:"):
        inline = chat_request.base64_data_url(url)
        if inline is None:
            raise TranslationError(f"{where}.image_url: data URLs must be base64 (data:<media type>;base64,<data>).")
        media_type, data = inline
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
    return ([_reasoning_block(block) for block in returned_thinking(calls)] + blocks
            + [_tool_use(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls)])


def _reasoning_block(block: dict) -> dict:
    """A Messages API thinking block (providers/anthropic/thinking.py) as Converse's reasoning block
    (botocore's bedrock-runtime model: `ReasoningContentBlock`)."""
    if block["type"] == "redacted_thinking":
        return {"reasoningContent": {"redactedContent": block.get("data") or ""}}
    return {"reasoningContent": {"reasoningText": {"text": block.get("thinking") or "",
                                                   "signature": block.get("signature") or ""}}}


def _thinking_block(reasoning: dict) -> dict:
    """The inverse of `_reasoning_block`, for a reasoning block of an answer."""
    if "redactedContent" in reasoning:
        return {"type": "redacted_thinking", "data": reasoning["redactedContent"]}
    text = reasoning.get("reasoningText") or {}
    return {"type": "thinking", "thinking": text.get("text") or "", "signature": text.get("signature") or ""}


def _tool_use(call: object, where: str) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name") or not call.get("id"):
        raise TranslationError(f"{where} needs an id and a function.name.")
    arguments = chat_request.tool_arguments(function)
    if arguments is None:
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
        chat_request.refuse_forced_tool_without_tools(choice)
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
    forced = chat_request.forced_function(choice)
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif forced:
        config["toolChoice"] = {"tool": {"name": forced}}
    elif choice is not None:
        raise TranslationError(chat_request.TOOL_CHOICE_FORMS)
    return config


def _tool_spec(tool: object, index: int) -> dict:
    function = chat_request.function_tool(tool, index, "Bedrock")
    spec: dict[str, Any] = {"name": function["name"], "inputSchema": {"json": chat_request.tool_parameters(function)}}
    if function.get("description"):
        spec["description"] = function["description"]
    if function.get("strict"):
        spec["strict"] = True
    return {"toolSpec": spec}


def _output_config(fmt: object, system: list[dict]) -> dict | None:
    """json_schema maps onto Converse structured outputs (`outputConfig.textFormat`, the schema sent as a
    JSON string); a model without structured outputs makes Bedrock answer 400, which is passed on rather
    than hidden. json_object has no Converse form, so the model is instructed instead."""
    kind = chat_request.response_format_type(fmt)
    if kind == "text":
        return None
    if kind == "json_object":
        system.append({"text": JSON_OBJECT_INSTRUCTION})
        return None
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
    field and stay out of the text; Claude's reasoning travels on the first tool call for the next turn, as
    on Anthropic's API (providers/anthropic/thinking.py)."""
    message = (response.get("output") or {}).get("message") or {}
    texts, calls, thoughts = [], [], []
    for block in message.get("content") or []:
        if isinstance(block.get("text"), str):
            texts.append(block["text"])
        elif isinstance(block.get("reasoningContent"), dict):
            thoughts.append(_thinking_block(block["reasoningContent"]))
        elif isinstance(block.get("toolUse"), dict):
            use = block["toolUse"]
            call = completions.tool_call(use.get("toolUseId"), use.get("name"), use.get("input"))
            calls.append(carry_thinking(call, thoughts) if not calls else call)
    return completions.single_choice(completion_id(), created, model,
                                     completions.assistant_message("".join(texts), calls),
                                     finish_reason(response.get("stopReason")), chat_usage(response.get("usage") or {}))


def finish_reason(stop_reason: str | None) -> str:
    return FINISH_REASONS.get(stop_reason or "", "stop")


def chat_usage(usage: dict) -> dict:
    """Bedrock counts cache reads and writes apart from `inputTokens`; OpenAI's prompt_tokens includes them."""
    return cache_split_usage(usage.get("inputTokens"), usage.get("cacheReadInputTokens"),
                             usage.get("cacheWriteInputTokens"), usage.get("outputTokens")).as_openai()


# -- stream --------------------------------------------------------------------------------------

class StreamTranslator(completions.SingleChoiceChunks):
    """Turns ConverseStream events, one by one, into OpenAI `chat.completion.chunk` dicts.

    `finished` says whether `messageStop` arrived: a stream without it was cut and must be reported.
    Usage comes in the `metadata` event after `messageStop`; `usage_chunk` reports it at the end.
    """

    def __init__(self, model: str, *, created: int | None = None) -> None:
        super().__init__(completion_id(), model, created)
        self.finished = False
        self._usage: dict = {}
        self._thinking = ThinkingBlocks()

    def feed(self, event: str, data: dict) -> list[dict]:
        """Chunks for one event (often none)."""
        match event:
            case "messageStart":
                return [self._chunk({"role": "assistant", "content": ""})]
            case "contentBlockStart":
                use = (data.get("start") or {}).get("toolUse")
                if isinstance(use, dict):
                    chunk = self._tool_call_start(data.get("contentBlockIndex", -1), use.get("toolUseId"),
                                                  use.get("name"))
                    carry_thinking(chunk["choices"][0]["delta"]["tool_calls"][0], self._thinking.take())
                    return [chunk]
            case "contentBlockDelta":
                return self._delta(data.get("contentBlockIndex", -1), data.get("delta") or {})
            case "contentBlockStop":
                return self._tool_call_end(data.get("contentBlockIndex", -1))
            case "messageStop":
                self.finished = True
                return [self._chunk({}, finish_reason(data.get("stopReason")))]
            case "metadata":
                self._usage = data.get("usage") or {}
        return []  # event types Bedrock may add later

    def _delta(self, index: int, delta: dict) -> list[dict]:
        if isinstance(delta.get("reasoningContent"), dict):
            self._reasoning(index, delta["reasoningContent"])
            return []
        if isinstance(delta.get("text"), str) and delta["text"]:
            return [self._chunk({"content": delta["text"]})]
        fragment = (delta.get("toolUse") or {}).get("input")
        if fragment:
            return self._tool_call_arguments(index, fragment)
        return []

    def _reasoning(self, index: int, delta: dict) -> None:
        """Converse streams reasoning as deltas only (no block start): rebuilt in Messages API terms."""
        if "redactedContent" in delta:
            self._thinking.start(index, {"type": "redacted_thinking", "data": delta["redactedContent"]})
            return
        self._thinking.start_once(index, {"type": "thinking"})
        if delta.get("text"):
            self._thinking.delta(index, {"type": "thinking_delta", "thinking": delta["text"]})
        if delta.get("signature"):
            self._thinking.delta(index, {"type": "signature_delta", "signature": delta["signature"]})

    def usage_chunk(self) -> dict:
        """The closing usage chunk OpenAI sends when `stream_options.include_usage` is on."""
        return self._usage_chunk(chat_usage(self._usage))
