"""What the native routes read from a relayed stream on the side: usage (cached tokens included) in each
API's own events, wherever the provider puts it, and whether the stream reached its terminator."""
from __future__ import annotations

import orjson
import pytest

from gateway.relay_watchers import WATCHERS
from providers.wire import SSEParser, TokenUsage


def sse(data: dict | str, event: str | None = None) -> bytes:
    payload = data if isinstance(data, str) else orjson.dumps(data).decode()
    return (f"event: {event}\n" if event else "").encode() + f"data: {payload}\n\n".encode()


OPENAI_USAGE = {"prompt_tokens": 11, "completion_tokens": 7, "prompt_tokens_details": {"cached_tokens": 3}}
RESPONSE = {"usage": {"input_tokens": 11, "output_tokens": 7, "input_tokens_details": {"cached_tokens": 3}}}
GEMINI_USAGE = {"promptTokenCount": 11, "candidatesTokenCount": 5, "thoughtsTokenCount": 2, "cachedContentTokenCount": 3}

STREAMS = {
    # The usage rides on the last chunk that still has choices (LiteLLM #36168 dropped it there).
    "openai-chat": [sse({"choices": [{"index": 0, "delta": {"content": "hi"}}]}),
                    sse({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}], "usage": OPENAI_USAGE}),
                    sse("[DONE]")],
    # Streamed Responses report usage only in `response.completed` (LiteLLM #13264 recorded $0).
    "openai-responses": [sse({"type": "response.output_text.delta", "delta": "hi"}, "response.output_text.delta"),
                         sse({"type": "response.completed", "response": RESPONSE}, "response.completed")],
    # Input (and cache reads) come in message_start, output in message_delta.
    "anthropic-messages": [
        sse({"type": "message_start", "message": {"usage": {"input_tokens": 8, "cache_read_input_tokens": 3,
                                                            "output_tokens": 1}}}, "message_start"),
        sse({"type": "content_block_delta", "delta": {"type": "text_delta", "text": "hi"}}, "content_block_delta"),
        sse({"type": "message_delta", "usage": {"output_tokens": 7}}, "message_delta"),
        sse({"type": "message_stop"}, "message_stop")],
    "gemini-stream": [sse({"candidates": [{"content": {"parts": [{"text": "hi"}]}}]}),
                      sse({"candidates": [{"content": {"parts": [{"text": "!"}]}, "finishReason": "STOP"}],
                           "usageMetadata": GEMINI_USAGE})],
}


@pytest.mark.parametrize("api", STREAMS)
def test_usage_and_completion_are_read_from_each_apis_own_events(api):
    watcher, parser = WATCHERS[api](), SSEParser()
    for event in STREAMS[api]:
        for half in (event[:7], event[7:]):  # events split across network chunks
            watcher.observe(parser.feed(half))
    watcher.observe(parser.close())
    assert watcher.tokens == TokenUsage(11, 7, 3)
    assert watcher.complete and not watcher.errored and watcher.text_chars >= 2


@pytest.mark.parametrize("api", STREAMS)
def test_a_stream_cut_before_its_terminator_is_not_complete(api):
    watcher, parser = WATCHERS[api](), SSEParser()
    watcher.observe(parser.feed(STREAMS[api][0]))
    watcher.observe(parser.close())
    assert not watcher.complete


@pytest.mark.parametrize("api,wrong", [
    ("openai-chat", {"choices": "not-a-list", "usage": 7}),
    ("openai-chat", {"choices": [1, {"delta": "x"}, {"delta": {"content": 3, "tool_calls": "y"}}]}),
    ("openai-responses", {"type": "response.output_text.delta", "delta": 5, "response": "z"}),
    ("anthropic-messages", {"type": "message_start", "message": "not-an-object"}),
    ("anthropic-messages", {"type": "content_block_delta", "delta": "x"}),
    ("gemini-stream", {"candidates": "not-a-list", "usageMetadata": [1]}),
    ("gemini-stream", {"candidates": [{"content": "x"}], "promptFeedback": "y"}),
])
def test_an_event_of_an_unexpected_shape_is_read_past_without_failing(api, wrong):
    watcher = WATCHERS[api]()
    events = SSEParser().feed(b"data: " + orjson.dumps(wrong) + b"\n\n")
    assert watcher.observe(events) == 1


def test_an_event_that_is_not_json_is_where_the_stream_broke():
    events = SSEParser().feed(b'data: {"choices": []}\n\ndata: {oops\n\ndata: [DONE]\n\n')
    assert WATCHERS["openai-chat"]().observe(events) == 1
