"""Pure translation for Gemini API clients served by any chat provider: a generateContent request into the
unified (OpenAI chat) request, and the unified answer or stream chunks back into GenerateContentResponse
objects. The opposite direction of translate.py. No I/O, no Django."""
from __future__ import annotations

from typing import Any

import orjson

from providers.base import TranslationError
from providers.wire import openai_usage

# Gemini's finish reason for an OpenAI one; `stop` and `tool_calls` are both STOP (Gemini has no reason of
# its own for a function call).
FINISH_REASONS = {"length": "MAX_TOKENS", "content_filter": "SAFETY"}
_MODES = {"AUTO": "auto", "VALIDATED": "auto", "NONE": "none", "ANY": "required"}
_SCALARS = (("temperature", "temperature"), ("topP", "top_p"), ("topK", "top_k"), ("candidateCount", "n"),
            ("presencePenalty", "presence_penalty"), ("frequencyPenalty", "frequency_penalty"), ("seed", "seed"),
            ("maxOutputTokens", "max_tokens"))
# Requests for what only Google's service holds or produces; refused rather than dropped.
_REFUSED = {"cachedContent": "cached contents", "speechConfig": "speech output"}


# -- request -------------------------------------------------------------------------------------

def generate_to_chat(body: dict) -> dict:
    """The unified chat request for a generateContent body (camelCase, as the Gemini SDKs send it).

    `systemInstruction` becomes a system message; a model turn's `functionCall` parts become tool calls
    (with the call's `id`, or one made up and matched to its `functionResponse` by name); thought parts
    are left out, and so are `safetySettings` and `thinkingConfig`, which are Google's own controls.
    Gemini schemas (upper-case types, `nullable`) become JSON Schema.
    """
    config = body.get("generationConfig") or {}
    if not isinstance(config, dict):
        raise TranslationError("generationConfig: must be an object.")
    for name, what in _REFUSED.items():
        if body.get(name) or config.get(name):
            raise TranslationError(f"{name}: {what} are served only by Gemini models.")
    modalities = config.get("responseModalities")
    if modalities and [m for m in modalities if str(m).upper() != "TEXT"]:
        raise TranslationError("generationConfig.responseModalities: only TEXT is served by this model.")
    messages: list[dict] = []
    system = body.get("systemInstruction")
    if system:
        content = {"parts": [{"text": system}]} if isinstance(system, str) else system
        texts = _texts(content, "systemInstruction")
        messages.append({"role": "system", "content": texts[0] if len(texts) == 1 else
                         [{"type": "text", "text": text} for text in texts]})
    contents = body.get("contents")
    if isinstance(contents, dict):
        contents = [contents]
    if not isinstance(contents, list) or not contents:
        raise TranslationError("contents: must be a non-empty array.")
    pending: list[tuple[str, str]] = []  # (call id, function name) of calls not yet answered
    for i, content in enumerate(contents):
        messages.extend(_content(content, f"contents[{i}]", pending, i))
    request: dict[str, Any] = {"messages": messages}
    for gemini, openai in _SCALARS:
        if config.get(gemini) is not None:
            request[openai] = config[gemini]
    if config.get("stopSequences"):
        request["stop"] = list(config["stopSequences"])
    _response_format(config, request)
    tools = [_declaration(d, f"tools[{i}].functionDeclarations[{j}]")
             for i, tool in enumerate(body.get("tools") or ()) for j, d in enumerate(_declarations(tool, i))]
    if tools:
        request["tools"] = tools
        _tool_choice(((body.get("toolConfig") or {}).get("functionCallingConfig")) or {}, request)
    return request


def _texts(content: object, where: str) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        raise TranslationError(f"{where}.parts: must be an array.")
    return [p["text"] for p in parts if isinstance(p, dict) and isinstance(p.get("text"), str) and not p.get("thought")]


def _content(content: object, where: str, pending: list[tuple[str, str]], turn: int) -> list[dict]:
    if not isinstance(content, dict) or not isinstance(content.get("parts"), list):
        raise TranslationError(f"{where}: must be an object with parts.")
    role = content.get("role") or "user"
    if role not in ("user", "model", "function"):
        raise TranslationError(f"{where}.role: must be 'user' or 'model'.")
    if role == "model":
        return [_model_turn(content["parts"], where, pending, turn)]
    answers, parts = [], []
    for j, part in enumerate(content["parts"]):
        here = f"{where}.parts[{j}]"
        if not isinstance(part, dict):
            raise TranslationError(f"{here}: must be an object.")
        if isinstance(part.get("text"), str):
            if not part.get("thought"):
                parts.append({"type": "text", "text": part["text"]})
        elif "inlineData" in part or "fileData" in part:
            parts.append(_image(part, here))
        elif isinstance(part.get("functionResponse"), dict):
            answers.append(_function_response(part["functionResponse"], here, pending))
        else:
            raise TranslationError(f"{here}: this part kind is not supported for this model (text, images, "
                                   "functionCall and functionResponse are).")
    return answers + ([{"role": "user", "content": parts}] if parts else [])


def _image(part: dict, where: str) -> dict:
    inline, file = part.get("inlineData"), part.get("fileData")
    if isinstance(inline, dict) and str(inline.get("mimeType", "")).startswith("image/") and inline.get("data"):
        url = f"data:{inline['mimeType']};base64,{inline['data']}"
    elif isinstance(file, dict) and str(file.get("fileUri", "")).startswith(("https://", "http://")):
        url = file["fileUri"]
    else:
        raise TranslationError(f"{where}: only images (inline base64 data or an http(s) fileUri) are supported "
                               "for this model.")
    return {"type": "image_url", "image_url": {"url": url}}


def _model_turn(parts: list, where: str, pending: list[tuple[str, str]], turn: int) -> dict:
    texts, calls = [], []
    for j, part in enumerate(parts):
        if not isinstance(part, dict):
            raise TranslationError(f"{where}.parts[{j}]: must be an object.")
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        elif isinstance(part.get("functionCall"), dict):
            call = part["functionCall"]
            if not call.get("name"):
                raise TranslationError(f"{where}.parts[{j}].functionCall.name: required.")
            call_id = str(call.get("id") or f"call_{turn}_{j}")
            pending.append((call_id, call["name"]))
            calls.append({"id": call_id, "type": "function", "function": {
                "name": call["name"], "arguments": orjson.dumps(call.get("args") or {}).decode()}})
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
    if calls:
        message["tool_calls"] = calls
    return message


def _function_response(answer: dict, where: str, pending: list[tuple[str, str]]) -> dict:
    """The tool message answering a call: matched by `id` when the client sent one, else to the oldest
    unanswered call of that function."""
    name, given = answer.get("name"), answer.get("id")
    match = next((p for p in pending if (p[0] == given if given else p[1] == name)), None)
    if match is None:
        raise TranslationError(f"{where}.functionResponse: no earlier functionCall of '{name}' to answer.")
    pending.remove(match)
    return {"role": "tool", "tool_call_id": match[0], "content": orjson.dumps(answer.get("response") or {}).decode()}


def _declarations(tool: object, index: int) -> list:
    if not isinstance(tool, dict) or set(tool) - {"functionDeclarations"}:
        kinds = ", ".join(sorted(set(tool) - {"functionDeclarations"})) if isinstance(tool, dict) else "?"
        raise TranslationError(f"tools[{index}]: only functionDeclarations are supported for this model "
                               f"({kinds} run only on Gemini models).")
    return tool.get("functionDeclarations") or []


def _declaration(declaration: object, where: str) -> dict:
    if not isinstance(declaration, dict) or not declaration.get("name"):
        raise TranslationError(f"{where}.name: required.")
    function: dict[str, Any] = {"name": declaration["name"]}
    schema = declaration.get("parametersJsonSchema") or json_schema(declaration.get("parameters"))
    if schema:
        function["parameters"] = schema
    if declaration.get("description"):
        function["description"] = declaration["description"]
    return {"type": "function", "function": function}


def json_schema(schema: object) -> Any:
    """A Gemini Schema as JSON Schema: lower-case types, `nullable` as a "null" type, Gemini-only keys
    (`propertyOrdering`) left out."""
    if isinstance(schema, list):
        return [json_schema(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "type" and isinstance(value, str):
            out["type"] = value.lower()
        elif key in ("properties", "$defs", "definitions") and isinstance(value, dict):
            out[key] = {name: json_schema(sub) for name, sub in value.items()}
        elif key in ("items", "anyOf", "oneOf", "allOf"):
            out[key] = json_schema(value)
        elif key not in ("nullable", "propertyOrdering"):
            out[key] = value
    if schema.get("nullable") and isinstance(out.get("type"), str):
        out["type"] = [out["type"], "null"]
    return out


def _tool_choice(calling: dict, request: dict) -> None:
    mode = str(calling.get("mode") or "AUTO").upper()
    if mode not in _MODES:
        raise TranslationError("toolConfig.functionCallingConfig.mode: must be AUTO, ANY, NONE or VALIDATED.")
    names = calling.get("allowedFunctionNames") or []
    if mode == "ANY" and len(names) == 1:
        request["tool_choice"] = {"type": "function", "function": {"name": names[0]}}
    else:
        request["tool_choice"] = _MODES[mode]


def _response_format(config: dict, request: dict) -> None:
    schema = config.get("responseJsonSchema") or json_schema(config.get("responseSchema"))
    if schema:
        request["response_format"] = {"type": "json_schema", "json_schema": {"name": "response", "schema": schema}}
    elif config.get("responseMimeType") == "application/json":
        request["response_format"] = {"type": "json_object"}


# -- answer --------------------------------------------------------------------------------------

def usage_metadata(usage: dict | None) -> dict:
    """Gemini's `usageMetadata` for OpenAI's usage: the prompt count includes the cached tokens in both."""
    tokens = openai_usage(usage)
    return {"promptTokenCount": tokens.input_tokens, "candidatesTokenCount": tokens.output_tokens,
            "totalTokenCount": tokens.input_tokens + tokens.output_tokens,
            "cachedContentTokenCount": tokens.cached_tokens}


def _function_call(call_id: object, name: object, arguments: object) -> dict:
    try:
        args = orjson.loads(arguments) if isinstance(arguments, str) and arguments.strip() else {}
    except orjson.JSONDecodeError:
        args = {}
    return {"functionCall": {"id": call_id, "name": name, "args": args if isinstance(args, dict) else {}}}


def chat_to_generate(answer: dict) -> dict:
    """A GenerateContentResponse for a unified `chat.completion`, one candidate per choice."""
    candidates = []
    for choice in answer.get("choices") or ():
        message = choice.get("message") or {}
        parts: list[dict] = [{"text": message["content"]}] if message.get("content") else []
        parts += [_function_call(call.get("id"), (call.get("function") or {}).get("name"),
                                 (call.get("function") or {}).get("arguments"))
                  for call in message.get("tool_calls") or ()]
        candidates.append({"content": {"role": "model", "parts": parts}, "index": choice.get("index", 0),
                           "finishReason": FINISH_REASONS.get(choice.get("finish_reason") or "stop", "STOP")})
    return {"candidates": candidates, "usageMetadata": usage_metadata(answer.get("usage")),
            "modelVersion": answer.get("model") or "", "responseId": answer.get("id") or ""}


class GenerateChunks:
    """streamGenerateContent chunks, as (None, data) pairs, for a unified chunk stream: text as it comes;
    function calls (whose arguments OpenAI streams in pieces, Gemini sends whole) with the finish reason
    and the usage in the closing chunk from `end()`."""

    def __init__(self) -> None:
        self.id, self.model = "", ""
        self.calls: dict[tuple[int, int], dict] = {}
        self.finish: dict[int, str] = {}
        self.usage: dict | None = None

    def feed(self, chunk: dict) -> list[tuple[None, dict]]:
        self.id, self.model = chunk.get("id") or self.id, chunk.get("model") or self.model
        if chunk.get("usage"):
            self.usage = chunk["usage"]
        out = []
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta") or {}
            if delta.get("content"):
                out.append((None, self._response([{"content": {"role": "model", "parts": [{"text": delta["content"]}]},
                                                   "index": index}])))
            for call in delta.get("tool_calls") or ():
                held = self.calls.setdefault((index, call.get("index", 0)), {"id": None, "name": "", "arguments": ""})
                function = call.get("function") or {}
                held["id"] = call.get("id") or held["id"]
                held["name"] = function.get("name") or held["name"]
                held["arguments"] += function.get("arguments") or ""
            if choice.get("finish_reason"):
                self.finish[index] = FINISH_REASONS.get(choice["finish_reason"], "STOP")
        return out

    def end(self) -> list[tuple[None, dict]]:
        candidates = []
        for index in sorted(set(self.finish) | {i for i, _ in self.calls} or {0}):
            parts = [_function_call(held["id"], held["name"], held["arguments"])
                     for (i, _), held in sorted(self.calls.items()) if i == index] or [{"text": ""}]
            candidates.append({"content": {"role": "model", "parts": parts}, "index": index,
                               "finishReason": self.finish.get(index, "STOP")})
        return [(None, {**self._response(candidates), "usageMetadata": usage_metadata(self.usage)})]

    def _response(self, candidates: list[dict]) -> dict:
        return {"candidates": candidates, "modelVersion": self.model, "responseId": self.id}
