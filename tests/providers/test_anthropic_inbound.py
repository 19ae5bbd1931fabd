"""Anthropic clients on any chat provider (providers/anthropic/inbound.py): Messages requests into unified
chat requests, unified answers and chunks back into Messages responses and Anthropic's stream events.

The recorded fixtures of tests/fixtures/anthropic/ drive both directions: a recorded Messages body taken
in and sent out again by translate.py must come back unchanged, and a recorded Anthropic stream translated
to unified chunks and back must tell the same story."""
from __future__ import annotations

import pytest

from providers.anthropic.inbound import (MessageEvents, STOP_REASONS, anthropic_usage_block, chat_to_message,
                                         messages_to_chat)
from providers.anthropic.translate import FINISH_REASONS, StreamTranslator, chat_request_to_anthropic
from providers.base import TranslationError
from providers.wire import anthropic_usage, openai_usage
from tests.providers.recorded import recorded

fixture = recorded("anthropic")
HI = [{"role": "user", "content": "Hi"}]


@pytest.mark.parametrize("name", ["request_tool_conversation.json", "request_multimodal.json",
                                  "request_json_schema.json"])
def test_recorded_messages_body_survives_the_round_trip(name):
    body = fixture(name)["expected"]
    assert chat_request_to_anthropic(messages_to_chat(body), body["model"]) == body


def test_request_fields_map_to_unified_ones():
    chat = messages_to_chat({
        "model": "x", "max_tokens": 10, "temperature": 0.5, "top_p": 0.9, "top_k": 5, "stop_sequences": ["END"],
        "metadata": {"user_id": "u-1"}, "stream": True, "thinking": {"type": "enabled", "budget_tokens": 2048},
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
                   {"type": "text", "text": "No jokes."}],
        "tool_choice": {"type": "any", "disable_parallel_tool_use": True},
        "tools": [{"name": "f", "input_schema": {"type": "object"}}],
        "messages": [{"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": "t1", "content": "oops", "is_error": True},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                                              {"type": "tool_use", "id": "t2", "name": "f", "input": {}}]}]})
    assert chat == {
        "messages": [
            {"role": "system", "content": "Be brief.\nNo jokes."},
            {"role": "tool", "tool_call_id": "t1", "content": "Error: oops"},
            {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]},
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": "t2", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}],
        "max_tokens": 10, "temperature": 1.0, "top_p": 0.9, "top_k": 5, "stop": ["END"],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
        "tool_choice": "required", "parallel_tool_calls": False, "user": "u-1", "stream": True}


@pytest.mark.parametrize("body, named", [
    pytest.param({"messages": HI}, "max_tokens", id="max_tokens-required"),
    pytest.param({"max_tokens": 5, "messages": HI, "temperature": 1.5}, "temperature", id="temperature-scale"),
    pytest.param({"max_tokens": 5, "messages": HI, "tools": [{"type": "web_search_20250305", "name": "web_search"}]},
                 "web_search", id="server-tool"),
    pytest.param({"max_tokens": 5, "messages": HI, "mcp_servers": [{"url": "https://x"}]}, "mcp_servers", id="mcp"),
    pytest.param({"max_tokens": 5, "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]},
                 "document", id="document-block"),
    pytest.param({"max_tokens": 5, "messages": HI, "tool_choice": {"type": "sometimes"}}, "tool_choice",
                 id="tool_choice"),
    pytest.param({"max_tokens": 5, "messages": []}, "messages", id="no-messages"),
])
def test_what_cannot_be_expressed_is_refused_naming_the_field(body, named):
    with pytest.raises(TranslationError) as caught:
        messages_to_chat(body)
    assert named in caught.value.message


@pytest.mark.parametrize("finish, stop", [("stop", "end_turn"), ("length", "max_tokens"),
                                          ("tool_calls", "tool_use"), ("content_filter", "refusal")])
def test_stop_reasons_are_the_inverse_of_the_one_table(finish, stop):
    assert STOP_REASONS[finish] == stop and FINISH_REASONS[stop] == finish


def test_answer_with_text_and_an_argumentless_tool_call():
    usage = {"prompt_tokens": 20, "completion_tokens": 5, "total_tokens": 25, "prompt_tokens_details": {"cached_tokens": 8}}
    message = chat_to_message({"id": "chatcmpl-1", "model": "gpt-4o", "usage": usage, "choices": [{
        "index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]}}]})
    assert message == {"id": "msg_chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o",
                       "content": [{"type": "text", "text": "Checking."},
                                   {"type": "tool_use", "id": "call_1", "name": "now", "input": {}}],
                       "stop_reason": "tool_use", "stop_sequence": None,
                       "usage": {"input_tokens": 12, "output_tokens": 5, "cache_read_input_tokens": 8,
                                 "cache_creation_input_tokens": 0}}


def test_usage_counts_the_same_tokens_through_either_reader():
    usage = {"prompt_tokens": 20, "completion_tokens": 5, "prompt_tokens_details": {"cached_tokens": 8}}
    assert anthropic_usage(anthropic_usage_block(usage)) == openai_usage(usage)


@pytest.mark.parametrize("name", ["stream_text.json", "stream_tool_use.json"])
def test_recorded_stream_round_trip_tells_the_same_story(name):
    recorded_events = fixture(name)["events"]
    there = StreamTranslator("m", created=1)
    chunks = [c for e in recorded_events for c in there.feed(e["event"], e["data"])]
    events = MessageEvents()
    translated = [pair for chunk in chunks for pair in events.feed(chunk)] + events.end()
    back = StreamTranslator("m", created=1)
    again = [c for name_, data in translated for c in back.feed(name_, data)]
    # Claude's thinking blocks ride on the first tool call for the next turn; the Messages API served by
    # translation answers from other models, which have none to give back.
    for chunk in chunks:
        for call in chunk["choices"][0]["delta"].get("tool_calls", []) if chunk["choices"] else []:
            call.pop("extra_content", None)
    assert back.finished and again == chunks
    names = [name_ for name_, _ in translated]
    assert names[0] == "message_start" and names[-2:] == ["message_delta", "message_stop"]
    starts = [data["index"] for name_, data in translated if name_ == "content_block_start"]
    stops = [data["index"] for name_, data in translated if name_ == "content_block_stop"]
    assert starts == stops == list(range(len(starts)))


def test_stream_tool_call_without_arguments_is_a_block_with_no_json_delta():
    events = MessageEvents()
    base = {"id": "c1", "model": "m", "object": "chat.completion.chunk"}
    pairs = events.feed({**base, "choices": [{"index": 0, "delta": {"tool_calls": [
        {"index": 0, "id": "call_1", "type": "function", "function": {"name": "now", "arguments": ""}}]}}]})
    pairs += events.feed({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
    pairs += events.feed({**base, "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}})
    pairs += events.end()
    assert [name for name, _ in pairs] == ["message_start", "content_block_start", "content_block_stop",
                                           "message_delta", "message_stop"]
    assert pairs[1][1]["content_block"] == {"type": "tool_use", "id": "call_1", "name": "now", "input": {}}
    assert pairs[3][1]["delta"]["stop_reason"] == "tool_use"
    assert pairs[3][1]["usage"]["input_tokens"] == 3 and pairs[3][1]["usage"]["output_tokens"] == 2
