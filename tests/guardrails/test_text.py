"""Where the text is in every wire format: each test lists the texts a guardrail sees, then rewrites them
all and checks the body kept its shape."""
from __future__ import annotations

import copy

import pytest

from guardrails.text import request_slots, response_slots

REQUESTS = [
    ("openai-chat", {"messages": [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": [{"type": "text", "text": "hello"},
                                     {"type": "image_url", "image_url": {"url": "u"}}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": '{"q": "args"}'}}]},
        {"role": "tool", "tool_call_id": "c1", "content": "tool result"},
    ]}, ["sys", "hello", '{"q": "args"}', "tool result"]),
    ("openai-embeddings", {"input": "one"}, ["one"]),
    ("openai-embeddings", {"input": ["one", "two"]}, ["one", "two"]),
    ("openai-embeddings", {"input": [1, 2, 3]}, []),
    ("openai-responses", {"instructions": "sys", "input": "hello"}, ["sys", "hello"]),
    ("openai-responses", {"input": [
        {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                     {"type": "input_image", "image_url": "u"}]},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "result"},
        {"role": "assistant", "content": "earlier"},
    ]}, ["hi", "{}", "result", "earlier"]),
    ("anthropic-messages", {"system": "sys", "messages": [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": [{"type": "text", "text": "calling"},
                                          {"type": "tool_use", "id": "t", "name": "f",
                                           "input": {"q": "args", "n": 3}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "result"},
                                     {"type": "tool_result", "tool_use_id": "u",
                                      "content": [{"type": "text", "text": "nested"}]}]},
    ]}, ["sys", "hello", "calling", "args", "result", "nested"]),
    ("anthropic-messages", {"system": [{"type": "text", "text": "sys"}], "messages": []}, ["sys"]),
    ("gemini-generate", {"systemInstruction": {"parts": [{"text": "sys"}]}, "contents": [
        {"role": "user", "parts": [{"text": "hello"}, {"inlineData": {"mimeType": "image/png", "data": "AAAA"}}]},
        {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"q": "args"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"out": ["result"]}}}]},
    ]}, ["sys", "hello", "args", "result"]),
]

RESPONSES = [
    ("openai-chat", {"choices": [{"index": 0, "message": {"role": "assistant", "content": "answer", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}]}, ["answer", "{}"]),
    ("openai-embeddings", {"data": [{"embedding": [0.1]}]}, []),
    ("openai-responses", {"output": [
        {"type": "reasoning", "summary": []},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "answer"}]},
        {"type": "function_call", "name": "f", "arguments": "{}"},
    ]}, ["answer", "{}"]),
    ("anthropic-messages", {"content": [{"type": "text", "text": "answer"},
                                        {"type": "tool_use", "id": "t", "name": "f", "input": {"q": "args"}}]},
     ["answer", "args"]),
    ("gemini-generate", {"candidates": [{"content": {"role": "model", "parts": [{"text": "answer"}]}},
                                        {"content": {"role": "model", "parts": [{"text": "second"}]}}]},
     ["answer", "second"]),
    ("gemini-stream", {"candidates": [{"content": {"parts": [{"text": "chunk"}]}}]}, ["chunk"]),
]


def rewrite_all(slots) -> None:
    for slot in slots:
        slot.set(slot.text.upper())


@pytest.mark.parametrize("fmt,body,texts", REQUESTS)
def test_request_texts(fmt, body, texts):
    body = copy.deepcopy(body)
    slots = request_slots(body, fmt)
    assert [s.text for s in slots] == texts
    rewrite_all(slots)
    assert [s.text for s in request_slots(body, fmt)] == [t.upper() for t in texts]


@pytest.mark.parametrize("fmt,body,texts", RESPONSES)
def test_response_texts(fmt, body, texts):
    body = copy.deepcopy(body)
    slots = response_slots(body, fmt)
    assert [s.text for s in slots] == texts
    rewrite_all(slots)
    assert [s.text for s in response_slots(body, fmt)] == [t.upper() for t in texts]


def test_rewrites_keep_the_shape():
    body = {"messages": [{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "image_url", "x": 1}]}]}
    rewrite_all(request_slots(body, "openai-chat"))
    assert body == {"messages": [{"role": "user", "content": [{"type": "text", "text": "A"},
                                                               {"type": "image_url", "x": 1}]}]}


@pytest.mark.parametrize("body", [None, [], {"messages": "nonsense"}, {"messages": [None, 3, {"content": 5}]}])
def test_malformed_bodies_have_no_texts(body):
    assert request_slots(body, "openai-chat") == []


def test_unknown_format_is_a_programming_error():
    with pytest.raises(ValueError):
        request_slots({}, "soap")
