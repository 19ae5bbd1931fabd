"""Cohere v2 translation, pure: request fields, finish reasons, usage (billed units first), and the stream
translator's edge cases. Shapes as the official SDK declares them (cohere 7.3.1, cohere/v2/types)."""
from __future__ import annotations

import pytest

from providers.base import ProviderError, TranslationError
from providers.cohere import translate
from providers.wire import cohere_usage

MODEL = "command-a-03-2025"


@pytest.mark.parametrize(("usage", "expected"), [
    ({"billed_units": {"input_tokens": 5, "output_tokens": 418}, "tokens": {"input_tokens": 71, "output_tokens": 418}},
     (5, 418, 0)),
    ({"tokens": {"input_tokens": 71, "output_tokens": 9}, "cached_tokens": 64}, (71, 9, 64)),
    (None, (0, 0, 0)),
])
def test_usage_is_billed_units_else_tokens(usage, expected):
    read = cohere_usage(usage)
    assert (read.input_tokens, read.output_tokens, read.cached_tokens) == expected


@pytest.mark.parametrize(("reason", "finish"), [("COMPLETE", "stop"), ("STOP_SEQUENCE", "stop"),
                                                ("MAX_TOKENS", "length"), ("TOOL_CALL", "tool_calls"), (None, "stop")])
def test_finish_reasons(reason, finish):
    assert translate.finish_reason(reason) == finish


@pytest.mark.parametrize(("request_fields", "expected"), [
    ({"temperature": 0.3, "top_p": 0.8, "seed": 7, "stop": ["a", "b"], "max_tokens": 9},
     {"temperature": 0.3, "p": 0.8, "seed": 7, "stop_sequences": ["a", "b"], "max_tokens": 9}),
    ({"response_format": {"type": "json_object"}}, {"response_format": {"type": "json_object"}}),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}}},
     {"response_format": {"type": "json_object", "json_schema": {"type": "object"}}}),
    ({"response_format": {"type": "text"}, "user": "u-1", "stream_options": {"include_usage": True}}, {}),
    # cohere 7.3.1 `types.Thinking`: `disabled`, or `enabled` with a `token_budget`.
    ({"reasoning_effort": "medium"}, {"thinking": {"type": "enabled", "token_budget": 8192}}),
    ({"reasoning_effort": "none"}, {"thinking": {"type": "disabled"}}),
])
def test_request_fields(request_fields, expected):
    body = translate.chat_body({"messages": [{"role": "user", "content": "hi"}], **request_fields}, MODEL, stream=False)
    assert body == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], **expected}


def test_images_and_developer_messages():
    body = translate.chat_body({"messages": [
        {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]},
        MODEL, stream=True)
    assert body["stream"] is True and body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                     {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]


def test_unknown_roles_are_refused():
    with pytest.raises(TranslationError, match="role 'function'"):
        translate.chat_body({"messages": [{"role": "function", "content": "x"}]}, MODEL, stream=False)


def test_stream_of_a_call_without_arguments_and_usage():
    translator = translate.StreamTranslator(MODEL)
    events = [{"type": "message-start", "id": "29f14a5a"},
              {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": {
                  "id": "now_1", "type": "function", "function": {"name": "now", "arguments": ""}}}}},
              {"type": "tool-call-end", "index": 0},
              {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL",
                                                "usage": {"billed_units": {"input_tokens": 3, "output_tokens": 2}}}}]
    chunks = [chunk for event in events for chunk in translator.feed(event)]
    assert chunks[0]["id"] == "29f14a5a" and translator.finished
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if "tool_calls" in c["choices"][0]["delta"]]
    assert calls[0]["function"]["name"] == "now" and "".join(c["function"]["arguments"] for c in calls) == "{}"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert translator.usage_chunk()["usage"]["total_tokens"] == 5


def test_an_error_at_the_end_of_a_stream_raises():
    translator = translate.StreamTranslator(MODEL)
    with pytest.raises(ProviderError, match="stream error: internal"):
        translator.feed({"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "internal"}})
    assert not translator.finished


@pytest.mark.parametrize("reason", ["ERROR", "TIMEOUT"])
def test_a_generation_that_failed_is_an_error_not_a_complete_answer(reason):
    """Cohere's ChatFinishReason (its API reference): ERROR, the generation failed; TIMEOUT, it ran out of
    time. Neither answer is complete, so neither may reach the client as `stop`."""
    with pytest.raises(ProviderError, match=reason) as caught:
        translate.chat_completion({"id": "c1", "finish_reason": reason, "message": {
            "role": "assistant", "content": [{"type": "text", "text": "Partial"}]}}, MODEL)
    assert caught.value.retryable
    translator = translate.StreamTranslator(MODEL)
    with pytest.raises(ProviderError, match=reason):
        translator.feed({"type": "message-end", "delta": {"finish_reason": reason}})
    assert not translator.finished


@pytest.mark.parametrize(("request_fields", "message"), [
    ({"input": []}, "non-empty list"),
    ({"input": "x", "input_type": "search"}, "input_type must be one of"),
    ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
])
def test_embed_request_problems(request_fields, message):
    with pytest.raises(TranslationError, match=message):
        translate.embed_body(request_fields, "embed-v4.0")


def test_thinking_stays_out_of_the_answer_text():
    """cohere 7.3.1 `ChatThinkingContent`: a `thinking` item in the message content when thinking is on."""
    answer = translate.chat_completion({"id": "c1", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [
        {"type": "thinking", "thinking": "Hmm."}, {"type": "text", "text": "42"}]}}, MODEL)
    assert answer["choices"][0]["message"]["content"] == "42"
    stream = translate.StreamTranslator(MODEL)
    chunks = [chunk for event in (
        {"type": "message-start", "id": "c1"},
        {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"thinking": "Hmm."}}}},
        {"type": "content-delta", "index": 1, "delta": {"message": {"content": {"text": "42"}}}},
    ) for chunk in stream.feed(event)]
    assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks) == "42"
