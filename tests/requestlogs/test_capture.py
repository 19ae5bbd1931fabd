"""What a request log keeps: streams assembled into the final message, bodies capped and marked."""
from __future__ import annotations

import orjson

from gateway.requestlogs.capture import ChatAssembler, RawCapture, encode


def test_a_stream_is_assembled_into_its_final_message():
    assembler = ChatAssembler()
    for chunk in [
        {"model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo", "tool_calls": [
            {"index": 0, "id": "call_1", "function": {"name": "get_", "arguments": '{"ci'}}]}}]},
        {"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"name": "weather",
                                                                                       "arguments": 'ty":1}'}}]},
                      "finish_reason": "tool_calls"}]},
        {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}},
    ]:
        assembler.feed(chunk)
    assert assembler.result() == {"object": "chat.completion", "model": "m", "usage": {"prompt_tokens": 3,
                                                                                        "completion_tokens": 2},
                                  "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
                                      "role": "assistant", "content": "Hello", "tool_calls": [
                                          {"id": "call_1", "type": "function",
                                           "function": {"name": "get_weather", "arguments": '{"city":1}'}}]}}]}


def test_bodies_are_cut_at_the_cap_and_marked():
    body = {"messages": [{"role": "user", "content": "é" * 100}]}
    whole = orjson.dumps(body).decode()
    assert encode(body, 10_000) == (whole, False)
    cut, truncated = encode(body, 51)
    assert truncated and len(cut.encode()) <= 51 and whole.startswith(cut)
    assert encode(None, 10) == ("", False)
    assert encode("text as is", 100) == ("text as is", False)


def test_raw_streams_stop_growing_past_the_cap():
    capture = RawCapture(limit=10)
    for _ in range(100):
        capture.feed(b"data: 12345\n\n")
    assert len(capture.result()) < 40
