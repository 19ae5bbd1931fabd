"""Pure functions between the unified (OpenAI) API and Cohere's v2 API: `/v2/chat` (plain and streamed) and
`/v2/embed`. Field names follow Cohere's API reference as the official SDK (cohere 7.3.1, `cohere/v2/` and
`cohere/types/`) declares them. No I/O, no Django.

Cohere v2 messages are close to OpenAI's (system, user, assistant with `tool_calls`, tool with
`tool_call_id`), so translation is mostly renaming request fields; reasoning effort becomes `thinking`, whose
content stays out of the answer's text. The OpenAI parameters Cohere cannot express (`n` > 1, log
probabilities, `logit_bias`, `parallel_tool_calls: false`...) were refused by Cohere's table
(providers/capabilities.py) before this is called; a forced named tool is refused here.
"""
from __future__ import annotations

import uuid
from typing import Any

from providers import chat_request, completions
from providers.base import ProviderError, TranslationError
from providers.embeddings import check_encoding_format, embeddings_list
from providers.wire import cohere_usage

FINISH_REASONS = {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"}
# Finish reasons of a generation that did not complete (Cohere's ChatFinishReason): an error, never `stop`.
FAILED = {"ERROR": "failed with an internal error", "TIMEOUT": "ran out of time"}
# Unified field -> Cohere field, copied as they are.
RENAMED = {"temperature": "temperature", "top_p": "p", "seed": "seed", "frequency_penalty": "frequency_penalty",
           "presence_penalty": "presence_penalty"}
DEFAULT_INPUT_TYPE = "search_document"
INPUT_TYPES = ("search_document", "search_query", "classification", "clustering")


# -- chat request ---------------------------------------------------------------------------------

def chat_body(request: dict, model: str, *, stream: bool) -> dict:
    """The `/v2/chat` body for a unified chat request. Raises TranslationError for what Cohere cannot do."""
    messages = request.get("messages")
    if not isinstance(messages, list) or not messages:
        raise TranslationError("messages must be a non-empty list.")
    body: dict[str, Any] = {"model": model, "messages": [_message(m, f"messages[{i}]") for i, m in enumerate(messages)]}
    if stream:
        body["stream"] = True
    tokens = chat_request.max_tokens(request)
    if tokens is not None:
        body["max_tokens"] = tokens
    for field, name in RENAMED.items():
        if request.get(field) is not None:
            body[name] = request[field]
    stop = chat_request.stop_sequences(request)
    if stop:
        body["stop_sequences"] = stop
    _tools(request, body)
    fmt = request.get("response_format")
    if fmt is not None:
        _response_format(fmt, body)
    if request.get("reasoning_effort") is not None:
        # cohere 7.3.1 `types.Thinking`: `disabled`, or `enabled` with a `token_budget`.
        budget = chat_request.reasoning_budget(request, "Cohere")
        body["thinking"] = {"type": "disabled"} if budget is None else {"type": "enabled", "token_budget": budget}
    return body


def _message(message: object, where: str) -> dict:
    if not isinstance(message, dict):
        raise TranslationError(f"{where} must be an object.")
    role = message.get("role")
    content = message.get("content")
    if role in ("system", "developer"):
        return {"role": "system", "content": _text_content(content, where)}
    if role == "user":
        return {"role": "user", "content": _user_content(content, where)}
    if role == "assistant":
        out: dict[str, Any] = {"role": "assistant"}
        if content:
            out["content"] = _text_content(content, where, kinds=("text", "refusal"))
        calls = message.get("tool_calls") or []
        if not isinstance(calls, list):
            raise TranslationError(f"{where}.tool_calls must be a list.")
        if calls:
            out["tool_calls"] = [_tool_call(call, f"{where}.tool_calls[{j}]") for j, call in enumerate(calls)]
        if "content" not in out and "tool_calls" not in out:
            out["content"] = ""
        return out
    if role == "tool":
        if not message.get("tool_call_id"):
            raise TranslationError(f"{where}: tool messages need a tool_call_id.")
        return {"role": "tool", "tool_call_id": message["tool_call_id"], "content": _text_content(content, where)}
    raise TranslationError(f"{where}.role '{role}' is not supported for Cohere models.")


def _text_content(content: object, where: str, kinds: tuple[str, ...] = ("text",)) -> str:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of text parts.")
    texts = []
    for j, part in enumerate(content):
        if not isinstance(part, dict) or part.get("type") not in kinds:
            raise TranslationError(f"{where}.content[{j}]: only text parts are supported here for Cohere models.")
        texts.append(str(part.get("text") or part.get("refusal") or ""))
    return "".join(texts)


def _user_content(content: object, where: str) -> str | list[dict]:
    """Text, or text and image parts (Cohere's vision models take OpenAI-shaped `image_url` parts)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content must be a string or a list of parts.")
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"type": "text", "text": str(part.get("text") or "")})
        elif kind == "image_url":
            parts.append({"type": "image_url",
                          "image_url": {"url": chat_request.image_url(part.get("image_url"), f"{where}.content[{j}]")}})
        else:
            raise TranslationError(f"{where}.content[{j}]: part type '{kind}' is not supported for Cohere models.")
    return parts


def _tool_call(call: object, where: str) -> dict:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not function.get("name") or not call.get("id"):
        raise TranslationError(f"{where} needs an id and a function.name.")
    if chat_request.tool_arguments(function) is None:
        raise TranslationError(f"{where}: function.arguments must be a JSON object encoded as a string.")
    return {"id": call["id"], "type": "function",
            "function": {"name": function["name"], "arguments": function.get("arguments") or "{}"}}


def _tools(request: dict, body: dict) -> None:
    tools, choice = request.get("tools"), request.get("tool_choice")
    if not tools:
        chat_request.refuse_forced_tool_without_tools(choice)
        return
    if not isinstance(tools, list):
        raise TranslationError("tools must be a list.")
    specs = []
    for i, tool in enumerate(tools):
        function = chat_request.function_tool(tool, i, "Cohere")
        spec = {"name": function["name"], "parameters": chat_request.tool_parameters(function)}
        if function.get("description"):
            spec["description"] = function["description"]
        specs.append({"type": "function", "function": spec})
    body["tools"] = specs
    if chat_request.forced_function(choice):
        raise TranslationError("tool_choice: Cohere models cannot be forced to call one named tool; "
                               "use 'required', 'auto' or 'none'.")
    if choice == "required":
        body["tool_choice"] = "REQUIRED"
    elif choice == "none":
        body["tool_choice"] = "NONE"
    elif choice not in (None, "auto"):
        raise TranslationError(chat_request.TOOL_CHOICE_FORMS)


def _response_format(fmt: object, body: dict) -> None:
    kind = chat_request.response_format_type(fmt)
    if kind == "json_object":
        body["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema = (fmt.get("json_schema") or {}).get("schema") if isinstance(fmt.get("json_schema"), dict) else None
        if not isinstance(schema, dict):
            raise TranslationError("response_format.json_schema.schema must be a JSON Schema object.")
        body["response_format"] = {"type": "json_object", "json_schema": schema}


# -- chat answer ----------------------------------------------------------------------------------

def finish_reason(reason: object) -> str:
    return FINISH_REASONS.get(str(reason or ""), "stop")


def check_finished(reason: object, error: object = None) -> None:
    """Raise a retryable ProviderError for a generation Cohere reports as failed (`ERROR`, `TIMEOUT`, or
    a stream's `error`): whatever text came is incomplete."""
    if error:
        raise ProviderError(502, f"Provider 'cohere' stream error: {error}", retryable=True)
    if reason in FAILED:
        raise ProviderError(502, f"Provider 'cohere' ended the generation with {reason}: it {FAILED[str(reason)]}.",
                            retryable=True)


def chat_completion(answer: dict, model: str) -> dict:
    """An OpenAI `chat.completion` for a `/v2/chat` answer. Citations and the tool plan have no OpenAI field."""
    check_finished(answer.get("finish_reason"))
    message = answer.get("message") or {}
    text = "".join(item.get("text") or "" for item in message.get("content") or []
                   if isinstance(item, dict) and item.get("type") == "text")
    calls = [{"id": call.get("id"), "type": "function",
              "function": {"name": (call.get("function") or {}).get("name"),
                           "arguments": (call.get("function") or {}).get("arguments") or "{}"}}
             for call in message.get("tool_calls") or [] if isinstance(call, dict)]
    return completions.single_choice(str(answer.get("id") or _completion_id()), None, model,
                                     completions.assistant_message(text, calls),
                                     finish_reason(answer.get("finish_reason")),
                                     cohere_usage(answer.get("usage")).as_openai())


def _completion_id() -> str:
    return f"chatcmpl-cohere-{uuid.uuid4().hex}"


class StreamTranslator(completions.SingleChoiceChunks):
    """Turns `/v2/chat` stream events (each data line a JSON object with its `type`) into OpenAI chunks.
    `finished` says whether `message-end` arrived; `usage_chunk` reports its usage at the end."""

    def __init__(self, model: str) -> None:
        super().__init__(_completion_id(), model)
        self.finished = False
        self._usage: dict | None = None
        self._arguments_seen: dict[Any, bool] = {}

    def feed(self, event: dict) -> list[dict]:
        kind = event.get("type")
        delta = (event.get("delta") or {}).get("message") or {}
        index = event.get("index", -1)
        if kind == "message-start":
            if event.get("id"):
                self.id = str(event["id"])
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content-delta":
            text = (delta.get("content") or {}).get("text")
            return [self._chunk({"content": text})] if text else []
        if kind == "tool-call-start":
            call = delta.get("tool_calls") or {}
            function = call.get("function") or {}
            chunks = [self._tool_call_start(index, call.get("id"), function.get("name"))]
            return chunks + self._arguments(index, function.get("arguments"))
        if kind == "tool-call-delta":
            return self._arguments(index, ((delta.get("tool_calls") or {}).get("function") or {}).get("arguments"))
        if kind == "tool-call-end":
            # A call without parameters still ends with a JSON object, as the non-streaming answer has.
            return [] if self._arguments_seen.get(index, True) else self._tool_call_arguments(index, "{}")
        if kind == "message-end":
            end = event.get("delta") or {}
            check_finished(end.get("finish_reason"), end.get("error"))
            self.finished = True
            self._usage = end.get("usage")
            return [self._chunk({}, finish_reason(end.get("finish_reason")))]
        return []  # content-start/-end, tool-plan-delta, citations, debug

    def _arguments(self, index: Any, fragment: object) -> list[dict]:
        self._arguments_seen[index] = self._arguments_seen.get(index, False) or bool(fragment)
        return self._tool_call_arguments(index, str(fragment)) if fragment else []

    def usage_chunk(self) -> dict:
        return self._usage_chunk(cohere_usage(self._usage).as_openai())


# -- embeddings -----------------------------------------------------------------------------------

def embed_body(request: dict, model: str) -> dict:
    """The `/v2/embed` body. Cohere's embedding models need an `input_type`; the unified request may name
    one (an extra field), else documents are assumed."""
    check_encoding_format(request)
    inputs = request.get("input")
    texts = [inputs] if isinstance(inputs, str) else inputs
    if not isinstance(texts, list) or not texts or not all(isinstance(text, str) for text in texts):
        raise TranslationError("input must be a string or a non-empty list of strings for Cohere models.")
    input_type = request.get("input_type") or DEFAULT_INPUT_TYPE
    if input_type not in INPUT_TYPES:
        raise TranslationError(f"input_type must be one of {', '.join(INPUT_TYPES)}.")
    body: dict[str, Any] = {"model": model, "texts": texts, "input_type": input_type, "embedding_types": ["float"]}
    if request.get("dimensions") is not None:
        body["output_dimension"] = request["dimensions"]
    return body


def embeddings_response(answer: dict, model: str, encoding_format: str | None) -> dict:
    vectors = (answer.get("embeddings") or {}).get("float")
    if not isinstance(vectors, list):
        raise ProviderError(502, "Provider 'cohere' answered without float embeddings.", retryable=False)
    tokens = cohere_usage({"billed_units": (answer.get("meta") or {}).get("billed_units")}).input_tokens
    return embeddings_list(vectors, model, tokens, encoding_format)
