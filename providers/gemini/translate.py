"""Pure translation between the unified (OpenAI-shaped) chat and embeddings API and Gemini's wire format:
generateContent requests and answers, streamGenerateContent chunks, embedContent / batchEmbedContents."""
from __future__ import annotations

import hashlib
import mimetypes
import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import orjson

from providers import chat_request, completions
from providers.base import TranslationError
from providers.embeddings import check_encoding_format, embeddings_list
from providers.gemini.reasoning import choice_logprobs, logprobs_config, thinking_config
from providers.wire import gemini_usage

_CONFIG_FIELDS = (
    ("temperature", "temperature"), ("top_p", "topP"), ("top_k", "topK"), ("n", "candidateCount"),
    ("presence_penalty", "presencePenalty"), ("frequency_penalty", "frequencyPenalty"), ("seed", "seed"),
)
_CALLING_MODES = {"none": "NONE", "auto": "AUTO", "required": "ANY"}
_CONTENT_FILTER_REASONS = frozenset({
    "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY", "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION", "IMAGE_OTHER", "ESCALATION", "MODEL_ARMOR",
})


def model_resource(model_name: str) -> str:
    """Gemini addresses models as `models/<id>`; names that already carry a collection (`tunedModels/x`,
    `models/x`) are used as they are."""
    return model_name if "/" in model_name else f"models/{model_name}"


# -- chat request -------------------------------------------------------------------------------------------

def build_generate_body(request: dict, model_name: str = "") -> dict:
    """The generateContent / streamGenerateContent body for an OpenAI chat request (same body for both);
    `model_name` picks how a reasoning effort is expressed (providers/gemini/reasoning.py)."""
    contents, system_parts = _contents(request.get("messages"))
    body: dict[str, Any] = {"contents": contents}
    if system_parts:
        body["systemInstruction"] = {"parts": system_parts}
    tools = request.get("tools")
    if tools:
        if not isinstance(tools, list):
            raise TranslationError("'tools' must be a list.")
        body["tools"] = [{"functionDeclarations": [_declaration(tool, i) for i, tool in enumerate(tools)]}]
        if request.get("tool_choice") is not None:
            body["toolConfig"] = {"functionCallingConfig": _calling_config(request["tool_choice"])}
    config = _generation_config(request, model_name)
    if config:
        body["generationConfig"] = config
    return body


def _contents(messages: Any) -> tuple[list[dict], list[dict]]:
    if not isinstance(messages, list) or not messages:
        raise TranslationError("'messages' must be a non-empty list.")
    contents: list[dict] = []
    system: list[dict] = []
    call_names: dict[str, str] = {}
    previous_role = None
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise TranslationError(f"messages[{i}] must be an object.")
        role = message.get("role")
        where = f"messages[{i}]"
        if role in ("system", "developer"):
            system.extend(_text_parts(message.get("content"), where))
        elif role == "user":
            _append(contents, "user", _user_parts(message.get("content"), where))
        elif role == "assistant":
            _append(contents, "model", _assistant_parts(message, where, call_names))
        elif role == "tool":
            part = _function_response(message, where, call_names)
            # Gemini wants the answers to one turn's parallel calls together in a single user turn.
            if previous_role == "tool":
                contents[-1]["parts"].append(part)
            else:
                contents.append({"role": "user", "parts": [part]})
        else:
            raise TranslationError(f"{where}.role {role!r} is not supported.")
        previous_role = role
    return contents, system


def _append(contents: list[dict], role: str, parts: list[dict]) -> None:
    # Gemini rejects a turn without parts, which an empty OpenAI message would otherwise become.
    if parts:
        contents.append({"role": role, "parts": parts})


def _text_parts(content: Any, where: str, allowed: tuple[str, ...] = ("text",)) -> list[dict]:
    if content is None:
        return []
    if isinstance(content, str):
        return [{"text": content}] if content else []
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of parts.")
    parts = (_text_part(part, f"{where}.content[{j}]", allowed) for j, part in enumerate(content))
    return [part for part in parts if part]


def _text_part(part: Any, where: str, allowed: tuple[str, ...] = ("text",)) -> dict | None:
    kind = part.get("type") if isinstance(part, dict) else None
    if kind not in allowed:
        raise TranslationError(f"{where} of type {kind!r} is not supported here.")
    text = part.get(kind)
    if not isinstance(text, str):
        raise TranslationError(f"{where}.{kind} must be a string.")
    return {"text": text} if text else None


def _user_parts(content: Any, where: str) -> list[dict]:
    if not isinstance(content, list):
        return _text_parts(content, where)
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "image_url":
            parts.append(_image_part(part.get("image_url"), f"{where}.content[{j}]"))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            if not isinstance(audio.get("data"), str):
                raise TranslationError(f"{where}.content[{j}].input_audio.data must be a base64 string.")
            parts.append({"inlineData": {"mimeType": f"audio/{audio.get('format', 'wav')}", "data": audio["data"]}})
        elif text := _text_part(part, f"{where}.content[{j}]"):
            parts.append(text)
    return parts


def _image_part(image: Any, where: str) -> dict:
    url = chat_request.image_url(image, where)
    if url.startswith("data:"):
        inline = chat_request.base64_data_url(url)
        if inline is None:
            raise TranslationError(f"{where}: data URLs must be base64-encoded (data:<mime>;base64,<data>).")
        mime, data = inline
        return {"inlineData": {"mimeType": mime or "image/jpeg", "data": data}}
    if url.startswith(("https://", "http://")):
        mime = mimetypes.guess_type(urlsplit(url).path)[0] or "image/jpeg"
        return {"fileData": {"mimeType": mime, "fileUri": url}}
    raise TranslationError(f"{where}: image_url must be a data URL or an http(s) URL.")


def _assistant_parts(message: dict, where: str, call_names: dict[str, str]) -> list[dict]:
    parts = _text_parts(message.get("content"), where, allowed=("text", "refusal"))
    calls = message.get("tool_calls") or []
    if not isinstance(calls, list):
        raise TranslationError(f"{where}.tool_calls must be a list.")
    for j, call in enumerate(calls):
        function = call.get("function") if isinstance(call, dict) else None
        name = function.get("name") if isinstance(function, dict) else None
        if not name:
            raise TranslationError(f"{where}.tool_calls[{j}].function.name is required.")
        function_call: dict[str, Any] = {"name": name, "args": _arguments(function.get("arguments"),
                                                                           f"{where}.tool_calls[{j}]")}
        if call.get("id"):
            function_call["id"] = call["id"]
            call_names[call["id"]] = name
        part: dict[str, Any] = {"functionCall": function_call}
        signature = _signature_of(call)
        if signature:
            part["thoughtSignature"] = signature
        parts.append(part)
    return parts


def _arguments(arguments: Any, where: str) -> dict:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, dict):
        return arguments
    try:
        parsed = orjson.loads(arguments)
    except (orjson.JSONDecodeError, TypeError):
        raise TranslationError(f"{where}.function.arguments is not valid JSON.") from None
    if not isinstance(parsed, dict):
        raise TranslationError(f"{where}.function.arguments must encode a JSON object.")
    return parsed


def _function_response(message: dict, where: str, call_names: dict[str, str]) -> dict:
    call_id = message.get("tool_call_id")
    name = call_names.get(call_id) if isinstance(call_id, str) else None
    if name is None:
        raise TranslationError(f"{where}.tool_call_id {call_id!r} does not match a tool call of an earlier assistant "
                               "message.")
    content = message.get("content")
    text = content if isinstance(content, str) else "".join(p["text"] for p in _text_parts(content, where))
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        value = text
    return {"functionResponse": {"id": call_id, "name": name,
                                 "response": value if isinstance(value, dict) else {"result": value}}}


def _declaration(tool: Any, index: int) -> dict:
    if not isinstance(tool, dict) or tool.get("type", "function") != "function":
        raise TranslationError(f"tools[{index}]: only tools of type 'function' are supported by Gemini.")
    function = tool.get("function") or {}
    if not function.get("name"):
        raise TranslationError(f"tools[{index}].function.name is required.")
    declaration = {"name": function["name"]}
    if function.get("description"):
        declaration["description"] = function["description"]
    if function.get("parameters") is not None:
        declaration["parametersJsonSchema"] = function["parameters"]
    return declaration


def _calling_config(choice: Any) -> dict:
    if isinstance(choice, str) and choice in _CALLING_MODES:
        return {"mode": _CALLING_MODES[choice]}
    forced = chat_request.forced_function(choice)
    if forced:
        return {"mode": "ANY", "allowedFunctionNames": [forced]}
    raise TranslationError("tool_choice must be 'none', 'auto', 'required' or "
                           "{'type': 'function', 'function': {'name'}}.")


def _generation_config(request: dict, model_name: str) -> dict:
    config = {native: request[name] for name, native in _CONFIG_FIELDS if request.get(name) is not None}
    max_tokens = request.get("max_completion_tokens")
    if max_tokens is None:
        max_tokens = request.get("max_tokens")
    if max_tokens is not None:
        config["maxOutputTokens"] = max_tokens
    stop = chat_request.stop_sequences(request)
    if stop is not None:
        config["stopSequences"] = stop
    config.update(_response_format(request.get("response_format")))
    if request.get("reasoning_effort") is not None:
        config["thinkingConfig"] = thinking_config(request["reasoning_effort"], model_name)
    config.update(logprobs_config(request))
    return config


def _response_format(response_format: Any) -> dict:
    if not response_format:
        return {}
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if kind == "text":
        return {}
    if kind == "json_object":
        return {"responseMimeType": "application/json"}
    if kind == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        config = {"responseMimeType": "application/json"}
        if schema is not None:
            config["responseJsonSchema"] = schema
        return config
    raise TranslationError(f"response_format type {kind!r} is not supported.")


# -- chat answers ---------------------------------------------------------------------------------------------

def _completion_id(response_id: str | None) -> str:
    return f"chatcmpl-gemini-{response_id or uuid.uuid4().hex}"


def finish_reason(reason: str | None, has_tool_calls: bool) -> str | None:
    """OpenAI's finish reasons form a closed set that typed clients decode strictly, so every Gemini reason
    that is neither a length limit nor a filter becomes `stop` (or `tool_calls`) instead of a new value."""
    if not reason:
        return None
    if reason == "MAX_TOKENS":
        return "length"
    if reason in _CONTENT_FILTER_REASONS:
        return "content_filter"
    return "tool_calls" if has_tool_calls else "stop"


def usage(metadata: dict | None) -> dict:
    """OpenAI usage from Gemini's, counted by the one Gemini usage reader (providers/wire.py) the native
    route uses too; thinking tokens are also reported as reasoning tokens."""
    metadata = metadata or {}
    tokens = gemini_usage(metadata)
    return {**tokens.as_openai(metadata.get("totalTokenCount")),
            "completion_tokens_details": {"reasoning_tokens": metadata.get("thoughtsTokenCount", 0)}}


def _read_parts(candidate: dict, response_id: str | None, index: int, first_call: int = 0) -> tuple[str, list[dict]]:
    """The answer text (thought summaries left out) and the OpenAI tool calls in one candidate's parts.

    Gemini often omits function-call ids; the synthesized ones depend only on the response id, the position
    and the call itself, so a streamed and a non-streamed reading of one answer agree."""
    texts: list[str] = []
    calls: list[dict] = []
    for part in (candidate.get("content") or {}).get("parts") or []:
        if part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            name = call.get("name", "")
            call_id = call.get("id") or _call_id(response_id, index, first_call + len(calls), name, call.get("args"))
            calls.append(_with_signature(completions.tool_call(call_id, name, call.get("args")),
                                         part.get("thoughtSignature")))
    return "".join(texts), calls


def _with_signature(call: dict, signature: Any) -> dict:
    """Gemini 3 signs its function calls (`thoughtSignature` on the part) and refuses the next turn when the
    signature does not come back with the call. OpenAI's tool call has no such field, so it travels where
    Google's own OpenAI-compatible endpoint puts it, `extra_content.google.thought_signature`, which the
    OpenAI SDKs keep on the message a client sends back."""
    if isinstance(signature, str) and signature:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def _signature_of(call: dict) -> str | None:
    """The thought signature a client sent back on an OpenAI tool call (see `_with_signature`)."""
    extra = call.get("extra_content")
    google = extra.get("google") if isinstance(extra, dict) else None
    signature = google.get("thought_signature") if isinstance(google, dict) else None
    return signature if isinstance(signature, str) and signature else None


def _call_id(response_id: str | None, index: int, position: int, name: str, args: Any) -> str:
    seed = b"|".join((str(response_id).encode(), str(index).encode(), str(position).encode(), name.encode(),
                      orjson.dumps(args or {}, option=orjson.OPT_SORT_KEYS)))
    return "call_" + hashlib.sha256(seed).hexdigest()[:24]


def chat_completion(response: dict, model: str) -> dict:
    """An OpenAI `chat.completion` for a generateContent answer; a prompt blocked before any candidate was
    generated becomes one empty choice finished by `content_filter`."""
    response_id = response.get("responseId")
    choices = []
    for position, candidate in enumerate(response.get("candidates") or []):
        index = candidate.get("index", position)
        text, calls = _read_parts(candidate, response_id, index)
        message = completions.assistant_message(text, calls)
        choices.append({"index": index, "message": message, "logprobs": choice_logprobs(candidate),
                        "finish_reason": finish_reason(candidate.get("finishReason"), bool(calls)) or "stop"})
    if not choices:
        blocked = bool((response.get("promptFeedback") or {}).get("blockReason"))
        choices.append({"index": 0, "message": {"role": "assistant", "content": None}, "logprobs": None,
                        "finish_reason": "content_filter" if blocked else "stop"})
    return {"id": _completion_id(response_id), "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": choices, "usage": usage(response.get("usageMetadata"))}


class StreamTranslator:
    """Turns streamGenerateContent chunks into OpenAI `chat.completion.chunk` dicts.

    Gemini marks the end of a stream only with a `finishReason` on each candidate, so `finished` (every
    candidate seen has finished, or the prompt was blocked) is what tells a complete stream from a cut one.
    Usage metadata is cumulative in Gemini chunks: the last one seen is reported by `usage_chunk`."""

    def __init__(self, model: str) -> None:
        self.model = model
        self.id = ""
        self.created = int(time.time())
        self._response_id: str | None = None
        self._usage: dict | None = None
        self._tool_counts: dict[int, int] = {}
        self._open: set[int] = set()
        self._any_finished = False

    @property
    def finished(self) -> bool:
        return self._any_finished and not self._open

    def feed(self, chunk: dict) -> list[dict]:
        """The OpenAI chunks for one Gemini chunk: possibly none, since a Gemini chunk may carry only usage."""
        if not self.id:
            self._response_id = chunk.get("responseId")
            self.id = _completion_id(self._response_id)
        if chunk.get("usageMetadata"):
            self._usage = chunk["usageMetadata"]
        out: list[dict] = []
        candidates = chunk.get("candidates") or []
        if not candidates and (chunk.get("promptFeedback") or {}).get("blockReason"):
            self._start(0, out)
            self._finish(0, "content_filter", out)
        for position, candidate in enumerate(candidates):
            index = candidate.get("index", position)
            self._start(index, out)
            first_call = self._tool_counts[index]
            text, calls = _read_parts(candidate, self._response_id, index, first_call)
            if text:
                out.append(self._chunk(index, {"content": text}, logprobs=choice_logprobs(candidate)))
            if calls:
                out.append(self._chunk(index, {"tool_calls": [
                    {"index": first_call + k, **call} for k, call in enumerate(calls)]}))
                self._tool_counts[index] += len(calls)
            reason = candidate.get("finishReason")
            if reason:
                self._finish(index, finish_reason(reason, self._tool_counts[index] > 0), out)
        return out

    def usage_chunk(self) -> dict:
        """The closing usage chunk OpenAI sends when `stream_options.include_usage` is on."""
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [], "usage": usage(self._usage)}

    def _start(self, index: int, out: list[dict]) -> None:
        if index not in self._tool_counts:
            self._tool_counts[index] = 0
            self._open.add(index)
            out.append(self._chunk(index, {"role": "assistant", "content": ""}))

    def _finish(self, index: int, reason: str | None, out: list[dict]) -> None:
        self._open.discard(index)
        self._any_finished = True
        out.append(self._chunk(index, {}, reason))

    def _chunk(self, index: int, delta: dict, reason: str | None = None, *, logprobs: dict | None = None) -> dict:
        return {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "choices": [{"index": index, "delta": delta, "logprobs": logprobs, "finish_reason": reason}]}


# -- embeddings -----------------------------------------------------------------------------------------------

def build_embeddings_call(request: dict, resource: str) -> tuple[str, dict]:
    """The method (`embedContent` for one string, `batchEmbedContents` for a list) and its body."""
    check_encoding_format(request)
    extra = {"outputDimensionality": request["dimensions"]} if request.get("dimensions") is not None else {}
    inputs = request.get("input")
    if isinstance(inputs, str):
        return "embedContent", {"content": {"parts": [{"text": inputs}]}, **extra}
    if isinstance(inputs, list) and inputs and all(isinstance(item, str) for item in inputs):
        return "batchEmbedContents", {"requests": [
            {"model": resource, "content": {"parts": [{"text": item}]}, **extra} for item in inputs]}
    raise TranslationError("Gemini embeddings take 'input' as a string or a non-empty list of strings "
                           "(not token arrays).")


def embeddings_response(response: dict, model: str, encoding_format: str | None = None) -> dict:
    """An OpenAI embeddings list; Gemini reports token usage only sometimes, so it defaults to zero."""
    if "embeddings" in response:
        vectors = [item.get("values") or [] for item in response.get("embeddings") or []]
    else:
        vectors = [(response.get("embedding") or {}).get("values") or []]
    return embeddings_list(vectors, model, gemini_usage(response.get("usageMetadata")).input_tokens, encoding_format)
