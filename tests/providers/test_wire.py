"""The one SSE parser, the framings of relayed events, and the per-vendor usage readers every route shares
(providers/wire.py)."""
from __future__ import annotations

import orjson
import pytest

from providers import wire
from providers.http import upstream_error
from providers.wire import (Api, JSONArrayFrames, SSEFrames, SSEParser, TokenUsage, anthropic_usage, answer_usage,
                            gemini_usage, merge_usage, openai_usage, responses_usage)

STREAM = (b": keep-alive\r\n\r\n"
          b"event: message_start\r\ndata: {\"a\": 1}\r\n\r\n"
          b"data: line one\rdata: line two\r\r"
          b"id: 7\nretry: 10\ndata:no-space\n\n"
          b"data: [DONE]\n\n")
EXPECTED = [("", None), ("message_start", '{"a": 1}'), ("", "line one\nline two"), ("", "no-space"), ("", "[DONE]")]


def parse(chunks: list[bytes]) -> list:
    parser = SSEParser()
    events = [event for chunk in chunks for event in parser.feed(chunk)]
    return events + parser.close()


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64, len(STREAM)])
def test_events_are_the_same_however_the_stream_is_split(size):
    events = parse([STREAM[i:i + size] for i in range(0, len(STREAM), size)])
    assert [(e.event, e.data) for e in events] == EXPECTED


def test_a_crlf_split_between_two_reads_is_one_line_ending():
    events = parse([b"data: a\r", b"\n\r", b"\ndata: b\n\n"])
    assert [e.data for e in events] == ["a", "b"]


def test_the_raw_event_keeps_comments_and_fields_for_relaying():
    [comment, named, *_] = parse([STREAM])
    assert comment.raw == b": keep-alive\n\n"
    assert named.raw == b'event: message_start\ndata: {"a": 1}\n\n'


def test_an_event_without_its_final_blank_line_is_returned_by_close():
    parser = SSEParser()
    assert parser.feed(b"event: x\ndata: tail") == []
    assert [(e.event, e.data) for e in parser.close()] == [("x", "tail")]
    assert parser.close() == []


def test_gemini_tool_use_prompt_tokens_are_input_and_thoughts_output():
    meta = {"promptTokenCount": 10, "toolUsePromptTokenCount": 5, "candidatesTokenCount": 3,
            "thoughtsTokenCount": 4, "totalTokenCount": 22, "cachedContentTokenCount": 6}
    assert gemini_usage(meta) == TokenUsage(15, 7, 6)


def test_gemini_thoughts_already_inside_the_candidates_are_not_counted_twice():
    meta = {"promptTokenCount": 10, "candidatesTokenCount": 7, "thoughtsTokenCount": 4, "totalTokenCount": 17}
    assert gemini_usage(meta) == TokenUsage(10, 7, 0)
    assert gemini_usage({"promptTokenCount": 10, "candidatesTokenCount": 3, "thoughtsTokenCount": 4}) == \
        TokenUsage(10, 7, 0)  # no total to check against: thoughts are added


def test_anthropic_cache_reads_and_writes_are_input_and_reads_are_cached():
    usage = {"input_tokens": 5, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 2, "output_tokens": 7}
    assert anthropic_usage(usage) == TokenUsage(10, 7, 3)


def test_anthropic_stream_usage_merges_message_start_and_the_cumulative_delta():
    total: dict = {}
    merge_usage(total, {"input_tokens": 8, "cache_read_input_tokens": 3, "output_tokens": 1})
    merge_usage(total, {"output_tokens": 7, "input_tokens": None})
    assert anthropic_usage(total) == TokenUsage(11, 7, 3)


def test_each_native_answer_is_read_with_its_vendors_reader():
    assert answer_usage(Api.OPENAI_CHAT, {"usage": {"prompt_tokens": 4, "completion_tokens": 2,
                                                    "prompt_tokens_details": {"cached_tokens": 1}}}) == \
        openai_usage({"prompt_tokens": 4, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 1}}) == \
        TokenUsage(4, 2, 1)
    assert answer_usage(Api.OPENAI_RESPONSES, {"usage": {"input_tokens": 4, "output_tokens": 2}}) == \
        responses_usage({"input_tokens": 4, "output_tokens": 2}) == TokenUsage(4, 2, 0)
    assert answer_usage(Api.GEMINI_GENERATE, {"usageMetadata": {"promptTokenCount": 4, "toolUsePromptTokenCount": 1,
                                                                "candidatesTokenCount": 2}}) == TokenUsage(5, 2, 0)
    assert answer_usage(Api.ANTHROPIC_COUNT_TOKENS, {"input_tokens": 9}) == TokenUsage()
    assert answer_usage(Api.OPENAI_CHAT, [1, 2]) == TokenUsage()


def test_api_names_are_their_strings():
    assert Api.GEMINI_STREAM == "gemini-stream" and Api("openai-chat") is Api.OPENAI_CHAT


def test_json_array_frames_turn_the_parsed_events_into_one_streamed_array():
    frames, parser = JSONArrayFrames(), SSEParser()
    out = frames.relay(parser.feed(b': ping\n\ndata: {"a": 1}\r\n\r\ndata: {"b"'))
    out += frames.relay(parser.feed(b": 2}\n\n")) + frames.relay(parser.close())
    out += frames.event("error", b'{"error": {"code": 502}}') + frames.end()
    assert orjson.loads(out) == [{"a": 1}, {"b": 2}, {"error": {"code": 502}}]
    assert JSONArrayFrames().end() == b"[]"


def test_sse_frames_relay_whole_events_so_an_error_event_never_lands_on_a_partial_line():
    frames, parser = SSEFrames(), SSEParser()
    out = frames.relay(parser.feed(b'data: {"a": 1}\r\n\r\ndata: {"cho'))
    out += frames.event("error", b"{}")
    assert out == b'data: {"a": 1}\n\nevent: error\ndata: {}\n\n' and frames.end() == b""


@pytest.mark.parametrize("body, delay", [
    # The 429 body of Google's API reference ("Error codes", RESOURCE_EXHAUSTED) with its RetryInfo detail.
    ({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                "status": "RESOURCE_EXHAUSTED", "details": [
                    {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [
                        {"quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests"}]},
                    {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34s"}]}}, 34.0),
    ([{"error": {"code": 429, "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo",
                                           "retryDelay": "0.250s"}]}}], 0.25),
    ({"error": {"code": 429, "message": "slow down"}}, None),
    ({"error": {"details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "soon"}]}}, None),
    ("not json", None),
])
def test_google_retry_delay_is_read_from_retry_info(body, delay):
    assert wire.google_retry_delay(body) == delay


def test_an_upstream_error_without_retry_after_waits_as_the_google_body_asks():
    body = orjson.dumps({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "quota", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]}})
    assert upstream_error(429, body, "gemini", {}).retry_after == 7.0
    assert upstream_error(429, body, "gemini", {"retry-after": "2"}).retry_after == 2.0
