"""OpenAI Responses API clients on chat-only providers (providers/openai/responses_inbound.py): Responses
requests into unified chat requests, unified answers and chunks back into Response objects and the
Responses stream events; stateful features refused."""
from __future__ import annotations

import pytest
from openai.types.responses import Response, ResponseStreamEvent
from pydantic import TypeAdapter

from providers.base import TranslationError
from providers.openai.responses_inbound import ResponseEvents, chat_to_response, responses_to_chat

USAGE = {"prompt_tokens": 20, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 8},
         "completion_tokens_details": {"reasoning_tokens": 2}}
EVENTS = TypeAdapter(ResponseStreamEvent)


def test_items_become_chat_messages():
    chat = responses_to_chat({
        "model": "x", "instructions": "Be brief.", "max_output_tokens": 50, "temperature": 0.3, "store": False,
        "reasoning": {"effort": "low"}, "parallel_tool_calls": False, "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        "tools": [{"type": "function", "name": "f", "parameters": {"type": "object"}, "strict": True}],
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "look"},
                                         {"type": "input_image", "image_url": "https://example.com/a.png"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{\"a\":1}"},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": ""},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]}]})
    assert chat == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}},
                {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "one"},
            {"role": "assistant", "content": "done"}],
        "max_tokens": 50, "temperature": 0.3, "parallel_tool_calls": False, "reasoning_effort": "low",
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}, "strict": True}}],
        "tool_choice": {"type": "function", "function": {"name": "f"}},
        "response_format": {"type": "json_schema", "json_schema": {"name": "out", "schema": {"type": "object"},
                                                                   "strict": True}}}


@pytest.mark.parametrize("extra, named", [
    pytest.param({"previous_response_id": "resp_1"}, "previous_response_id", id="previous-response"),
    pytest.param({"conversation": "conv_1"}, "conversation", id="conversation"),
    pytest.param({"store": True}, "store", id="store"),
    pytest.param({"tools": [{"type": "web_search"}]}, "web_search", id="built-in-tool"),
    pytest.param({"input": [{"type": "item_reference", "id": "msg_1"}]}, "item_reference", id="item-reference"),
    pytest.param({"input": []}, "input", id="no-input"),
    pytest.param({"top_logprobs": 3}, "top_logprobs", id="logprobs"),
])
def test_what_needs_openai_state_or_tools_is_refused_naming_it(extra, named):
    with pytest.raises(TranslationError) as caught:
        responses_to_chat({"input": "hi", **extra})
    assert named in caught.value.message


def test_answer_is_a_response_the_sdk_reads():
    answer = {"id": "chatcmpl-1", "model": "claude", "created": 7, "usage": USAGE, "choices": [{
        "index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]}}]}
    response = Response.model_validate(chat_to_response(answer, {"input": "x", "max_output_tokens": 3}))
    assert response.output_text == "Hi" and response.status == "incomplete"
    assert response.incomplete_details.reason == "max_output_tokens"
    assert [(c.call_id, c.name, c.arguments) for c in response.output if c.type == "function_call"] == [
        ("call_1", "now", "{}")]
    assert (response.usage.input_tokens, response.usage.output_tokens, response.usage.total_tokens,
            response.usage.input_tokens_details.cached_tokens,
            response.usage.output_tokens_details.reasoning_tokens) == (20, 5, 25, 8, 2)


def test_stream_events_validate_and_end_with_the_whole_response():
    base = {"id": "chatcmpl-1", "model": "m", "object": "chat.completion.chunk"}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]},
        {**base, "choices": [{"index": 0, "delta": {"content": "Let me"}}]},
        {**base, "choices": [{"index": 0, "delta": {"content": " check."}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": ""}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\""}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 1, "id": "call_2", "type": "function", "function": {"name": "g", "arguments": ""}}]}}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
        {**base, "choices": [], "usage": USAGE},
    ]
    translator = ResponseEvents({"input": "x"})
    pairs = [pair for chunk in chunks for pair in translator.feed(chunk)] + translator.end()
    events = [EVENTS.validate_python(data) for _, data in pairs]
    assert [name for name, _ in pairs] == [event.type for event in events]
    assert [event.sequence_number for event in events] == list(range(len(events)))
    assert [e.type for e in events] == [
        "response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
        "response.output_text.delta", "response.output_text.delta", "response.output_text.done",
        "response.content_part.done", "response.output_item.done", "response.output_item.added",
        "response.function_call_arguments.delta", "response.function_call_arguments.delta",
        "response.function_call_arguments.done", "response.output_item.done", "response.output_item.added",
        "response.function_call_arguments.done", "response.output_item.done", "response.completed"]
    final = events[-1].response
    assert final.output_text == "Let me check." and final.usage.output_tokens == 5
    assert [(c.call_id, c.arguments) for c in final.output if c.type == "function_call"] == [
        ("call_1", '{"a":1}'), ("call_2", "{}")]
