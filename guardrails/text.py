"""Where the text is in each wire format, for requests and (non-streaming) responses.

A `Slot` points at one string inside a parsed body, so a guardrail can read it and a sanitizing guardrail
can write the rewritten text back in place: the body keeps its exact shape. Covered: every role's message
text (string or text parts), tool results, tool-call arguments (OpenAI's JSON strings; Anthropic's and
Gemini's argument objects through their string values), system prompts, embeddings inputs. Token-id
embeddings inputs and binary parts (images, audio) carry no text and are not seen.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from providers.wire import Api

# APIs that share another API's shapes.
ALIASES = {Api.GEMINI_STREAM: Api.GEMINI_GENERATE, Api.ANTHROPIC_COUNT_TOKENS: Api.ANTHROPIC_MESSAGES}
MAX_DEPTH = 32


@dataclass(slots=True)
class Slot:
    container: dict | list
    key: str | int

    @property
    def text(self) -> str:
        return self.container[self.key]

    def set(self, text: str) -> None:
        self.container[self.key] = text


def _slot(container: Any, key: str | int) -> Iterator[Slot]:
    if isinstance(container, dict) and isinstance(container.get(key), str):
        yield Slot(container, key)


def _string_leaves(value: Any, depth: int = 0) -> Iterator[Slot]:
    """Every string inside a JSON object (tool arguments given as objects), bounded in depth."""
    if depth > MAX_DEPTH:
        return
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in items:
        if isinstance(item, str):
            yield Slot(value, key)
        else:
            yield from _string_leaves(item, depth + 1)


def dicts(value: Any) -> Iterator[dict]:
    if isinstance(value, list):
        yield from (item for item in value if isinstance(item, dict))


# -- OpenAI chat completions -------------------------------------------------------------------------

def _content(holder: dict) -> Iterator[Slot]:
    """`content` as a plain string or as a list of parts with `text`, the two shapes OpenAI's APIs use."""
    content = holder.get("content")
    if isinstance(content, str):
        yield Slot(holder, "content")
    for part in dicts(content):
        yield from _slot(part, "text")


def _openai_content(message: dict) -> Iterator[Slot]:
    yield from _content(message)
    yield from _slot(message, "refusal")
    for call in dicts(message.get("tool_calls")):
        yield from _slot(call.get("function"), "arguments")


def openai_chat_request(body: dict) -> Iterator[Slot]:
    for message in dicts(body.get("messages")):
        yield from _openai_content(message)


def openai_chat_response(body: dict) -> Iterator[Slot]:
    for choice in dicts(body.get("choices")):
        message = choice.get("message")
        if isinstance(message, dict):
            yield from _openai_content(message)


def openai_embeddings_request(body: dict) -> Iterator[Slot]:
    value = body.get("input")
    if isinstance(value, str):
        yield Slot(body, "input")
    elif isinstance(value, list):
        yield from (Slot(value, i) for i, item in enumerate(value) if isinstance(item, str))


# -- OpenAI Responses API ----------------------------------------------------------------------------

def _responses_item(item: dict) -> Iterator[Slot]:
    yield from _content(item)
    yield from _slot(item, "arguments")
    yield from _slot(item, "output")


def openai_responses_request(body: dict) -> Iterator[Slot]:
    yield from _slot(body, "instructions")
    value = body.get("input")
    if isinstance(value, str):
        yield Slot(body, "input")
    for item in dicts(value):
        yield from _responses_item(item)


def openai_responses_response(body: dict) -> Iterator[Slot]:
    for item in dicts(body.get("output")):
        yield from _responses_item(item)


# -- Anthropic Messages ------------------------------------------------------------------------------

def _anthropic_blocks(blocks: Any) -> Iterator[Slot]:
    for block in dicts(blocks):
        kind = block.get("type")
        if kind == "text":
            yield from _slot(block, "text")
        elif kind == "tool_use":
            yield from _string_leaves(block.get("input"))
        elif kind == "tool_result":
            content = block.get("content")
            if isinstance(content, str):
                yield Slot(block, "content")
            yield from _anthropic_blocks(content)


def anthropic_request(body: dict) -> Iterator[Slot]:
    system = body.get("system")
    if isinstance(system, str):
        yield Slot(body, "system")
    yield from _anthropic_blocks(system)
    for message in dicts(body.get("messages")):
        if isinstance(message.get("content"), str):
            yield Slot(message, "content")
        yield from _anthropic_blocks(message.get("content"))


def anthropic_response(body: dict) -> Iterator[Slot]:
    yield from _anthropic_blocks(body.get("content"))


# -- Gemini generateContent --------------------------------------------------------------------------

def _gemini_parts(content: Any) -> Iterator[Slot]:
    if not isinstance(content, dict):
        return
    for part in dicts(content.get("parts")):
        yield from _slot(part, "text")
        call = part.get("functionCall")
        if isinstance(call, dict):
            yield from _string_leaves(call.get("args"))
        result = part.get("functionResponse")
        if isinstance(result, dict):
            yield from _string_leaves(result.get("response"))


def gemini_request(body: dict) -> Iterator[Slot]:
    yield from _gemini_parts(body.get("systemInstruction") or body.get("system_instruction"))
    for content in dicts(body.get("contents")):
        yield from _gemini_parts(content)


def gemini_response(body: dict) -> Iterator[Slot]:
    for candidate in dicts(body.get("candidates")):
        yield from _gemini_parts(candidate.get("content"))


# -- OpenAI Realtime events (audio is never inspected) -------------------------------------------------------

REALTIME_TEXT_PARTS = frozenset({"input_text", "text", "output_text"})


def openai_realtime_request(event: dict) -> Iterator[Slot]:
    """A `conversation.item.create` event: its item's text parts."""
    item = event.get("item")
    for part in dicts(item.get("content")) if isinstance(item, dict) else ():
        if part.get("type") in REALTIME_TEXT_PARTS:
            yield from _slot(part, "text")


def openai_realtime_response(event: dict) -> Iterator[Slot]:
    """A `response.done` event: the output items' text and audio transcripts."""
    response = event.get("response")
    for item in dicts(response.get("output")) if isinstance(response, dict) else ():
        for part in dicts(item.get("content")):
            yield from _slot(part, "text")
            yield from _slot(part, "transcript")


REQUESTS: dict[str, Callable[[dict], Iterator[Slot]]] = {
    Api.OPENAI_CHAT: openai_chat_request, Api.OPENAI_EMBEDDINGS: openai_embeddings_request,
    Api.OPENAI_RESPONSES: openai_responses_request, Api.ANTHROPIC_MESSAGES: anthropic_request,
    Api.GEMINI_GENERATE: gemini_request, Api.OPENAI_REALTIME: openai_realtime_request,
}
RESPONSES: dict[str, Callable[[dict], Iterator[Slot]]] = {
    Api.OPENAI_CHAT: openai_chat_response, Api.OPENAI_EMBEDDINGS: lambda body: iter(()),
    Api.OPENAI_RESPONSES: openai_responses_response, Api.ANTHROPIC_MESSAGES: anthropic_response,
    Api.GEMINI_GENERATE: gemini_response, Api.OPENAI_REALTIME: openai_realtime_response,
}


def canonical(fmt: str) -> str:
    fmt = ALIASES.get(fmt, fmt)
    if fmt not in REQUESTS:
        raise ValueError(f"unknown guardrail text format '{fmt}'")
    return fmt


def request_slots(body: Any, fmt: str) -> list[Slot]:
    return list(REQUESTS[canonical(fmt)](body)) if isinstance(body, dict) else []


def response_slots(body: Any, fmt: str) -> list[Slot]:
    return list(RESPONSES[canonical(fmt)](body)) if isinstance(body, dict) else []
