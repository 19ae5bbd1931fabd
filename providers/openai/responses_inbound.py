"""Pure translation for OpenAI Responses API clients served by a chat-only provider: a Responses request into
the unified (OpenAI chat) request, and the unified answer or stream chunks back into a Response object or
the Responses stream events. Stateful features (stored responses, conversations) need the provider's
storage and are refused. No I/O, no Django."""
from __future__ import annotations

import time
from typing import Any

import orjson

from providers.base import TranslationError
from providers.blocks import Block, BlockWalk, Delta, Opened, Start, Step
from providers.wire import openai_usage

# Features that read or write state kept by OpenAI's own service, which a chat provider does not have.
_STATEFUL = {
    "previous_response_id": "continuing a stored response",
    "conversation": "conversations",
    "prompt": "stored prompt templates",
}
# Why a response is incomplete, for OpenAI chat finish reasons that cut the answer short.
INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}


# -- request -------------------------------------------------------------------------------------

def responses_to_chat(body: dict) -> dict:
    """The unified chat request for a Responses request.

    `instructions` becomes a system message; message items become chat messages, `function_call` items
    assistant tool calls and `function_call_output` items tool messages; reasoning items are left out (other
    models cannot read them). `metadata` is only echoed back in the response.
    """
    for name, what in _STATEFUL.items():
        if body.get(name):
            raise TranslationError(f"{name}: {what} need the provider's storage, which this model does not "
                                   "have; send the whole conversation in 'input' instead.")
    if body.get("store") is True:
        raise TranslationError("store: responses served by this model cannot be stored for later retrieval; "
                               "send 'store': false.")
    messages: list[dict] = []
    if body.get("instructions"):
        if not isinstance(body["instructions"], str):
            raise TranslationError("instructions: must be a string.")
        messages.append({"role": "system", "content": body["instructions"]})
    given = body.get("input")
    if isinstance(given, str):
        messages.append({"role": "user", "content": given})
    elif isinstance(given, list) and given:
        for i, item in enumerate(given):
            _item(item, f"input[{i}]", messages)
    else:
        raise TranslationError("input: must be a string or a non-empty array of items.")
    request: dict[str, Any] = {"messages": messages}
    if body.get("max_output_tokens") is not None:
        request["max_tokens"] = body["max_output_tokens"]
    if body.get("top_logprobs"):
        raise TranslationError("top_logprobs: log probabilities are not returned by responses served by this "
                               "model.")
    for name in ("temperature", "top_p", "parallel_tool_calls"):
        if body.get(name) is not None:
            request[name] = body[name]
    user = body.get("safety_identifier") or body.get("user")
    if user:
        request["user"] = user
    effort = (body.get("reasoning") or {}).get("effort") if isinstance(body.get("reasoning"), dict) else None
    if effort:
        request["reasoning_effort"] = effort
    if body.get("tools"):
        request["tools"] = [_tool(tool, f"tools[{i}]") for i, tool in enumerate(body["tools"])]
    if body.get("tool_choice") is not None:
        request["tool_choice"] = _tool_choice(body["tool_choice"])
    _text_format(body.get("text"), request)
    if body.get("stream") is True:
        request["stream"] = True
    return request


def _item(item: object, where: str, messages: list[dict]) -> None:
    if not isinstance(item, dict):
        raise TranslationError(f"{where}: must be an object.")
    kind = item.get("type") or "message"
    if kind == "message":
        role = item.get("role")
        if role not in ("user", "assistant", "system", "developer"):
            raise TranslationError(f"{where}.role: must be user, assistant, system or developer.")
        messages.append({"role": role, "content": _content(item.get("content"), where)})
    elif kind == "function_call":
        if not item.get("call_id") or not item.get("name"):
            raise TranslationError(f"{where}: function_call items need a call_id and a name.")
        call = {"id": item["call_id"], "type": "function",
                "function": {"name": item["name"], "arguments": item.get("arguments") or "{}"}}
        last = messages[-1] if messages else None
        if last and last["role"] == "assistant" and "tool_calls" in last:
            last["tool_calls"].append(call)
        elif last and last["role"] == "assistant" and isinstance(last.get("content"), (str, type(None))):
            last["tool_calls"] = [call]
        else:
            messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
    elif kind == "function_call_output":
        if not item.get("call_id"):
            raise TranslationError(f"{where}.call_id: required.")
        output = item.get("output")
        messages.append({"role": "tool", "tool_call_id": item["call_id"],
                         "content": output if isinstance(output, str) else _text_of(output, where)})
    elif kind != "reasoning":
        raise TranslationError(f"{where}: input items of type '{kind}' are not supported for this model "
                               "(message, function_call, function_call_output are).")


def _content(content: object, where: str) -> str | list[dict]:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise TranslationError(f"{where}.content: must be a string or an array of parts.")
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text"):
            parts.append({"type": "text", "text": part.get("text") or ""})
        elif kind == "refusal":
            parts.append({"type": "text", "text": part.get("refusal") or ""})
        elif kind == "input_image" and isinstance(part.get("image_url"), str):
            image = {"url": part["image_url"]}
            if part.get("detail"):
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise TranslationError(f"{where}.content[{j}]: part type '{kind}' is not supported for this model "
                                   "(input_text, output_text and input_image with an image_url are).")
    if all(part["type"] == "text" for part in parts):
        return "".join(part["text"] for part in parts)
    return parts


def _text_of(output: object, where: str) -> str:
    content = _content(output, where)
    if not isinstance(content, str):
        raise TranslationError(f"{where}.output: only text outputs are supported for this model.")
    return content


def _tool(tool: object, where: str) -> dict:
    if not isinstance(tool, dict) or tool.get("type") != "function" or not tool.get("name"):
        kind = tool.get("type") if isinstance(tool, dict) else None
        raise TranslationError(f"{where}: only function tools are supported for this model ('{kind}' is a "
                               "built-in tool of OpenAI's service).")
    function = {"name": tool["name"], "parameters": tool.get("parameters") or {"type": "object", "properties": {}}}
    for name in ("description", "strict"):
        if tool.get(name) is not None:
            function[name] = tool[name]
    return {"type": "function", "function": function}


def _tool_choice(choice: object) -> object:
    if choice in ("auto", "none", "required"):
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        return {"type": "function", "function": {"name": choice["name"]}}
    raise TranslationError("tool_choice: must be 'auto', 'none', 'required' or {'type': 'function', 'name': ...}.")


def _text_format(text: object, request: dict) -> None:
    fmt = text.get("format") if isinstance(text, dict) else None
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_object":
        request["response_format"] = {"type": "json_object"}
    elif kind == "json_schema":
        schema = {"name": fmt.get("name") or "response", "schema": fmt.get("schema") or {}}
        if fmt.get("strict") is not None:
            schema["strict"] = fmt["strict"]
        request["response_format"] = {"type": "json_schema", "json_schema": schema}


# -- answer --------------------------------------------------------------------------------------

def usage_block(usage: dict | None) -> dict:
    """Responses' `usage` for OpenAI chat's (the same counts, named as Responses names them)."""
    tokens = openai_usage(usage)
    reasoning = ((usage or {}).get("completion_tokens_details") or {}).get("reasoning_tokens") or 0
    details = {"cached_tokens": tokens.cached_tokens, "cache_write_tokens": 0}
    return {"input_tokens": tokens.input_tokens, "input_tokens_details": details,
            "output_tokens": tokens.output_tokens, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": tokens.input_tokens + tokens.output_tokens}


def _response(body: dict, response_id: str, model: str, created: int, output: list[dict], status: str,
              finish: str | None, usage: dict | None) -> dict:
    """The Response object, echoing the request's settings as OpenAI's service does."""
    reason = INCOMPLETE.get(finish or "")
    return {"id": response_id, "object": "response", "created_at": created,
            "status": "incomplete" if reason and status == "completed" else status,
            "incomplete_details": {"reason": reason} if reason else None, "model": model,
            "output": output, "instructions": body.get("instructions"),
            "max_output_tokens": body.get("max_output_tokens"), "metadata": body.get("metadata") or {},
            "parallel_tool_calls": body.get("parallel_tool_calls", True), "previous_response_id": None,
            "temperature": body.get("temperature"), "top_p": body.get("top_p"),
            "tool_choice": body.get("tool_choice", "auto"), "tools": body.get("tools") or [], "store": False,
            "text": body.get("text") or {"format": {"type": "text"}},
            "usage": usage_block(usage) if usage is not None else None}


def _response_id(completion_id: object) -> str:
    text = str(completion_id or "")
    return text if text.startswith("resp_") else f"resp_{text or int(time.time() * 1000)}"


def _message_item(item_id: str, text: str, status: str) -> dict:
    return {"type": "message", "id": item_id, "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}] if status == "completed" or text
            else []}


def _call_item(call_id: str, name: str, arguments: str, status: str) -> dict:
    return {"type": "function_call", "id": f"fc_{call_id}", "call_id": call_id, "name": name,
            "arguments": arguments, "status": status}


def chat_to_response(answer: dict, body: dict) -> dict:
    """A Response object for a unified `chat.completion` (its first choice)."""
    choice = (answer.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    response_id = _response_id(answer.get("id"))
    output = [_message_item(f"msg_{response_id}", message["content"], "completed")] if message.get("content") else []
    output += [_call_item(call.get("id"), (call.get("function") or {}).get("name"),
                          (call.get("function") or {}).get("arguments") or "{}", "completed")
               for call in message.get("tool_calls") or ()]
    return _response(body, response_id, answer.get("model") or "", int(answer.get("created") or time.time()),
                     output, "completed", choice.get("finish_reason"), answer.get("usage"))


class ResponseEvents:
    """The Responses stream events, as (event name, data) pairs, for a unified chunk stream:
    response.created and response.in_progress, then per output item output_item.added, its deltas
    (content_part / output_text for a message, function_call_arguments for a call) and their .done events,
    and response.completed (or response.incomplete) with the whole response from `end()`.

    The output items are providers.blocks' walk: each text run and each tool call is one item, done when the
    next one starts; a late piece of a call already done still joins its arguments, without an event."""

    def __init__(self, body: dict) -> None:
        self.body = body
        self.walk = BlockWalk()
        self.sequence = 0
        self.id, self.model, self.created = "", "", int(time.time())
        self.output: list[dict] = []   # finished items
        self.item: dict | None = None  # the item being streamed
        self.calls: dict[Any, dict] = {}

    def _event(self, kind: str, **data: Any) -> tuple[str, dict]:
        self.sequence += 1
        return kind, {"type": kind, "sequence_number": self.sequence - 1, **data}

    def _snapshot(self, status: str) -> dict:
        """The response so far; in progress it has no finish reason or usage yet (the walk may already hold
        the first chunk's)."""
        if status == "in_progress":
            return _response(self.body, self.id, self.model, self.created, list(self.output), status, None, None)
        return _response(self.body, self.id, self.model, self.created, list(self.output), status,
                         self.walk.finish_reason, self.walk.usage)

    def feed(self, chunk: dict) -> list[tuple[str, dict]]:
        return [event for step in self.walk.feed(chunk) for event in self._events(step)]

    def end(self) -> list[tuple[str, dict]]:
        out = [event for step in self.walk.end() for event in self._events(step)]
        status = "incomplete" if INCOMPLETE.get(self.walk.finish_reason or "") else "completed"
        return out + [self._event(f"response.{status}", response=self._snapshot("completed"))]

    def _events(self, step: Step) -> list[tuple[str, dict]]:
        if isinstance(step, Start):
            self.id, self.model = _response_id(step.id), step.model or ""
            return [self._event("response.created", response=self._snapshot("in_progress")),
                    self._event("response.in_progress", response=self._snapshot("in_progress"))]
        if isinstance(step, Opened):
            return self._added(step.block)
        if isinstance(step, Delta):
            return self._delta(step)
        return self._done()

    def _where(self) -> dict:
        return {"item_id": self.item["id"], "output_index": len(self.output)}

    def _added(self, block: Block) -> list[tuple[str, dict]]:
        if block.kind == "tool":
            self.item = self.calls[block.call_index] = _call_item(block.call_id or f"call_{block.call_index}",
                                                                  block.name, "", "in_progress")
            return [self._event("response.output_item.added", output_index=len(self.output), item=dict(self.item))]
        self.item = {**_message_item(f"msg_{self.id}_{len(self.output)}", "", "in_progress"), "text": ""}
        item = {k: v for k, v in self.item.items() if k != "text"}
        return [self._event("response.output_item.added", output_index=len(self.output), item=item),
                self._event("response.content_part.added", **self._where(), content_index=0,
                            part={"type": "output_text", "text": "", "annotations": []})]

    def _delta(self, step: Delta) -> list[tuple[str, dict]]:
        if step.block.kind == "text":
            self.item["text"] += step.text
            return [self._event("response.output_text.delta", **self._where(), content_index=0, delta=step.text,
                                logprobs=[])]
        self.calls[step.block.call_index]["arguments"] += step.text
        if step.late:
            return []
        return [self._event("response.function_call_arguments.delta", **self._where(), delta=step.text)]

    def _done(self) -> list[tuple[str, dict]]:
        item, self.item = self.item, None
        where = {"item_id": item["id"], "output_index": len(self.output)}
        if item["type"] == "message":
            text = item.pop("text")
            part = {"type": "output_text", "text": text, "annotations": []}
            done = _message_item(item["id"], text, "completed")
            out = [self._event("response.output_text.done", **where, content_index=0, text=text, logprobs=[]),
                   self._event("response.content_part.done", **where, content_index=0, part=part)]
        else:
            item["arguments"] = item["arguments"] or "{}"
            item["status"] = "completed"
            done = item
            out = [self._event("response.function_call_arguments.done", **where, arguments=item["arguments"],
                               name=item["name"])]
        self.output.append(done)
        return out + [self._event("response.output_item.done", output_index=where["output_index"], item=done)]
